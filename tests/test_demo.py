"""The demo runs every stage end to end and leaves a report (tiny settings)."""

from __future__ import annotations

import json

import pytest

from thyrovid.demo import DemoSettings, run_demo


@pytest.mark.slow
def test_demo_runs_every_stage_and_writes_the_report(tmp_path, capsys):
    settings = DemoSettings(
        out=str(tmp_path / "demo"),
        patients=40,
        frames=16,
        size=32,
        width=0.125,
        epochs=1,
        device="cpu",
    )
    summary = run_demo(settings)
    out = tmp_path / "demo"
    assert set(summary["seconds"]) >= {
        "synth", "extract", "train_3d", "train_2d", "baseline", "readers"
    }  # fmt: skip
    # the hand-made reference is scored on the same external patients as the networks
    assert 0.0 <= summary["handmade_baseline"]["external"] <= 1.0
    assert json.loads((tmp_path / "demo" / "baseline.json").read_text())["features"]
    for dims in ("3d", "2d"):
        run = out / "runs" / f"{dims}_resnet50"
        assert (run / "model.safetensors").is_file()
        metrics = json.loads((run / "metrics.json").read_text())
        assert {"val", "test", "external"} <= set(metrics["splits"])
    # the demo's CPU recipe is what train got, and config.yaml says so
    import yaml

    config = yaml.safe_load((out / "runs" / "3d_resnet50" / "config.yaml").read_text())
    recipe = summary["recipe"]
    keys = (
        "schedule",
        "balance",
        "val_level",
        "patient_vote",
        "keep",
        "temporal_strides",
        "epochs",
    )
    for key in keys:
        assert config[key] == recipe[key]
    # networks, baseline and ceiling are voted to the patient the same way (any nodule malignant)
    assert recipe["patient_vote"] == "noisy-or" and recipe["keep"] == "last"
    assert config["meta"]["selected_epoch"] == settings.epochs  # the last epoch is kept
    assert metrics["patient_vote"] == "noisy-or"
    assert json.loads((out / "baseline.json").read_text())["patient_vote"] == "noisy-or"
    assert 0.5 <= summary["bayes_patient_auroc_by_split"]["external"] <= 1.0
    assert recipe["schedule"] == "cosine" and recipe["temporal_strides"] == [1, 2, 2, 2, 2]
    assert (out / "readers" / "table4.md").is_file()
    assert (out / "cam" / "cam.csv").is_file()
    html = (out / "report.html").read_text()
    assert "Reader study" in html and "data:image/png;base64" in html
    # a second run reuses what is there (no retraining)
    mtime = (out / "runs" / "3d_resnet50" / "model.safetensors").stat().st_mtime
    run_demo(settings)
    assert (out / "runs" / "3d_resnet50" / "model.safetensors").stat().st_mtime == mtime
    # a run cut short (weights on disk, train never ended) is resumed, not taken as done
    path = out / "runs" / "2d_resnet50" / "config.yaml"
    doc = yaml.safe_load(path.read_text())
    del doc["meta"]["selected_epoch"]
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    run_demo(settings)
    assert "resuming the unfinished run" in capsys.readouterr().err
    assert yaml.safe_load(path.read_text())["meta"]["selected_epoch"] == settings.epochs


def test_demo_help_prints_the_recipe_train_gets():
    import argparse

    from thyrovid.demo import add_arguments

    parser = argparse.ArgumentParser(prog="thyrovid demo")
    add_arguments(parser)
    text = parser.format_help()
    recipe = DemoSettings().recipe()
    assert f"patient_vote={recipe['patient_vote']}" in text and "keep=last" in text
    assert "patient_vote=mean keep=best" in text  # --full: the paper's
