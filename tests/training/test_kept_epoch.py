"""`thyrovid train` ends by naming the epoch it kept; config.yaml records meta.selected_epoch."""

from __future__ import annotations

import csv

import pytest
import yaml

from helpers import TINY_TRAIN, make_work_dir
from thyrovid.config import TrainConfig
from thyrovid.training import train as train_module
from thyrovid.training.runfolder import kept_epoch
from thyrovid.training.train import train


def _rows(aurocs, losses=None):
    losses = losses or [""] * len(aurocs)
    return [{"epoch": str(i + 1), "val_auroc": a, "val_loss": v}
            for i, (a, v) in enumerate(zip(aurocs, losses))]  # fmt: skip


def test_kept_epoch_follows_the_loops_rule():
    # the first epoch of the highest AUROC; blanks (not evaluated) and NaN never win
    assert kept_epoch(_rows(["0.6", "", "0.8", "nan", "0.8"]), "val_auroc")["epoch"] == 3
    by_loss = kept_epoch(_rows(["", "", ""], ["0.7", "0.5", "0.6"]), "val_loss")
    assert by_loss == {"epoch": 2, "value": 0.5, "evaluated": 3}
    assert kept_epoch(_rows(["", ""]), "last")["epoch"] == 2
    assert kept_epoch(_rows(["", ""]), "val_auroc") is None


def test_train_ends_with_the_kept_epoch_line_and_records_it(tmp_path, capsys):
    work = make_work_dir(tmp_path / "work", n_patients=6, frames=8, size=32)
    run = train(work, tmp_path / "run", TrainConfig(**TINY_TRAIN, epochs=3))
    last = capsys.readouterr().err.strip().splitlines()[-1]
    with open(run / "log.csv", newline="") as f:
        log = list(csv.DictReader(f))
    best = max(log, key=lambda r: (float(r["val_auroc"]), -int(r["epoch"])))
    meta = yaml.safe_load((run / "config.yaml").read_text())["meta"]
    assert meta["selected_epoch"] == int(best["epoch"])
    assert last.startswith(f"kept epoch {best['epoch']} of 3: validation AUROC ")
    assert f"{float(best['val_auroc']):.3f} (clip level, split 'val')" in last


def test_train_warns_when_validation_auroc_never_beats_chance(tmp_path, capsys, monkeypatch):
    work = make_work_dir(tmp_path / "work", n_patients=6, frames=8, size=32)
    monkeypatch.setattr(train_module, "validation_auroc", lambda *a, **k: 0.0)
    train(work, tmp_path / "run", TrainConfig(**TINY_TRAIN, epochs=2))
    err = capsys.readouterr().err
    assert "warning: validation AUROC was <= 0.5 in every one of 2 evaluated epoch(s)" in err
    assert "kept epoch 1 of 2: validation AUROC 0.000" in err


def test_no_warning_when_validation_auroc_beats_chance(tmp_path, capsys, monkeypatch):
    work = make_work_dir(tmp_path / "work", n_patients=6, frames=8, size=32)
    monkeypatch.setattr(train_module, "validation_auroc", lambda *a, **k: 0.75)
    train(work, tmp_path / "run", TrainConfig(**TINY_TRAIN, epochs=1))
    assert "warning" not in capsys.readouterr().err


def test_keep_last_keeps_the_final_epoch_and_still_logs_validation(tmp_path, capsys, monkeypatch):
    work = make_work_dir(tmp_path / "work", n_patients=6, frames=8, size=32)
    curve = iter([0.9, 0.6, 0.7])  # the best epoch is the first: keep=last must not take it
    monkeypatch.setattr(train_module, "validation_auroc", lambda *a, **k: next(curve))
    run = train(work, tmp_path / "run", TrainConfig(**TINY_TRAIN, epochs=3, keep="last"))
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last == (
        "kept epoch 3 of 3: the last epoch (keep=last); validation AUROC 0.700 at it, "
        "the highest 0.900 at epoch 1"
    )
    meta = yaml.safe_load((run / "config.yaml").read_text())["meta"]
    assert meta["selected_epoch"] == 3 and meta["selected_by"] == "last"
    with open(run / "log.csv", newline="") as f:
        assert [float(r["val_auroc"]) for r in csv.DictReader(f)] == [0.9, 0.6, 0.7]
    import torch
    from safetensors.torch import load_file

    kept = load_file(run / "model.safetensors")
    final = torch.load(run / "state" / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(kept[k], final[k]) for k in kept)


def test_a_run_counts_as_finished_only_once_train_has_ended(tmp_path, monkeypatch):
    from thyrovid.training import runfolder

    work = make_work_dir(tmp_path / "work", n_patients=6, frames=8, size=32)
    config = TrainConfig(**TINY_TRAIN, epochs=2)
    run = tmp_path / "run"
    assert not runfolder.finished(run)

    def killed(*_args):  # the process dies after the last epoch's weights and state are saved
        raise KeyboardInterrupt

    monkeypatch.setattr(runfolder, "record_selected_epoch", killed)
    with pytest.raises(KeyboardInterrupt):
        train(work, run, config)
    # weights are on disk, yet the run did not end: a caller must resume it, not reuse it
    assert (run / "model.safetensors").is_file()
    assert not runfolder.finished(run)
    monkeypatch.undo()
    train(work, run, config, resume=True)
    assert runfolder.finished(run)
