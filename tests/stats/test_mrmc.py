"""Obuchowski-Rockette MRMC analysis against the published analysis of the Van Dyke data.

Expected numbers: the printed output of the Iowa program OR-DBM MRMC 2.51 (Schartz, Hillis,
Pesce & Berbaum), "VanDyke trap area jackknife anova", stored in the RJafroc repository
(github.com/dpc10ster/RJafroc, inst/IowaResults/VanDyke.txt). They are asserted to the
precision printed there. Data: tests/data/vandyke.csv (see tests/data/README_vandyke.md).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from thyrovid.stats.mrmc import auc_covariance, mrmc

DATA = Path(__file__).parents[1] / "data" / "vandyke.csv"


def _close(value: float, printed: str) -> None:
    """Assert value rounds to the printed decimal string (half a unit in the last place)."""
    decimals = len(printed.split(".")[1]) if "." in printed else 0
    assert abs(value - float(printed)) <= 0.5 * 10**-decimals + 1e-12, (value, printed)


@pytest.fixture(scope="module")
def vandyke():
    d = pd.read_csv(DATA)
    cases = np.sort(d["case"].unique())
    truth = d.drop_duplicates("case").set_index("case")["truth"].loc[cases].to_numpy()
    wide = d.pivot_table(index=["modality", "reader"], columns="case", values="rating")
    ratings = wide[cases].to_numpy().reshape(2, 5, len(cases))
    return truth, ratings


@pytest.fixture(scope="module")
def jack(vandyke):
    truth, ratings = vandyke
    return mrmc(truth, ratings, "jackknife", ["1", "2"], ["1", "2", "3", "4", "5"])


def test_reader_aucs_and_means(jack):
    printed = {
        "1": ["0.91964573", "0.85877617", "0.90386473", "0.97310789", "0.82979066"],
        "2": ["0.94782609", "0.90531401", "0.92173913", "0.99935588", "0.92995169"],
    }
    for mod, values in printed.items():
        for reader, p in zip("12345", values):
            _close(jack["auc"][mod][reader], p)
    _close(jack["modality_means"]["1"], "0.89703704")
    _close(jack["modality_means"]["2"], "0.94083736")
    assert jack["n_positive"] == 45 and jack["n_negative"] == 69


def test_anova_and_variance_components(jack):
    a, v = jack["anova"], jack["variance_components"]
    _close(a["ms_t"], "0.00479617")
    _close(a["ms_r"], "0.00383620")
    _close(a["ms_tr"], "0.00055103")
    for key, printed in [
        ("var_r", "0.00153500"),
        ("var_tr", "0.00020040"),
        ("cov1", "0.00034661"),
        ("cov2", "0.00034407"),
        ("cov3", "0.00023903"),
        ("var_error", "0.00080229"),
        ("rho1", "0.43203138"),
        ("rho2", "0.42886683"),
        ("rho3", "0.29793328"),
    ]:
        _close(v[key], printed)


def test_random_readers_random_cases(jack):
    r = jack["rrrc"]
    _close(r["f"], "4.46")
    _close(r["ddf"], "15.26")
    _close(r["p"], "0.0517")
    _close(r["error_ms"], "0.00107626")
    d = r["differences"][0]
    assert d["comparison"] == "1 - 2"
    _close(d["estimate"], "-0.04380")
    _close(d["se"], "0.02075")
    _close(d["statistic"], "-2.11")
    _close(d["ci_low"], "-0.08796")
    _close(d["ci_high"], "0.00036")
    s1, s2 = r["single"]
    _close(s1["se"], "0.03317360")
    _close(s1["df"], "12.74")
    _close(s1["ci_low"], "0.82522360")
    _close(s1["ci_high"], "0.96885048")
    _close(s1["cov2"], "0.00048396")
    _close(s2["ci_low"], "0.89413783")
    _close(s2["ci_high"], "0.98753689")
    _close(s2["df"], "12.71")


def test_fixed_readers_random_cases(jack):
    r = jack["frrc"]
    _close(r["chi2"], "5.47595")
    assert r["df"] == 1 and math.isinf(r["ddf"])
    _close(r["p"], "0.0193")
    d = r["differences"][0]
    _close(d["se"], "0.01872")
    _close(d["statistic"], "-2.34")
    _close(d["ci_low"], "-0.08049")
    _close(d["ci_high"], "-0.00711")
    _close(r["single"][0]["ci_low"], "0.84943008")
    _close(r["single"][1]["ci_high"], "0.97371835")
    _close(r["single"][0]["var_error"], "0.00101410")
    printed = [  # reader: difference, StdErr, p, CI
        ("-0.02818", "0.02551", "0.2693", "-0.07818", "0.02182"),
        ("-0.04654", "0.02630", "0.0768", "-0.09809", "0.00501"),
        ("-0.01787", "0.03121", "0.5668", "-0.07904", "0.04330"),
        ("-0.02625", "0.01729", "0.1290", "-0.06014", "0.00764"),
        ("-0.10016", "0.04406", "0.0230", "-0.18651", "-0.01381"),
    ]
    for row, (diff, se, p, lo, hi) in zip(r["per_reader"], printed):
        _close(row["estimate"], diff)
        _close(row["se"], se)
        _close(row["p"], p)
        _close(row["ci_low"], lo)
        _close(row["ci_high"], hi)


def test_random_readers_fixed_cases(jack):
    r = jack["rrfc"]
    _close(r["f"], "8.70")
    assert r["ddf"] == 4
    _close(r["p"], "0.0420")
    d = r["differences"][0]
    _close(d["se"], "0.01485")
    _close(d["ci_low"], "-0.08502")
    _close(d["ci_high"], "-0.00258")
    _close(r["single"][0]["ci_low"], "0.82809808")
    _close(r["single"][1]["ci_high"], "0.98568536")


def test_delong_covariance_matches_the_roc_module(vandyke):
    """The MRMC DeLong covariance equals thyrovid.stats.roc.delong (itself checked on pROC)."""
    roc = pytest.importorskip("thyrovid.stats.roc")
    truth, ratings = vandyke
    flat = ratings.reshape(10, -1)
    aucs, cov = auc_covariance(truth, flat, "delong")
    ref = roc.delong(truth, flat)
    np.testing.assert_allclose(aucs, ref.aucs, rtol=1e-12)
    np.testing.assert_allclose(cov, ref.cov, rtol=1e-10, atol=1e-15)


def test_delong_and_jackknife_analyses_agree_closely(vandyke, jack):
    """Both covariance estimators target the same quantity: the OR results differ slightly."""
    truth, ratings = vandyke
    dl = mrmc(truth, ratings, "delong")
    assert dl["cov_method"] == "delong"
    assert dl["modality_means"]["1"] == pytest.approx(jack["modality_means"]["1"], abs=1e-15)
    assert dl["rrfc"]["f"] == pytest.approx(jack["rrfc"]["f"])  # no covariance in RRFC
    assert dl["rrrc"]["f"] == pytest.approx(jack["rrrc"]["f"], rel=0.02)
    assert dl["rrrc"]["f"] != jack["rrrc"]["f"]
    vj, vd = jack["variance_components"], dl["variance_components"]
    for key in ("var_error", "cov1", "cov2", "cov3"):
        assert vd[key] == pytest.approx(vj[key], rel=0.03)


def test_fast_jackknife_equals_leave_one_out_recomputation():
    rng = np.random.default_rng(3)
    truth = np.r_[np.zeros(12, int), np.ones(9, int)]
    scores = np.round(rng.normal(size=(3, 21)) + truth, 1)  # rounded: ties on purpose
    aucs, cov = auc_covariance(truth, scores, "jackknife")

    def mw(t, s):
        p, n = s[t == 1], s[t == 0]
        return ((p[:, None] > n).sum() + 0.5 * (p[:, None] == n).sum()) / (len(p) * len(n))

    loo = np.array([[mw(np.delete(truth, k), np.delete(s, k)) for k in range(21)] for s in scores])
    expected = np.cov(loo) * 20**2 / 21
    np.testing.assert_allclose(aucs, [mw(truth, s) for s in scores])
    np.testing.assert_allclose(cov, expected, rtol=1e-10)


def test_needs_two_modalities_and_two_readers():
    truth = np.array([0, 1, 0, 1])
    with pytest.raises(ValueError, match="2 modalities"):
        mrmc(truth, np.zeros((1, 3, 4)))
