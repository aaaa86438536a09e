"""AUROC / DeLong against pROC's published values on its aSAH data, plus degenerate inputs.

Expected numbers are verbatim from pROC's test suite (tests/testthat/, files named per test);
data: tests/data/aSAH.csv (see tests/data/README.md). Positive = outcome "Poor", higher = Poor.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from thyrovid.errors import UserError
from thyrovid.stats import auc_compare, roc

DATA = Path(__file__).parents[1] / "data" / "aSAH.csv"
TOL = 1e-9

AUC = {  # test-auc.R, helper-deLongPlacementsCpp-expected.R
    "wfns": 0.823678861788618,
    "ndka": 0.611957994579946,
    "s100b": 0.731368563685637,
}
VAR = {  # test-var.R
    "wfns": 0.00146991470882363,
    "ndka": 0.0031908105493913,
    "s100b": 0.00266868245717244,
}
COV = {  # test-cov.R
    ("wfns", "ndka"): -0.000532967856762438,
    ("ndka", "s100b"): -0.000756164938056579,
    ("s100b", "wfns"): 0.00119615567376754,
}


@pytest.fixture(scope="module")
def asah():
    df = pd.read_csv(DATA)
    truth = (df["outcome"] == "Poor").to_numpy()
    return truth, {c: df[c].to_numpy(float) for c in ("wfns", "ndka", "s100b")}


def test_asah_shape(asah):
    truth, _ = asah
    assert truth.size == 113 and truth.sum() == 41


@pytest.mark.parametrize("name", ["wfns", "ndka", "s100b"])
def test_auc_matches_proc(asah, name):
    truth, s = asah
    assert roc.auc(truth, s[name]) == pytest.approx(AUC[name], abs=TOL)


def test_delong_aucs_variances_covariances_match_proc(asah):
    truth, s = asah
    names = ["wfns", "ndka", "s100b"]
    d = roc.delong(truth, np.stack([s[n] for n in names]))
    assert (d.n_pos, d.n_neg) == (41, 72)
    for i, n in enumerate(names):
        assert d.aucs[i] == pytest.approx(AUC[n], abs=TOL)
        assert d.cov[i, i] == pytest.approx(VAR[n], abs=TOL)
        assert d.var[i] == pytest.approx(VAR[n], abs=TOL)
    for (a, b), v in COV.items():
        i, j = names.index(a), names.index(b)
        assert d.cov[i, j] == pytest.approx(v, abs=TOL)
        assert d.cov[j, i] == pytest.approx(v, abs=TOL)


def test_delong_single_score_is_1x1(asah):
    truth, s = asah
    d = roc.delong(truth, s["ndka"])
    assert d.aucs.shape == (1,) and d.cov.shape == (1, 1)
    assert d.cov[0, 0] == pytest.approx(VAR["ndka"], abs=TOL)


def test_ci_auc_ndka_matches_proc(asah):  # test-ci.auc.R
    truth, s = asah
    a, lo, hi = roc.auc_ci(truth, s["ndka"])
    assert a == pytest.approx(AUC["ndka"], abs=TOL)
    assert lo == pytest.approx(0.501244999271703, abs=TOL)
    assert hi == pytest.approx(0.722670989888189, abs=TOL)


@pytest.mark.parametrize(
    "a, b, z, p",
    [  # test-roc.test.R
        ("wfns", "s100b", 2.20898359144091, 0.0271757822291882),
        ("wfns", "ndka", 2.79777591868904, 0.00514557970691098),
        ("ndka", "s100b", -1.39077002573558, 0.164295175223054),
    ],
)
def test_paired_delong_matches_proc(asah, a, b, z, p):
    truth, s = asah
    r = auc_compare.delong_test(truth, s[a], s[b])
    assert r["z"] == pytest.approx(z, abs=TOL)
    assert r["p"] == pytest.approx(p, abs=TOL)
    assert r["diff"] == pytest.approx(AUC[a] - AUC[b], abs=TOL)
    swapped = auc_compare.delong_test(truth, s[b], s[a])
    assert swapped["z"] == pytest.approx(-z, abs=TOL)
    assert swapped["p"] == pytest.approx(p, abs=TOL)


@pytest.mark.parametrize(
    "a, b, low, high",
    [  # test-roc.test.R (conf.int)
        ("wfns", "s100b", 0.0104061769564846, 0.174214419249478),
        ("wfns", "ndka", 0.0634011709339876, 0.3600405634833566),
        ("ndka", "s100b", -0.2876917446341914, 0.0488706064228094),
    ],
)
def test_paired_ci_of_difference_matches_proc(asah, a, b, low, high):
    truth, s = asah
    r = auc_compare.delong_test(truth, s[a], s[b])
    assert r["ci_low"] == pytest.approx(low, abs=TOL)
    assert r["ci_high"] == pytest.approx(high, abs=TOL)


def test_one_sided_wfns_greater_than_s100b(asah):  # test-roc.test.R
    truth, s = asah
    r = auc_compare.delong_test(truth, s["wfns"], s["s100b"], alternative="greater")
    assert r["p"] == pytest.approx(0.0135878911145941, abs=TOL)
    assert r["z"] == pytest.approx(2.20898359144091, abs=TOL)
    # pROC reports the two-sided CI of the difference for every alternative
    assert r["ci_low"] == pytest.approx(0.0104061769564846, abs=TOL)
    less = auc_compare.delong_test(truth, s["wfns"], s["s100b"], alternative="less")
    assert less["p"] == pytest.approx(0.986412108885406, abs=TOL)
    # negated scores, AUCs 1 - AUC: the difference and Z flip sign, so "greater" becomes "less"
    neg = auc_compare.delong_test(truth, -s["wfns"], -s["s100b"], alternative="less")
    assert neg["p"] == pytest.approx(0.0135878911145941, abs=TOL)


def test_all_pairs_agree_with_single_tests(asah):
    truth, s = asah
    names = ["wfns", "ndka", "s100b"]
    pairs = auc_compare.delong_all_pairs(truth, np.stack([s[n] for n in names]), names=names)
    assert [(r["name1"], r["name2"]) for r in pairs] == [
        ("wfns", "ndka"),
        ("wfns", "s100b"),
        ("ndka", "s100b"),
    ]
    assert pairs[0]["z"] == pytest.approx(2.79777591868904, abs=TOL)
    assert pairs[1]["p"] == pytest.approx(0.0271757822291882, abs=TOL)
    assert pairs[2]["z"] == pytest.approx(-1.39077002573558, abs=TOL)


@pytest.mark.parametrize(
    "a, b, d, p",
    [  # test-roc.test.R, roc.test(paired = FALSE): statistic D, Student t p
        ("wfns", "s100b", 1.43490640926908, 0.152825378808796),
        ("wfns", "ndka", 3.10125096778969, 0.00220950791756457),
        ("ndka", "s100b", -1.55995743389685, 0.120192832430845),
    ],
)
def test_unpaired_test_matches_proc(asah, a, b, d, p):
    truth, s = asah
    r = auc_compare.delong_unpaired(truth, s[a], truth, s[b])
    assert r["z"] == pytest.approx(d, abs=TOL)
    assert r["p"] == pytest.approx(p, abs=TOL)
    assert r["z"] == pytest.approx((AUC[a] - AUC[b]) / np.sqrt(VAR[a] + VAR[b]), abs=TOL)


def test_unpaired_one_sided_matches_proc(asah):  # test-roc.test.R
    truth, s = asah
    gt = auc_compare.delong_unpaired(truth, s["wfns"], truth, s["s100b"], alternative="greater")
    lt = auc_compare.delong_unpaired(truth, s["wfns"], truth, s["s100b"], alternative="less")
    assert gt["p"] == pytest.approx(0.076412689404398, abs=TOL)
    assert lt["p"] == pytest.approx(0.923587310595602, abs=TOL)


# ----------------------------------------------------------------------------- degenerate


def test_identical_scores_give_z0_p1(asah):
    truth, s = asah
    r = auc_compare.delong_test(truth, s["s100b"], s["s100b"].copy())
    assert r["z"] == 0.0 and r["p"] == 1.0
    r = auc_compare.delong_test(truth, s["s100b"], np.exp(s["s100b"]))  # same ranks
    assert r["z"] == 0.0 and r["p"] == 1.0


def test_perfect_vs_constant_score_is_infinitely_significant():
    truth = np.array([0, 0, 0, 1, 1, 1])
    r = auc_compare.delong_test(truth, [0.1, 0.2, 0.3, 0.7, 0.8, 0.9], np.full(6, 0.5))
    assert (r["auc1"], r["auc2"], r["se"]) == (1.0, 0.5, 0.0)
    assert r["z"] == np.inf and r["p"] == 0.0


def test_scores_of_different_length_are_refused():
    with pytest.raises(UserError, match="differ in shape"):
        auc_compare.delong_test([0, 1, 0, 1], [0.1, 0.2, 0.3, 0.4], [0.1, 0.2, 0.3])


def test_single_class_is_a_clear_error():
    with pytest.raises(UserError, match="only positive"):
        roc.auc([1, 1, 1], [0.1, 0.2, 0.3])
    with pytest.raises(UserError, match="only negative"):
        roc.delong([0, 0], [0.1, 0.2])


def test_delong_needs_two_of_each_class():
    assert roc.auc([0, 1, 1], [0.1, 0.5, 0.2]) == 1.0  # the AUC alone is fine
    with pytest.raises(UserError, match="at least 2 positives"):
        roc.delong([0, 1, 1], [0.1, 0.5, 0.2])


def test_constant_scores_give_half():
    truth = np.array([0, 1, 0, 1, 1])
    assert roc.auc(truth, np.full(5, 0.7)) == 0.5
    a, lo, hi = roc.auc_ci(truth, np.full(5, 0.7))
    assert (a, lo, hi) == (0.5, 0.5, 0.5)


def test_nan_score_is_refused_with_index():
    with pytest.raises(UserError, match="index 2"):
        roc.auc([0, 1, 0, 1], [0.1, 0.4, np.nan, 0.9])


def test_non_binary_truth_is_refused():
    with pytest.raises(UserError, match="0/1"):
        roc.auc([0, 1, 2], [0.1, 0.2, 0.3])


def test_perfect_and_reversed_scores():
    truth = np.array([0, 0, 1, 1])
    assert roc.auc(truth, [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert roc.auc(truth, [0.9, 0.8, 0.2, 0.1]) == 0.0


def test_choose_threshold_youden_and_sensitivity():
    truth = np.array([0, 0, 0, 1, 0, 1, 1, 1])
    score = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8])
    # >= 0.4: sens 1, spec 3/4 (J 0.75); >= 0.6: sens 3/4, spec 1 (J 0.75): tie -> higher
    assert roc.choose_threshold(truth, score) == 0.6
    assert roc.choose_threshold(truth, score, "sensitivity", target=1.0) == 0.4
    assert roc.choose_threshold(truth, score, "sensitivity", target=0.5) == 0.7
    with pytest.raises(UserError):
        roc.choose_threshold(truth, score, "sensitivity")


# ----------------------------------------------------------------------------- properties

_labels = st.lists(st.integers(0, 1), min_size=4, max_size=30).filter(
    lambda v: 2 <= sum(v) <= len(v) - 2
)


@settings(max_examples=60, deadline=None)
@given(data=st.data(), truth=_labels)
def test_auc_invariant_to_increasing_transform(data, truth):
    n = len(truth)
    score = np.array(data.draw(st.lists(st.integers(-5, 5), min_size=n, max_size=n)), float)
    a = roc.auc(truth, score)
    assert roc.auc(truth, np.exp(score / 3.0)) == pytest.approx(a, abs=1e-12)
    assert roc.auc(truth, score**3 + 7.0 * score) == pytest.approx(a, abs=1e-12)
    assert roc.auc(truth, -score) == pytest.approx(1.0 - a, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(data=st.data(), truth=_labels, k=st.integers(1, 3))
def test_fast_delong_equals_slow_placement_formula(data, truth, k):
    n = len(truth)
    rows = [data.draw(st.lists(st.integers(0, 4), min_size=n, max_size=n)) for _ in range(k)]
    scores = np.array(rows, float)  # few distinct values: many ties
    fast, slow = roc.delong(truth, scores), roc.delong_slow(truth, scores, chunk=3)
    np.testing.assert_allclose(fast.aucs, slow.aucs, rtol=0, atol=1e-12)
    np.testing.assert_allclose(fast.cov, slow.cov, rtol=0, atol=1e-12)
