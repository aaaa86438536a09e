"""A clinician's own cohort is not the phantom: train/evaluate on odd shapes of data and options.

Each test builds a tiny work folder (6 patients, 8x32x32 clips), bends it the way a real
cohort or a hand-edited clips.csv does, and checks what the user sees.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from helpers import TINY_TRAIN, make_work_dir
from thyrovid.config import TrainConfig, load_config
from thyrovid.errors import UserError
from thyrovid.runs import load_run
from thyrovid.training.train import train

TINY = dict(TINY_TRAIN, device="cpu", epochs=1, max_train_batches=1, augment=False)


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def work_dir(tmp_path, edit=None, name="work"):
    """A 6-patient work folder (P000..P003 train, P004..P005 val), clips.csv edited by `edit`."""
    work = make_work_dir(tmp_path / name, n_patients=6, frames=8, size=32)
    if edit is not None:
        clips = pd.read_csv(work / "clips.csv", dtype=str, keep_default_na=False)
        edit(clips).to_csv(work / "clips.csv", index=False)
    return work


def _set(**values):
    def edit(clips):
        for column, value in values.items():
            clips[column] = value
        return clips

    return edit


# ---------------------------------------------------------------- train: the data


def test_train_refuses_a_training_split_of_one_class(tmp_path):
    work = work_dir(tmp_path, lambda c: c[~((c.split == "train") & (c.label == "0"))])
    with pytest.raises(UserError, match=r"clips.csv: split 'train' has 4 malignant and 0 benign"):
        train(work, tmp_path / "run", TrainConfig(**TINY))
    assert not (tmp_path / "run").exists()


def test_train_names_the_splits_there_are_when_train_is_missing(tmp_path):
    work = work_dir(tmp_path, _set(split="test"))
    with pytest.raises(UserError, match=r"no clips in split 'train' \(splits: test\)"):
        train(work, tmp_path / "run", TrainConfig(**TINY))


def test_without_validation_split_the_last_epoch_is_kept_and_said(tmp_path, capsys):
    run = train(work_dir(tmp_path, _set(split="train")), tmp_path / "run", TrainConfig(**TINY))
    assert "no clips in split 'val'; model.safetensors is the last epoch" in capsys.readouterr().err
    assert yaml.safe_load((run / "config.yaml").read_text())["meta"]["selected_by"] == "last"
    assert (run / "model.safetensors").is_file()


def test_validation_of_one_class_selects_by_loss_says_so_and_logs_no_nan(tmp_path, capsys):
    work = work_dir(tmp_path, lambda c: c[~((c.split == "val") & (c.label == "0"))])
    run = train(work, tmp_path / "run", TrainConfig(**TINY))
    err = capsys.readouterr().err
    assert "split 'val' has one class only (clip level): no AUROC" in err
    assert "NaN" not in err and '"val_auroc": null' in err  # the epoch line is valid JSON
    assert yaml.safe_load((run / "config.yaml").read_text())["meta"]["selected_by"] == "val_loss"
    log = pd.read_csv(run / "log.csv")
    assert log["val_auroc"].isna().all() and log["val_loss"].notna().all()


def test_patient_level_validation_of_one_class_still_keeps_a_checkpoint(tmp_path, capsys):
    # one validation patient with a benign and a malignant nodule: clip level has two classes,
    # patient level one; the patient AUROC is undefined, so validation loss must select.
    def edit(clips):
        clips = clips[clips.patient_id != "P005"].copy()
        clips.loc[clips.clip_id == "P004_c1", "label"] = "1"
        return clips

    config = TrainConfig(**TINY, val_level="patient")
    run = train(work_dir(tmp_path, edit), tmp_path / "run", config)
    assert "(patient level)" in capsys.readouterr().err
    assert (run / "model.safetensors").is_file()


def test_missing_and_corrupt_clips_are_skipped_with_one_line_each(tmp_path, capsys):
    work = work_dir(tmp_path)
    (work / "clips" / "P000_c0.npy").unlink()
    (work / "clips" / "P001_c0.npy").write_bytes(b"not a clip")
    run = train(work, tmp_path / "run", TrainConfig(**TINY))
    err = capsys.readouterr().err
    assert "skipped clip P000_c0:" in err
    assert "skipped clip P001_c0:" in err and "not a NumPy .npy file" in err
    assert "skipped 2 unreadable clip(s)" in err
    assert yaml.safe_load((run / "config.yaml").read_text())["meta"]["clips_train"] == 6


def test_clips_of_two_shapes_are_refused_with_the_shapes_named(tmp_path):
    work = work_dir(tmp_path)
    np.save(work / "clips" / "P001_c1.npy", np.zeros((8, 48, 48), np.uint8))
    with pytest.raises(UserError, match=r"clips of 2 shapes .*1 of 8x48x48 \(e.g. P001_c1\)"):
        train(work, tmp_path / "run", TrainConfig(**TINY))


# ---------------------------------------------------------------- train: the run folder


def test_resume_refuses_other_training_data(tmp_path):
    run = train(work_dir(tmp_path), tmp_path / "run", TrainConfig(**TINY))
    fewer = work_dir(tmp_path, lambda c: c[c.patient_id != "P000"], name="other")
    with pytest.raises(UserError, match=r"--resume on other training data \(clips_train 8 -> 6\)"):
        train(fewer, run, TrainConfig(**{**TINY, "epochs": 2}), resume=True)


def test_resume_without_a_run_says_it_starts_a_new_one(tmp_path, capsys):
    train(work_dir(tmp_path), tmp_path / "run", TrainConfig(**TINY), resume=True)
    assert "holds no run yet; starting a new one" in capsys.readouterr().err


def test_a_run_killed_in_epoch_1_says_how_to_continue(tmp_path):
    run = train(work_dir(tmp_path), tmp_path / "run", TrainConfig(**TINY))
    (run / "model.safetensors").unlink()
    with pytest.raises(UserError, match=r"stopped before its first epoch ended.*--resume"):
        load_run(run)


# ---------------------------------------------------------------- train: options


def _cli(capsys, *argv):
    from thyrovid.cli import main

    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err.strip()


def test_config_typos_and_bad_values_name_the_place_and_the_fix(tmp_path, capsys):
    typo, wrong = tmp_path / "typo.yaml", tmp_path / "wrong.yaml"
    typo.write_text("lr: 0.001\nepoch: 3\n")
    wrong.write_text("lr: fast\n")
    code, err = _cli(capsys, "train", "W", "--out", tmp_path / "r", "--config", typo)
    assert code == 2 and err.endswith("unknown training option(s) epoch (did you mean epochs?)")
    _, err = _cli(capsys, "train", "W", "--out", tmp_path / "r", "--config", wrong)
    assert err.endswith("wrong.yaml: lr='fast' is not a valid float")
    # a bad --set value is blamed on --set, not on the (valid) YAML file given with it
    good = tmp_path / "good.yaml"
    good.write_text("lr: 0.001\n")
    _, err = _cli(capsys, "train", "W", "--out", "r", "--config", good, "--set", "seed=x")
    assert err == "thyrovid train: error: --set: seed='x' is not a valid int"
    _, err = _cli(capsys, "train", "W", "--out", "r", "--set", "max_train_batches=0")
    assert err.endswith("max_train_batches must be >= 1 or None")


def test_misspelled_arch_gets_a_suggestion(tmp_path, capsys):
    work = work_dir(tmp_path)
    for typo, meant in (("ResNet-50", "resnet50"), ("densenet", "densenet121")):
        code, err = _cli(capsys, "train", work, "--out", tmp_path / "r", "--arch", typo,
                         "--device", "cpu", "--set", "tensorboard=false")  # fmt: skip
        assert code == 2 and f"unknown model {typo!r}; did you mean {meant}? known models" in err
    assert not (tmp_path / "r").exists()


def test_a_bad_or_absent_device_is_one_line(tmp_path, capsys):
    work = work_dir(tmp_path)
    code, err = _cli(capsys, "train", work, "--out", tmp_path / "r", "--device", "gpu")
    assert code == 2 and err.endswith("--device 'gpu': not a device; use auto, cpu, cuda or cuda:N")
    if not torch.cuda.is_available():
        code, err = _cli(capsys, "train", work, "--out", tmp_path / "r", "--device", "cuda")
        assert code == 2 and err.endswith("(no CUDA GPU is visible); use --device cpu or auto")


# ---------------------------------------------------------------- evaluate


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(work folder, run folder) of one tiny 3D run: P000..P003 train, P004..P005 val."""
    root = tmp_path_factory.mktemp("trained")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        work = work_dir(root)
        return work, train(work, root / "run", TrainConfig(**TINY))
    finally:
        torch.set_num_threads(threads)


def test_evaluate_skips_unreadable_and_misshapen_clips_with_one_line_each(
    trained, tmp_path, capsys
):
    from thyrovid.evaluation.evaluate import evaluate

    work, run = trained
    copy = work_dir(tmp_path)
    (copy / "clips" / "P004_c0.npy").write_bytes(b"\x93NUMPY garbage")
    np.save(copy / "clips" / "P005_c0.npy", np.zeros((8, 48, 48), np.uint8))
    metrics = evaluate(run, ("val",), work_dir=copy)
    err = capsys.readouterr().err
    assert "skipped clip P004_c0:" in err
    assert "skipped clip P005_c0:" in err and "shape 8x48x48, expected 8x32x32" in err
    assert "2 clip(s) got no prediction; left out" in err
    assert metrics["splits"]["val"]["clip"]["n"] == 2


def test_evaluate_refuses_bad_options_before_predicting(trained, monkeypatch):
    import thyrovid.inference.batch
    from thyrovid.evaluation.evaluate import evaluate

    work, run = trained
    monkeypatch.setattr(
        thyrovid.inference.batch, "predict_clips", lambda *a, **k: pytest.fail("ran")
    )
    bad = [
        (dict(threshold=1.5), r"--threshold must be in \[0, 1\], got 1.5"),
        (dict(target_sensitivity=1.2), r"--target-sensitivity must be in \(0, 1\], got 1.2"),
        (dict(target_sensitivity=0.0), r"--target-sensitivity must be in \(0, 1\]"),
        (dict(batch_size=0), "--batch-size must be >= 1"),
        (dict(tta=0), "--tta must be >= 1"),
        (dict(splits=("tst",)), "has none of the splits tst; it has train, val: choose with"),
    ]
    for options, message in bad:
        with pytest.raises(UserError, match=message):
            evaluate(run, work_dir=work, **options)


def test_evaluate_after_the_work_folder_moved_says_pass_work(trained, tmp_path, capsys):
    import shutil

    work, run = trained
    moved_run = tmp_path / "run"
    shutil.copytree(run, moved_run)
    doc = yaml.safe_load((moved_run / "config.yaml").read_text())
    doc["meta"]["work_dir"] = str(tmp_path / "gone")
    (moved_run / "config.yaml").write_text(yaml.safe_dump(doc))
    code, err = _cli(capsys, "evaluate", moved_run, "--device", "cpu")
    assert code == 2 and err.endswith("has moved or gone: pass --work WORK")
    code, _ = _cli(capsys, "evaluate", moved_run, "--device", "cpu", "--work", work)
    assert code == 0


def test_help_names_every_option_a_user_needs(capsys):
    from thyrovid.cli import main

    for command, needed in (
        ("train", ["balance", "pos_weight|sampler", "val_split", "max_train_batches",
                   "selected_by", "lowest", "resnet50", "densenet121", "a new run if"]),
        ("evaluate", ["[0, 1]", "(0, 1]", "Youden", "give it if moved", "metrics.json"]),
    ):  # fmt: skip
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert all(word in text for word in needed), [w for w in needed if w not in text]


def test_a_config_from_another_run_does_not_carry_its_clip_length(tmp_path, capsys):
    old = tmp_path / "old.yaml"
    old.write_text(yaml.safe_dump({**TrainConfig(**TINY).to_dict(), "input_frames": 16}))
    run = train(work_dir(tmp_path), tmp_path / "run", load_config(old))
    assert "input_frames=16 replaced by 8" in capsys.readouterr().err
    assert load_run(run)[1].input_frames == 8


def test_a_last_training_batch_of_one_clip_is_dropped_not_a_batchnorm_crash(tmp_path):
    # 5 training clips, batch 4: the last batch would hold one clip, and BatchNorm cannot
    # normalise one value per channel (8x32x32 clips end in 1x1x1 maps).
    work = work_dir(tmp_path, lambda c: c.drop(c.index[(c.split == "train")][:3]))
    assert (pd.read_csv(work / "clips.csv").split == "train").sum() == 5
    config = TrainConfig(**{**TINY, "max_train_batches": None, "temporal_strides": (2, 2, 2, 1, 1)})
    run = train(work, tmp_path / "run", config)
    assert len(pd.read_csv(run / "log.csv")) == 1


def test_a_corrupt_resume_state_is_one_line_naming_it_and_the_fix(tmp_path):
    work, run = work_dir(tmp_path), tmp_path / "run"
    train(work, run, TrainConfig(**TINY))
    state = run / "state" / "last.pt"
    state.write_bytes(state.read_bytes()[:100])  # truncated by a full disk
    (run / ".model.tmp-999999-x.safetensors").write_bytes(b"half")  # a killed writer's
    with pytest.raises(UserError) as err:
        train(work, run, TrainConfig(**{**TINY, "epochs": 2}), resume=True)
    assert str(err.value).startswith(f"{state}: corrupt resume state (")
    assert "delete it to restart from epoch 1" in str(err.value) and "\n" not in str(err.value)
    state.unlink()
    train(work, run, TrainConfig(**{**TINY, "epochs": 2}), resume=True)
    assert not list(run.glob(".*.tmp-*"))  # the next run cleaned it
