"""Metrics of `thyrovid evaluate`: threshold from validation only, CIs, calibration, files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from helpers import make_clips, make_work_dir
from thyrovid.evaluation.metrics import calibration, metrics_from_predictions
from thyrovid.inference.voting import soft_vote
from thyrovid.reliability import clip_interval
from thyrovid.stats.proportions import binary_metrics
from thyrovid.stats.roc import auc_ci, choose_threshold


def predictions(seed: int = 0, n_patients: int = 60) -> pd.DataFrame:
    return soft_vote(
        make_clips(seed=seed, n_patients=n_patients, splits=("val", "test", "external"))
    )


def rows(pred: pd.DataFrame, split: str, level: str = "patient") -> pd.DataFrame:
    return pred[(pred["split"] == split) & (pred["level"] == level)]


def test_threshold_comes_from_validation_patients_only():
    pred = predictions()
    val = rows(pred, "val")
    expected = choose_threshold(val["label"].to_numpy(), val["prob"].to_numpy())
    metrics = metrics_from_predictions(pred)
    assert metrics["threshold"]["value"] == expected
    assert metrics["threshold"]["method"] == "youden"
    assert metrics["threshold"]["split"] == "val" and metrics["threshold"]["level"] == "patient"

    # Youden on the test split itself would give another threshold ...
    test = rows(pred, "test")
    assert choose_threshold(test["label"].to_numpy(), test["prob"].to_numpy()) != expected
    # ... and perturbing every test/external score leaves the threshold alone.
    rng = np.random.default_rng(5)
    perturbed = pred.copy()
    outside = perturbed["split"] != "val"
    perturbed.loc[outside, "prob"] = rng.random(int(outside.sum()))
    assert metrics_from_predictions(perturbed)["threshold"]["value"] == expected

    # Test metrics use the validation threshold, at every level.
    for level in ("patient", "nodule", "video", "clip"):
        block = metrics["splits"]["test"][level]
        r = rows(pred, "test", level)
        pos = r["prob"].to_numpy() >= expected
        truth = r["label"].to_numpy() == 1
        assert block["threshold"] == expected
        assert (block["tp"], block["fp"], block["tn"], block["fn"]) == (
            int((pos & truth).sum()),
            int((pos & ~truth).sum()),
            int((~pos & ~truth).sum()),
            int((~pos & truth).sum()),
        )
        assert block["n"] == len(r) and block["n_pos"] == int(truth.sum())


def test_metrics_match_thyrovid_stats_with_each_ci_method():
    pred = predictions(seed=3)
    for ci in ("wilson", "wald", "clopper-pearson"):
        m = metrics_from_predictions(pred, ci=ci)
        block = m["splits"]["external"]["patient"]
        r = rows(pred, "external")
        a, lo, hi = auc_ci(r["label"].to_numpy(), r["prob"].to_numpy())
        shown = {k: block["auroc"][k] for k in ("value", "low", "high")}
        assert shown == pytest.approx({"value": a, "low": lo, "high": hi}, rel=1e-12)
        assert block["auroc"]["method"] == "delong"
        ref = binary_metrics(block["tp"], block["fp"], block["tn"], block["fn"], ci=ci)
        for key in ("accuracy", "sensitivity", "specificity", "ppv", "npv", "f1", "kappa"):
            clip_interval(ref[key], key, "")  # a bound out of its range: clipped, raw kept
            assert block[key] == ref[key]
        p, y = r["prob"].to_numpy(), r["label"].to_numpy()
        assert block["brier"] == pytest.approx(np.mean((p - y) ** 2), rel=1e-12)
    json.dumps(m, allow_nan=False)  # valid JSON, no NaN


def test_fixed_threshold_target_sensitivity_and_missing_validation(capsys):
    pred = predictions(seed=4)
    fixed = metrics_from_predictions(pred, threshold=0.42)
    assert fixed["threshold"]["value"] == 0.42 and fixed["threshold"]["source"] == "--threshold"

    target = metrics_from_predictions(pred, target_sensitivity=0.9)
    assert target["threshold"]["method"] == "sensitivity"
    assert target["splits"]["val"]["patient"]["sensitivity"]["value"] >= 0.9

    no_val = metrics_from_predictions(pred[pred["split"] != "val"])
    assert no_val["threshold"]["value"] == 0.5
    assert "no validation split" in no_val["threshold"]["source"]
    assert "warning: no validation split; using threshold 0.5" in capsys.readouterr().err


def test_auroc_says_why_it_has_no_value_or_no_ci():
    from thyrovid.evaluation.metrics import level_metrics

    prob = np.array([0.1, 0.4, 0.6, 0.9])
    one_class = level_metrics(np.ones(4), prob, 0.5)["auroc"]
    assert (
        one_class["value"] is None and "one class only (4 malignant, 0 benign)" in one_class["note"]
    )
    one_benign = level_metrics(np.array([0, 1, 1, 1]), prob, 0.5)["auroc"]
    assert (
        one_benign["value"] == 1.0 and one_benign["low"] is None and "no CI" in one_benign["note"]
    )
    assert "note" not in level_metrics(np.array([0, 0, 1, 1]), prob, 0.5)["auroc"]


def test_calibration_slope_and_intercept_match_maximum_likelihood():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    p = rng.uniform(0.02, 0.98, 4000)
    logit = np.log(p / (1 - p))
    # truth from a miscalibrated model: true logit = 0.3 + 0.6 * logit(p) (over-confident p)
    y = (rng.random(p.size) < 1 / (1 + np.exp(-(0.3 + 0.6 * logit)))).astype(int)
    cal = calibration(y, p)
    ref = LogisticRegression(C=np.inf, tol=1e-10, max_iter=1000).fit(logit[:, None], y)
    assert cal["slope"] == pytest.approx(ref.coef_[0, 0], abs=1e-4)
    assert cal["intercept"] == pytest.approx(ref.intercept_[0], abs=1e-4)
    assert 0.5 < cal["slope"] < 0.7  # recovers the simulated over-confidence
    assert sum(b["n"] for b in cal["bins"]) == p.size
    top = cal["bins"][-1]
    assert top["low"] == pytest.approx(0.9) and top["frac_pos"] < top["mean_prob"]
    # perfect separation: no finite fit, reported as None rather than a huge number
    sep = calibration([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9])
    assert sep["slope"] is None and sep["intercept"] is None


# --------------------------------------------------------------------------- a tiny phantom
SPLITS = ["train"] * 8 + ["val"] * 6 + ["test"] * 6 + ["external"] * 4


def regroup(work) -> pd.DataFrame:
    """Give the fabricated work folder a real hierarchy: per patient 2 nodules, 3 videos, 4 clips.

    clips c0, c1 -> nodule n0 video v0; c2 -> n0 v1; c3 -> n1 v2. Nodule n1 is malignant when
    n0 is benign in every other patient (so "patient positive if any nodule is" matters).
    One test clip is dropped so the clip count is odd (uneven torchrun shards).
    """
    clips = pd.read_csv(work / "clips.csv", dtype={"patient_id": str})
    c = clips["clip_id"].str.extract(r"_c(\d)$")[0].astype(int)
    pnum = clips["patient_id"].str[1:].astype(int)
    clips["nodule_id"] = np.where(c < 3, "n0", "n1")  # repeats across patients on purpose
    clips["video_id"] = (
        clips["patient_id"] + "_v" + np.where(c < 2, "0", np.where(c == 2, "1", "2"))
    )
    flip = (c == 3) & (pnum % 4 < 2)
    clips.loc[flip, "label"] = 1 - clips.loc[flip, "label"]
    drop = clips.index[clips["split"] == "test"][0]
    clips = clips.drop(index=drop)
    clips.to_csv(work / "clips.csv", index=False)
    return clips


@pytest.fixture(scope="module")
def phantom(tmp_path_factory):
    """A fabricated work folder and two tiny trained runs (3D ResNet50, 3D DenseNet121)."""
    from thyrovid.config import TrainConfig
    from thyrovid.training.train import train

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("phantom")
    work = make_work_dir(
        root / "work", n_patients=len(SPLITS), frames=8, size=32, clips_per_patient=4, splits=SPLITS
    )
    regroup(work)
    runs = []
    for arch in ("resnet50", "densenet121"):
        config = TrainConfig(arch=arch, dims=3, width=0.125, epochs=1, batch_size=8, device="cpu",
                             num_workers=0, tensorboard=False, augment=False,
                             temporal_strides=(1, 1, 1, 2, 2))  # fmt: skip
        runs.append(train(work, root / arch, config))
    return work, runs


def independent_vote(clips: pd.DataFrame, clip_prob: dict) -> dict:
    """video/nodule/patient probabilities and patient labels by plain loops (no pandas groupby)."""
    video, nodule_videos, patient_nodules, label = {}, {}, {}, {}
    for r in clips.itertuples():
        video.setdefault(r.video_id, []).append(clip_prob[r.clip_id])
        nodule_videos.setdefault((r.patient_id, r.nodule_id), set()).add(r.video_id)
        patient_nodules.setdefault(r.patient_id, set()).add(r.nodule_id)
        label[r.patient_id] = max(label.get(r.patient_id, 0), int(r.label))
    video = {k: sum(v) / len(v) for k, v in video.items()}
    nodule = {k: sum(video[v] for v in vs) / len(vs) for k, vs in nodule_videos.items()}
    patient = {p: sum(nodule[(p, n)] for n in ns) / len(ns) for p, ns in patient_nodules.items()}
    return {"video": video, "nodule": nodule, "patient": patient, "patient_label": label}


def test_evaluate_writes_files_votes_exactly_and_uses_the_validation_threshold(phantom):
    from thyrovid.clips.dataset import ClipDataset, to_model_input
    from thyrovid.evaluation.evaluate import evaluate
    from thyrovid.runs import load_run

    work, (run, _) = phantom
    metrics = evaluate(run, ("test", "external"), work_dir=work)
    pred = pd.read_csv(run / "predictions.csv", dtype={"id": str, "patient_id": str})
    assert json.loads((run / "metrics.json").read_text()) == metrics
    assert list(pred.columns) == ["level", "id", "patient_id", "center", "split", "label", "prob"]
    assert set(pred["split"]) == {"val", "test", "external"}  # val added: it sets the threshold

    # clip level = the network's sigmoid output on the clip
    model, _ = load_run(run)
    ds = ClipDataset(work, ["val", "test", "external"], dims=3)
    x = torch.stack([ds[i]["x"] for i in range(len(ds))])
    with torch.no_grad():
        direct = torch.sigmoid(model(to_model_input(x))[:, 0]).numpy()
    clip_rows = pred[pred["level"] == "clip"].set_index("id")
    assert len(clip_rows) == len(ds) and clip_rows.index.is_unique
    np.testing.assert_allclose(
        clip_rows.loc[ds.clips["clip_id"], "prob"], direct, rtol=1e-5, atol=1e-6
    )

    # every level is the mean of the level below, computed independently
    clips = pd.read_csv(work / "clips.csv", dtype={"patient_id": str})
    clips = clips[clips["split"] != "train"]
    ref = independent_vote(clips, clip_rows["prob"].to_dict())
    got = {
        lvl: pred[pred["level"] == lvl].set_index("id")["prob"]
        for lvl in ("video", "nodule", "patient")
    }
    assert got["video"].to_dict() == pytest.approx(ref["video"], rel=1e-12)
    assert got["nodule"].to_dict() == pytest.approx(
        {f"{p}/{n}": v for (p, n), v in ref["nodule"].items()}, rel=1e-12
    )
    assert got["patient"].to_dict() == pytest.approx(ref["patient"], rel=1e-12)
    patient_label = pred[pred["level"] == "patient"].set_index("id")["label"].to_dict()
    assert patient_label == ref["patient_label"]
    assert sum(patient_label.values()) > sum(
        clips.groupby("patient_id")["label"].first()
    )  # "any" matters

    val = pred[(pred["split"] == "val") & (pred["level"] == "patient")]
    assert metrics["threshold"]["value"] == choose_threshold(
        val["label"].to_numpy(), val["prob"].to_numpy()
    )
    test = pred[(pred["split"] == "test") & (pred["level"] == "patient")]
    block = metrics["splits"]["test"]["patient"]
    assert block["tp"] + block["fn"] == test["label"].sum()
    assert block["tp"] == int(
        ((test["prob"] >= metrics["threshold"]["value"]) & (test["label"] == 1)).sum()
    )
    for split in ("val", "test", "external"):
        assert set(metrics["splits"][split]) == {"patient", "nodule", "video", "clip"}


def test_patient_vote_and_auc_ci_are_recorded_and_shown_in_the_report(phantom, tmp_path):
    """--patient-vote max: the patient is its most suspicious nodule; --auc-ci wald-paper: the
    patient AUROC interval is the paper's AUC +- 1.96 sqrt(AUC(1-AUC)/n)."""
    import shutil

    from thyrovid.evaluation.evaluate import evaluate
    from thyrovid.report.report import build_report
    from thyrovid.stats.auc_ci import paper_auc_ci

    work, (run, _) = phantom
    other = tmp_path / run.name
    shutil.copytree(run, other, ignore=shutil.ignore_patterns("predictions.csv", "metrics.json"))
    metrics = evaluate(other, ("test",), work_dir=work, auc_ci="wald-paper", patient_vote="max")
    saved = json.loads((other / "metrics.json").read_text())
    assert saved["patient_vote"] == "max" and saved["auc_ci"] == "wald-paper"
    pred = pd.read_csv(other / "predictions.csv", dtype={"id": str, "patient_id": str})
    nodules = pred[pred["level"] == "nodule"].groupby(["split", "patient_id"])["prob"].max()
    patients = pred[pred["level"] == "patient"].set_index(["split", "patient_id"])["prob"]
    assert patients.to_dict() == pytest.approx(nodules.to_dict(), rel=1e-12)
    block = metrics["splits"]["test"]["patient"]["auroc"]
    n = metrics["splits"]["test"]["patient"]["n"]
    assert block["method"] == "wald-paper"
    assert (block["low"], block["high"]) == pytest.approx(paper_auc_ci(block["value"], n))
    page = build_report(runs=[other], out=tmp_path / "r.html").read_text()
    assert "Patient vote: max of the nodules" in page
    assert "Wald on the AUROC, as the paper" in page and "--patient-vote max" in page


def test_cli_evaluate_default_work_from_config_then_compare(phantom, tmp_path, capsys):
    from thyrovid.cli import main

    work, (run_a, run_b) = phantom
    # a run folder that records its work folder needs no --work
    doc = yaml.safe_load((run_b / "config.yaml").read_text())
    doc["meta"]["work_dir"] = str(work)
    (run_b / "config.yaml").write_text(yaml.safe_dump(doc))
    assert (
        main(
            [
                "evaluate",
                str(run_b),
                "--splits",
                "test",
                "--tta",
                "2",
                "--ci",
                "wald",
                "--threshold",
                "0.5",
                "--json",
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["threshold"] == 0.5 and "test" in out
    metrics_b = json.loads((run_b / "metrics.json").read_text())
    assert metrics_b["tta"] == 2 and metrics_b["ci"] == "wald"

    if not (run_a / "predictions.csv").is_file():
        assert main(["evaluate", str(run_a), "--work", str(work)]) == 0
    assert (
        main(["compare", str(run_a), str(run_b), "--split", "test", "--out", str(tmp_path / "cmp")])
        == 0
    )
    table = pd.read_csv(tmp_path / "cmp" / "table_display.csv", index_col=0)
    assert list(table.columns) == ["3D ResNet50", "3D DenseNet121"]
    for name in (
        "table.md",
        "delong.csv",
        "roc.png",
        "roc.svg",
        "delong.png",
        "confusion.png",
        "confusion.svg",
    ):
        assert (tmp_path / "cmp" / name).stat().st_size > 0

    # without a recorded work folder: one clear line
    doc.pop("meta")
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "config.yaml").write_text(yaml.safe_dump(doc))
    capsys.readouterr()
    assert main(["evaluate", str(bare)]) == 2
    assert "no work_dir recorded; pass --work WORK" in capsys.readouterr().err


@pytest.mark.slow
def test_torchrun_two_ranks_write_each_clip_once(phantom, tmp_path):
    import os
    import shutil
    import subprocess
    import sys

    work, (run, _) = phantom
    two = tmp_path / "two"
    shutil.copytree(run, two, ignore=shutil.ignore_patterns("predictions.csv", "metrics.json"))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "thyrovid", "evaluate", str(two), "--work", str(work), "--batch-size", "4",
           "--json"]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count('"threshold"') == 1  # rank 0 alone prints the summary
    pred = pd.read_csv(two / "predictions.csv", dtype={"id": str})
    clips = pd.read_csv(work / "clips.csv", dtype={"clip_id": str})
    want = clips.loc[clips["split"] != "train", "clip_id"]
    assert len(want) % 2 == 1  # uneven shards
    got = pred.loc[pred["level"] == "clip", "id"]
    assert got.is_unique and sorted(got) == sorted(want)
    single = evaluate_single(run, work)
    merged = single.merge(pred, on=["level", "id", "split"], suffixes=("_1", "_2"))
    assert len(merged) == len(single) == len(pred)
    np.testing.assert_allclose(merged["prob_2"], merged["prob_1"], rtol=1e-5, atol=1e-6)


def evaluate_single(run, work) -> pd.DataFrame:
    from thyrovid.evaluation.evaluate import evaluate

    if not (run / "predictions.csv").is_file():
        evaluate(run, work_dir=work)
    return pd.read_csv(run / "predictions.csv", dtype={"id": str})
