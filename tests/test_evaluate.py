"""Metrics of `thyrovid evaluate`: threshold from validation only, CIs, calibration, files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from test_predict import make_clips

from thyrovid.evaluate import calibration, metrics_from_predictions
from thyrovid.predict import soft_vote
from thyrovid.stats.proportions import binary_metrics
from thyrovid.stats.roc import auc_ci, choose_threshold


def predictions(seed: int = 0, n_patients: int = 60) -> pd.DataFrame:
    return soft_vote(make_clips(seed=seed, n_patients=n_patients, splits=("val", "test", "external")))


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
        assert block["auroc"] == {"value": a, "low": lo, "high": hi}
        ref = binary_metrics(block["tp"], block["fp"], block["tn"], block["fn"], ci=ci)
        for key in ("accuracy", "sensitivity", "specificity", "ppv", "npv", "f1", "kappa"):
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
