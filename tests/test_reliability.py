"""thyrovid.reliability: each warning raised on a constructed case, absent on a clean one."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from thyrovid.evaluation.metrics import level_metrics, metrics_from_predictions
from thyrovid.reliability import (
    MIN_PER_CLASS_AUROC,
    MIN_PER_CLASS_THRESHOLD,
    MIN_SPREAD,
    calibration_slope,
    clip_interval,
    decision_margin,
    emit,
    empty_heatmap,
    few_for_auroc,
    few_for_threshold,
    from_json,
    limits,
    metrics_cautions,
    narrow_spread,
    never_above_chance,
    prob_interval,
    prob_range,
    threshold_band,
    to_json,
)


def _codes(cautions) -> list[str]:
    return [c.code for c in cautions]


def _predictions(n_val_per_class: int, n_test_per_class: int, seed=0, constant=None):
    """A predictions table (patient level) whose probabilities separate the classes well."""
    rng = np.random.default_rng(seed)
    rows = []
    for split, k in (("val", n_val_per_class), ("test", n_test_per_class)):
        for label in (0, 1):
            for i in range(k):
                p = constant if constant is not None else rng.uniform(0.05, 0.55) + 0.4 * label
                rows.append(("patient", f"{split}{label}{i}", f"{split}{label}{i}", "A", split,
                             label, p))  # fmt: skip
    cols = ["level", "id", "patient_id", "center", "split", "label", "prob"]
    return pd.DataFrame(rows, columns=cols)


# ---------------------------------------------------------------- too few patients


def test_few_patients_to_choose_a_threshold_names_the_count_and_the_minimum():
    (c,) = few_for_threshold(1, 2, "val/patient/threshold")
    assert "on 3 validation patients (1 malignant and 2 benign" in c.message
    assert f"at least {MIN_PER_CLASS_THRESHOLD} of each class" in c.message
    assert few_for_threshold(MIN_PER_CLASS_THRESHOLD, 40, "x") == []


def test_few_cases_for_an_auroc_says_why_a_ci_is_missing():
    (one,) = few_for_auroc(1, 2, "test/patient", "patients")
    assert "1 malignant and 2 benign patients" in one.message
    assert "no CI" in one.message and "2 of each class" in one.message
    (none,) = few_for_auroc(0, 3, "test/patient")
    assert "undefined" in none.message
    (few,) = few_for_auroc(4, 5, "test/patient")
    assert f"at least {MIN_PER_CLASS_AUROC}" in few.message
    assert few_for_auroc(MIN_PER_CLASS_AUROC, MIN_PER_CLASS_AUROC, "t") == []


def test_evaluate_metrics_warn_of_a_threshold_on_three_patients_and_not_on_forty():
    small = metrics_from_predictions(_predictions(2, 12).iloc[1:], quiet=True)  # 3 val patients
    codes = {(w["code"], w["where"]) for w in small["warnings"]}
    assert ("few_for_threshold", "val/patient/threshold") in codes
    assert ("few_for_auroc", "val/patient") in codes
    big = metrics_from_predictions(_predictions(20, 20), quiet=True)
    assert not [w for w in big["warnings"] if w["code"].startswith("few_")]


def test_default_threshold_is_a_warning_in_metrics_json(capsys):
    pred = _predictions(0, 12)
    m = metrics_from_predictions(pred[pred["split"] == "test"])
    assert [w["code"] for w in m["warnings"]].count("default_threshold") == 1
    assert "warning: no validation split; using threshold 0.5" in capsys.readouterr().err


# ---------------------------------------------------------------- a degenerate model


def test_near_constant_model_is_flagged_and_a_spread_one_is_not():
    flat = [0.86 + 0.005 * (i % 3) for i in range(30)]  # the demo's 0.86-0.87 to every case
    (c,) = narrow_spread(prob_range(flat), 30, "test/patient")
    assert "nearly the same P(malignant)" in c.message and f"< {MIN_SPREAD}" in c.message
    assert narrow_spread(prob_range(np.linspace(0.05, 0.95, 30)), 30, "test/patient") == []


def test_calibration_slope_out_of_range_is_flagged():
    (c,) = calibration_slope(35.3, -65.5, "test/patient")
    assert "calibration slope 35.3, intercept -65.5" in c.message
    assert calibration_slope(15.9, None, "x") and calibration_slope(0.05, 0.0, "x")
    assert calibration_slope(1.1, 0.1, "x") == [] and calibration_slope(None, None, "x") == []


def test_level_metrics_of_a_near_constant_model_warn_through_metrics_cautions():
    rng = np.random.default_rng(1)
    truth = np.r_[np.zeros(15), np.ones(15)].astype(int)
    flat = 0.865 + 0.002 * rng.standard_normal(30) + 0.001 * truth
    metrics = {"threshold": {"method": "fixed"}, "splits": {"test": {"patient": level_metrics(
        truth, flat, 0.86)}}}  # fmt: skip
    assert "narrow_spread" in _codes(metrics_cautions(metrics))
    good = 0.2 + 0.6 * truth + 0.1 * rng.standard_normal(30)
    clean = {"threshold": {"method": "fixed"}, "splits": {"test": {"patient": level_metrics(
        truth, np.clip(good, 0.01, 0.99), 0.5)}}}  # fmt: skip
    assert not {"narrow_spread", "calibration_slope"} & set(_codes(metrics_cautions(clean)))


def test_validation_auroc_never_above_half_is_flagged():
    (c,) = never_above_chance(["0.0", "", "0.0", "0.5"])
    assert "every one of 3 evaluated epoch(s)" in c.message and "best 0.500" in c.message
    assert never_above_chance(["0.4", "0.71"]) == []
    assert never_above_chance(["", ""]) == []  # nothing evaluated: nothing to judge


# ---------------------------------------------------------------- heatmaps, intervals


def test_an_all_zero_heatmap_is_flagged():
    (c,) = empty_heatmap(np.zeros((4, 8, 8), np.float32), "clip P01_f00010")
    assert "all zeros (max 0.0)" in c.message and c.where == "clip P01_f00010"
    cam = np.zeros((4, 8, 8), np.float32)
    cam[1, 2, 3] = 0.7
    assert empty_heatmap(cam, "x") == []


def test_a_ci_beyond_its_range_is_clipped_and_said_so():
    kappa = {"value": 0.62, "low": 0.002, "high": 1.238}
    (c,) = clip_interval(kappa, "kappa", "readers/JR1")
    assert kappa["high"] == 1.0 and kappa["clipped"] == {"high": 1.238}
    assert "kappa high 1.238 -> 1" in c.message
    auroc = {"value": 0.9, "low": 0.736, "high": 1.064}
    assert clip_interval(auroc, "auroc", "mrmc") and auroc["high"] == 1.0
    inside = {"value": 0.5, "low": 0.1, "high": 0.9}
    assert clip_interval(inside, "accuracy", "x") == [] and "clipped" not in inside


def test_metrics_json_marks_a_clipped_wald_interval():
    pred = _predictions(15, 15)
    m = metrics_from_predictions(pred, ci="wald", quiet=True)
    for block in m["splits"].values():
        for metric in ("accuracy", "sensitivity", "specificity", "kappa"):
            entry = block["patient"][metric]
            assert -1.0 <= entry["low"] <= entry["high"] <= 1.0
    clipped = [w for w in m["warnings"] if w["code"] == "ci_clipped"]
    assert clipped and all("CI clipped to its range" in w["message"] for w in clipped)


# ---------------------------------------------------------------- the decision's margin


def test_decision_margin_words_near_and_clear_calls():
    band = {"low": 0.09, "high": 0.31}
    near = decision_margin(0.1406, 0.1684, band)
    assert near["near"] and near["words"].startswith("near the threshold")
    far = decision_margin(0.01, 0.1684, band)
    assert not far["near"] and far["words"].startswith("clearly below the threshold")
    assert decision_margin(0.9, 0.1684, band)["words"].startswith("clearly above")
    assert decision_margin(0.5, None, band) is None
    assert "no band" in decision_margin(0.2, 0.5, None)["words"]


def test_threshold_band_is_wide_on_three_patients_and_narrower_on_many():
    small = threshold_band([0, 0, 1], [0.1, 0.3, 0.2])
    rng = np.random.default_rng(0)
    truth = np.r_[np.zeros(200), np.ones(200)].astype(int)
    prob = np.clip(0.3 + 0.4 * truth + 0.15 * rng.standard_normal(400), 0, 1)
    big = threshold_band(truth, prob)
    assert small["high"] - small["low"] > big["high"] - big["low"]
    assert big["low"] <= 0.5 <= big["high"] + 0.1
    assert threshold_band([1, 1], [0.2, 0.3]) is None


def test_probability_interval_of_a_video_from_its_clips():
    interval = prob_interval([0.1, 0.2, 0.3, 0.9])
    assert 0.1 <= interval["low"] < interval["high"] <= 0.9
    assert prob_interval([0.4]) is None


def test_emit_prints_each_warning_once_and_json_round_trips():
    cautions = few_for_threshold(1, 2, "v") * 2 + empty_heatmap(np.zeros(3), "c")
    stream = io.StringIO()
    emit(cautions, stream)
    assert stream.getvalue().count("warning: ") == 2
    assert from_json(to_json(cautions)) == cautions[1:]
    assert limits(cautions)[0].startswith("decision threshold chosen")


@pytest.mark.parametrize("constant", [0.865])
def test_a_model_giving_every_patient_the_same_probability_warns(constant):
    m = metrics_from_predictions(_predictions(12, 12, constant=constant), quiet=True)
    assert "narrow_spread" in {w["code"] for w in m["warnings"]}
