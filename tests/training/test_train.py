"""Tests for the training engine: config, run folder, resume after SIGKILL, learning."""

from __future__ import annotations

import argparse
import csv
import dataclasses
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import torch
import yaml
from safetensors.torch import load_file

from helpers import TINY_TRAIN, make_work_dir
from thyrovid.config import TrainConfig, load_config, parse_overrides
from thyrovid.errors import UserError
from thyrovid.runs import load_run
from thyrovid.training.train import add_arguments, config_from_args, train


def _env():
    env = dict(os.environ, OMP_NUM_THREADS="1")
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    return env


def _log(run):
    with open(run / "log.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_defaults_are_the_papers_recipe():
    c = TrainConfig()
    assert (c.lr, c.betas, c.batch_size, c.epochs, c.dropout) == (1e-3, (0.9, 0.999), 16, 100, 0.5)
    assert c.schedule == "none" and c.patience is None and c.balance == "none"
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.lr = 1.0  # type: ignore[misc]


def test_yaml_then_flags_then_set(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("lr: 0.0003\nepochs: 7\nschedule: cosine\naug_scale: [0.8, 1.1]\n")
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(
        [
            "W",
            "--out",
            "R",
            "--config",
            str(cfg),
            "--epochs",
            "9",
            "--set",
            "patience=3",
            "betas=[0.5,0.9]",
        ]
    )
    c = config_from_args(args)
    assert (c.lr, c.epochs, c.schedule, c.patience) == (3e-4, 9, "cosine", 3)
    assert c.betas == (0.5, 0.9) and c.aug_scale == (0.8, 1.1)
    assert load_config(None, parse_overrides(["patience=none"])).patience is None


def test_bad_options_are_one_line_user_errors(tmp_path):
    with pytest.raises(UserError, match="unknown training option.*lerning_rate"):
        load_config(None, {"lerning_rate": 1})
    with pytest.raises(UserError, match="schedule"):
        load_config(None, {"schedule": "linear"})
    with pytest.raises(UserError, match="epochs"):
        load_config(None, {"epochs": "many"})
    with pytest.raises(UserError, match="key=value"):
        parse_overrides(["lr"])


def test_run_folder_and_load_run(tmp_path):
    work = make_work_dir(tmp_path / "work", n_patients=6, frames=8, size=32)
    config = TrainConfig(**TINY_TRAIN, epochs=2, balance="pos_weight", schedule="cosine")
    run = train(work, tmp_path / "run", config)
    assert {p.name for p in run.iterdir()} >= {
        "config.yaml",
        "model.safetensors",
        "state",
        "log.csv",
    }
    rows = _log(run)
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert 0.0 <= float(rows[-1]["val_auroc"]) <= 1.0 and float(rows[-1]["clips_per_s"]) > 0
    assert float(rows[1]["lr"]) < float(rows[0]["lr"])  # cosine schedule
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["input_frames"] == 8 and saved["meta"]["input_shape"] == [1, 8, 32, 32]
    state = torch.load(run / "state" / "last.pt", weights_only=True)
    assert state["epoch"] == 1
    model, loaded = load_run(run)
    assert loaded == config.replace(input_frames=8)
    assert not model.training
    ref = load_file(str(run / "model.safetensors"))
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in ref.items())
    with pytest.raises(UserError, match="already holds a run"):
        train(work, run, config)
    with pytest.raises(UserError, match="different lr"):
        train(work, run, config.replace(lr=0.1), resume=True)


def test_2d_run_on_key_frames(tmp_path):
    work = make_work_dir(tmp_path / "work", n_patients=6, frames=4, size=32)
    config = TrainConfig(**{**TINY_TRAIN, "dims": 2}, epochs=1, balance="sampler")
    model, cfg = load_run(train(work, tmp_path / "run", config))
    assert cfg.dims == 2
    assert model(torch.zeros(2, 1, 32, 32)).shape == (2, 1)


def _train_cmd(work, run, *extra):
    return [
        sys.executable, "-m", "thyrovid", "train", str(work), "--out", str(run),
        "--arch", "densenet121", "--dims", "3", "--epochs", "3", "--batch-size", "4",
        "--width", "0.125", "--num-workers", "0", "--seed", "1", "--device", "cpu",
        "--set", "temporal_strides=[1,1,1,2,2]", "tensorboard=false", *extra,
    ]  # fmt: skip


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_gives_the_same_weights(tmp_path):
    work = make_work_dir(tmp_path / "work", n_patients=12, frames=8, size=32)
    full, killed = tmp_path / "full", tmp_path / "killed"
    quiet = dict(env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    ref = subprocess.Popen(_train_cmd(work, full), **quiet)
    victim = subprocess.Popen(_train_cmd(work, killed), **quiet)
    deadline = time.time() + 240
    while not (killed / "state" / "last.pt").exists():  # epoch 1 finished
        assert victim.poll() is None and time.time() < deadline, "training ended early"
        time.sleep(0.01)
    # just into epoch 2 (after warm-up an epoch of these 12 patients takes ~0.4 s on an idle
    # machine; a fixed 0.3 s pause on 6 patients outlasted epoch 2, which then was saved)
    time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    first = _log(killed)
    assert len(first) == 1, "killed too late: epoch 2 had already finished"
    resumed = subprocess.run(_train_cmd(work, killed, "--resume"), **quiet, timeout=240)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert ref.wait(timeout=240) == 0, ref.stderr.read()[-2000:]
    assert _log(killed)[0] == first[0]  # epoch 1 was not trained again
    assert [r["val_auroc"] for r in _log(killed)] == [r["val_auroc"] for r in _log(full)]
    a, b = load_file(str(full / "model.safetensors")), load_file(str(killed / "model.safetensors"))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    last_a = torch.load(full / "state" / "last.pt", weights_only=True)["model"]
    last_b = torch.load(killed / "state" / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(last_a[k], last_b[k]) for k in last_a)


@pytest.mark.slow
def test_small_3d_network_learns_the_phantom(tmp_path):
    """Acceptance: a width-reduced 3D ResNet50 learns the phantom on 2 CPU cores, and beats
    the hand-made baseline on the same held-out clips.

    200 phantom patients (696 training clips), 16x64x64 clips, 8 epochs of the demo's recipe
    (cosine decay, class-balanced loss) at batch 8, the last epoch kept: no checkpoint is
    chosen, so the score below is on clips the run never selected on. Both checks are on all
    286 held-out clips (val + test, 60 patients); chance is 0.5. The baseline (logistic
    regression on five hand-made clip features, `evaluation.baseline`) is fitted on the same
    training clips as the network, and scored on the same held-out clips.

    Measured (torch 2.13 CPU, AMD EPYC): training seeds 0-3 on one thread give 0.793, 0.813,
    0.807, 0.844, and seed 0 on two threads 0.785 (mean 0.808, sd 0.022); the baseline, which
    does not depend on the training seed, gets 0.738: 3 sd below the network's mean. On
    another phantom draw (seed 1), seeds 0-2 give 0.767, 0.824, 0.746. Torch's CPU kernels sum
    in an order that depends on the processor and the thread count, so no single trajectory is
    asserted: an earlier version of this test asserted the best of 5 epochs on 6 validation
    patients, which held on one processor and failed (0.70) on another.
    """
    from sklearn.metrics import roc_auc_score

    from thyrovid.clips.extract import extract
    from thyrovid.evaluation.baseline import baseline_probabilities
    from thyrovid.inference.batch import predict_clips
    from thyrovid.synth.cohort import SynthConfig, synthesize

    phantom, work = tmp_path / "phantom", tmp_path / "work"
    synth = SynthConfig(
        patients=200, seed=0, centers=("int_a", "int_b"), frames=(18, 22), size=(96, 128)
    )
    synthesize(phantom, synth)
    extract(phantom / "cohort.csv", work, frames=16, size=64, seed=0)
    recipe = dict(schedule="cosine", balance="pos_weight", keep="last", epochs=8, batch_size=8)
    config = TrainConfig(
        **{**TINY_TRAIN, "arch": "resnet50", "temporal_strides": (1, 2, 2, 2, 2), **recipe}
    )
    run = train(work, tmp_path / "run", config)
    clips = pd.read_csv(work / "clips.csv")
    held = clips.merge(predict_clips(run, work, ("val", "test")), on="clip_id")
    assert len(held) == int(clips["split"].isin(["val", "test"]).sum())
    auroc = roc_auc_score(held["label"], held["prob"])
    clips["baseline"] = baseline_probabilities(work, clips, fit_splits=("train",))
    held = held.merge(clips[["clip_id", "baseline"]], on="clip_id")
    baseline = roc_auc_score(held["label"], held["baseline"])
    print(
        f"held-out clip AUROC {auroc:.3f}, hand-made baseline {baseline:.3f}",
        [r["val_auroc"][:5] for r in _log(run)],
    )
    assert auroc >= 0.70
    assert auroc > baseline
