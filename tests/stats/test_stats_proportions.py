"""Proportion CIs, confusion-matrix metrics, kappa, McNemar and the bootstrap.

Published numbers: the seed paper's Table 2 (3D InceptionResNetV2, internal test, patient level;
shared/reference/README.md) and Newcombe (1998), "Two-sided confidence intervals for the single
proportion", Statistics in Medicine 17:857-872, Table I (examples 81/263, 15/148, 0/20, 1/29).
"""

import math

import numpy as np
import pytest
from scipy.stats import binom

from thyrovid.errors import UserError
from thyrovid.stats import agreement, bootstrap, proportions, roc

# ----------------------------------------------------------------------------- the paper


def test_seed_paper_table2_inception_resnet_v2_column_with_wald():
    m = proportions.binary_metrics(tp=101, fp=7, tn=29, fn=15, ci="wald")
    paper = {
        "accuracy": (0.855, 0.799, 0.911),
        "sensitivity": (0.871, 0.810, 0.932),
        "specificity": (0.806, 0.676, 0.935),
        "ppv": (0.935, 0.889, 0.982),
        "npv": (0.659, 0.519, 0.799),
    }
    for name, (v, lo, hi) in paper.items():
        got = m[name]
        assert (round(got["value"], 3), round(got["low"], 3), round(got["high"], 3)) == (v, lo, hi)
    assert round(m["f1"]["value"], 3) == 0.902
    assert m["f1"]["low"] is None and m["f1"]["high"] is None
    assert round(m["kappa"]["value"], 3) == 0.628
    assert m["kappa"]["low"] < 0.628 < m["kappa"]["high"]
    assert m["youden"]["value"] == pytest.approx(101 / 116 + 29 / 36 - 1, abs=1e-12)


def test_default_ci_is_wilson_and_narrower_side_stays_in_unit_interval():
    m = proportions.binary_metrics(tp=101, fp=7, tn=29, fn=15)
    assert m["ppv"]["low"] == pytest.approx(proportions.proportion_ci(101, 108, "wilson")[1])
    # Wald puts PPV's upper bound at 0.982; Wilson's is pulled towards the centre
    assert m["ppv"]["high"] < 0.982


def test_undefined_metric_is_none_not_nan():
    m = proportions.binary_metrics(tp=0, fp=0, tn=5, fn=3)  # nothing predicted positive
    assert m["ppv"] == {"value": None, "low": None, "high": None}
    assert m["sensitivity"]["value"] == 0.0 and m["npv"]["value"] == 5 / 8


# ----------------------------------------------------------------------------- proportion CIs

NEWCOMBE = {  # (k, n): {method: (low, high)} to 4 decimals, Newcombe (1998) Table I
    (81, 263): {"wald": (0.2522, 0.3638), "wilson": (0.2553, 0.3662)},
    (15, 148): {"wald": (0.0527, 0.1500), "wilson": (0.0624, 0.1605)},
    (0, 20): {"wilson": (0.0, 0.1611), "clopper-pearson": (0.0, 0.1684)},
    (1, 29): {"wilson": (0.0061, 0.1718), "clopper-pearson": (0.0009, 0.1776)},
}


@pytest.mark.parametrize("kn", list(NEWCOMBE))
def test_proportion_cis_match_newcombe(kn):
    k, n = kn
    for method, (lo, hi) in NEWCOMBE[kn].items():
        p, low, high = proportions.proportion_ci(k, n, method)
        assert p == k / n
        assert (round(low, 4), round(high, 4)) == (lo, hi), method


@pytest.mark.parametrize("k, n", [(3, 10), (81, 263), (7, 7)])
def test_clopper_pearson_bounds_solve_the_binomial_tails(k, n):
    _, low, high = proportions.proportion_ci(k, n, "clopper-pearson", level=0.9)
    if k > 0:
        assert binom.sf(k - 1, n, low) == pytest.approx(0.05, abs=1e-9)  # P(X >= k | low)
    if k < n:
        assert binom.cdf(k, n, high) == pytest.approx(0.05, abs=1e-9)  # P(X <= k | high)
    else:
        assert high == 1.0


def test_wald_is_not_clipped_and_wilson_is_inside():
    _, low, _ = proportions.proportion_ci(1, 29, "wald")
    assert low < 0.0  # as the paper's formula gives
    _, low, high = proportions.proportion_ci(29, 29, "wilson")
    assert 0.0 < low < high == 1.0


def test_bad_counts_are_user_errors():
    with pytest.raises(UserError, match="n > 0"):
        proportions.proportion_ci(0, 0)
    with pytest.raises(UserError, match="exceeds"):
        proportions.proportion_ci(5, 3)
    with pytest.raises(UserError, match="one of"):
        proportions.proportion_ci(1, 3, "exact")
    with pytest.raises(UserError, match="tp"):
        proportions.binary_metrics(-1, 2, 3, 4)


def test_confusion_counts():
    truth = [1, 1, 1, 0, 0, 0, 0]
    pred = [1, 0, 1, 1, 0, 0, 0]
    assert proportions.confusion(truth, pred) == (2, 1, 3, 1)
    with pytest.raises(UserError, match="index 1"):
        proportions.confusion([0, 2], [0, 1])


# ----------------------------------------------------------------------------- kappa


def _kappa_of(p: np.ndarray) -> float:
    p = p / p.sum()
    po, pe = np.trace(p), p.sum(axis=1) @ p.sum(axis=0)
    return (po - pe) / (1 - pe)


@pytest.mark.parametrize(
    "table", [[[101, 7], [15, 29]], [[20, 5, 1], [3, 30, 4], [2, 6, 25]], [[4, 1], [2, 9]]]
)
def test_kappa_se_equals_delta_method_of_the_multinomial(table):
    """Fleiss-Cohen-Everitt ASE == numerical delta method (independent derivation)."""
    t = np.asarray(table, float)
    n, p = t.sum(), (t / t.sum()).ravel()
    eps = 1e-6
    grad = np.array(
        [
            (_kappa_of((p + eps * e).reshape(t.shape)) - _kappa_of((p - eps * e).reshape(t.shape)))
            / (2 * eps)
            for e in np.eye(p.size)
        ]
    )
    var = grad @ (np.diag(p) - np.outer(p, p)) @ grad / n
    kappa, low, high = agreement.kappa_table(t, level=0.95)
    assert kappa == pytest.approx(_kappa_of(t), abs=1e-12)
    assert (high - low) / (2 * 1.959963984540054) == pytest.approx(math.sqrt(var), rel=1e-6)


def test_cohen_kappa_orientation_and_undefined():
    k, _, _ = agreement.cohen_kappa(tp=101, fp=7, tn=29, fn=15)
    assert round(k, 3) == 0.628
    assert agreement.cohen_kappa(tp=10, fp=0, tn=0, fn=0) == (None, None, None)
    perfect, low, high = agreement.cohen_kappa(tp=10, fp=0, tn=10, fn=0)
    assert perfect == 1.0 and low == high == 1.0


# ----------------------------------------------------------------------------- McNemar


def test_mcnemar_exact_for_small_counts():
    pred1 = [1] * 10 + [0] * 3 + [1] * 20
    pred2 = [0] * 10 + [1] * 3 + [1] * 20
    r = agreement.mcnemar(pred1, pred2)
    assert (r["b"], r["c"], r["method"]) == (10, 3, "exact")
    # 2 * P[Bin(13, 1/2) <= 3] = 2 * (1 + 13 + 78 + 286) / 2^13
    assert r["p"] == pytest.approx(2 * 378 / 8192, abs=1e-15)


def test_mcnemar_chi_square_with_continuity_correction():
    r = agreement.mcnemar_counts(30, 14)
    assert r["method"] == "chi-square"
    assert r["statistic"] == pytest.approx(15**2 / 44, abs=1e-12)
    assert r["p"] == pytest.approx(math.erfc(math.sqrt(r["statistic"] / 2)), abs=1e-12)
    assert agreement.mcnemar_counts(30, 14, exact=True)["method"] == "exact"
    assert agreement.mcnemar_counts(5, 5)["p"] == 1.0
    assert agreement.mcnemar_counts(0, 0)["p"] == 1.0


def test_mcnemar_with_truth_compares_correctness():
    truth = np.array([1, 1, 0, 0, 1, 0])
    pred1 = np.array([1, 1, 0, 0, 0, 1])  # right on 0-3
    pred2 = np.array([0, 1, 1, 0, 1, 0])  # right on 1, 3, 4, 5
    r = agreement.mcnemar(pred1, pred2, truth=truth)
    assert (r["b"], r["c"]) == (2, 2)  # 1 right only on {0, 2}; 2 right only on {4, 5}


# ----------------------------------------------------------------------------- bootstrap


@pytest.fixture(scope="module")
def scored():
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 2, 300)
    return truth, truth + rng.normal(size=300)


def test_bootstrap_is_seeded(scored):
    truth, score = scored
    a = bootstrap.bootstrap_ci(roc.auc, truth, score, n_boot=200, seed=7)
    b = bootstrap.bootstrap_ci(roc.auc, truth, score, n_boot=200, seed=7)
    c = bootstrap.bootstrap_ci(roc.auc, truth, score, n_boot=200, seed=8)
    assert a == b and a != c
    assert a[0] == roc.auc(truth, score)


def test_bootstrap_auc_ci_close_to_delong(scored):
    truth, score = scored
    value, low, high = bootstrap.bootstrap_ci(roc.auc, truth, score, n_boot=1000)
    _, dlow, dhigh = roc.auc_ci(truth, score)
    assert low < value < high
    assert abs(low - dlow) < 0.02 and abs(high - dhigh) < 0.02


def test_bootstrap_unstratified_drops_single_class_replicates():
    truth = np.array([1, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    score = np.linspace(0, 1, 10)
    v, low, high = bootstrap.bootstrap_ci(roc.auc, truth, score, n_boot=300, stratified=True)
    assert v == low == high == 0.0  # the single positive always has the lowest score
    # unstratified, ~35% of replicates lack the positive: they are dropped, not fatal
    v, low, high = bootstrap.bootstrap_ci(roc.auc, truth, score, n_boot=300, stratified=False)
    assert v == low == high == 0.0
    with pytest.raises(UserError, match="replicates"):
        bootstrap.bootstrap_ci(lambda t, s: float("nan"), truth, score, n_boot=50)
