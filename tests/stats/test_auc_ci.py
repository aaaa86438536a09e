"""AUROC intervals: the seed paper's, from its printed AUROC and N, and the other methods."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from thyrovid.cli import main
from thyrovid.stats.auc_ci import auc_interval, hanley_mcneil_se, paper_auc_ci
from thyrovid.stats.roc import auc_ci

# AUROC (95% CI) rows typed in from the seed paper's tables: Table 2 (3D models) and Table 3
# (2D models) on the internal test set of 152 patients; Table 4 (the 3D InceptionResNetV2 and
# the readers without (-1) and with (-2) the model) on the external test set of 245 patients.
TABLE2_3D = {
    "3D InceptionResNetV2": (0.933, 0.893, 0.973),
    "3D DenseNet": (0.900, 0.852, 0.948),
    "3D Xception": (0.882, 0.830, 0.933),
    "3D InceptionV3": (0.871, 0.818, 0.924),
    "3D ResNet": (0.826, 0.766, 0.887),
}
TABLE3_2D = {
    "2D InceptionResNetV2": (0.838, 0.780, 0.897),
    "2D DenseNet": (0.807, 0.744, 0.870),
    "2D Xception": (0.796, 0.732, 0.860),
    "2D InceptionV3": (0.784, 0.719, 0.850),
    "2D ResNet": (0.764, 0.697, 0.832),
}
TABLE4 = {
    "3D InceptionResNetV2": (0.916, 0.881, 0.951),
    "JR1-1": (0.617, 0.556, 0.678),
    "JR1-2": (0.702, 0.645, 0.760),
    "JR2-1": (0.553, 0.490, 0.615),
    "JR2-2": (0.636, 0.575, 0.696),
    "SR1-1": (0.665, 0.606, 0.724),
    "SR1-2": (0.741, 0.686, 0.796),
    "SR2-1": (0.715, 0.659, 0.772),
    "SR2-2": (0.766, 0.713, 0.819),
}
N_INTERNAL, N_EXTERNAL = 152, 244
ALL = [(k, v, N_INTERNAL) for t in (TABLE2_3D, TABLE3_2D) for k, v in t.items()] + [
    (k, v, N_EXTERNAL) for k, v in TABLE4.items()
]


@pytest.mark.parametrize("name, row, n", ALL, ids=[f"{a}-n{c}" for a, _, c in ALL])
def test_paper_interval_from_the_printed_auroc_is_within_rounding(name, row, n):
    """From the printed (rounded) AUROC, both bounds land within 0.001 of the printed ones."""
    auc, low, high = row
    lo, hi = paper_auc_ci(auc, n)
    assert abs(round(lo, 3) - low) <= 0.001 + 1e-9 and abs(round(hi, 3) - high) <= 0.001 + 1e-9


@pytest.mark.parametrize("name, row, n", ALL, ids=[f"{a}-n{c}" for a, _, c in ALL])
def test_paper_interval_is_exact_for_an_auroc_that_prints_as_the_paper(name, row, n):
    """The paper computed from the unrounded AUROC: some AUROC that prints as the paper's gives
    both bounds exactly to 3 decimals (the remaining 0.001 above is the AUROC's rounding)."""
    auc, low, high = row
    grid = np.linspace(auc - 0.0005, auc + 0.0005, 1001)[:-1]
    hits = [
        a
        for a in grid
        if (round(paper_auc_ci(a, n)[0], 3), round(paper_auc_ci(a, n)[1], 3)) == (low, high)
    ]
    assert hits, f"{name}: no AUROC in [{auc - 0.0005}, {auc + 0.0005}) gives ({low}, {high})"


def test_table2_3d_rows_and_table4_model_row_to_three_decimals():
    """The acceptance rows: which reproduce exactly from the printed AUROC, which by rounding."""
    exact = {}
    for name, (auc, low, high) in TABLE2_3D.items():
        lo, hi = paper_auc_ci(auc, N_INTERNAL)
        exact[name] = (round(lo, 3), round(hi, 3)) == (low, high)
    lo, hi = paper_auc_ci(*TABLE4["3D InceptionResNetV2"][:1], N_EXTERNAL)
    assert (round(lo, 3), round(hi, 3)) == (0.881, 0.951)
    assert [round(x, 3) for x in paper_auc_ci(0.916, 245)] == [0.881, 0.951]
    assert exact == {
        "3D InceptionResNetV2": True,
        "3D DenseNet": True,
        "3D Xception": False,  # 0.831 from 0.882; 0.830 from e.g. 0.8816
        "3D InceptionV3": True,
        "3D ResNet": False,  # 0.886 from 0.826; 0.887 from e.g. 0.8263
    }


def test_hanley_mcneil_at_half_is_the_mann_whitney_null_variance():
    """At A = 0.5, Hanley-McNeil's variance is (m + n + 1) / (12 m n), the U statistic's."""
    for m, n in ((10, 20), (41, 72), (100, 144)):
        assert hanley_mcneil_se(0.5, m, n) ** 2 == pytest.approx((m + n + 1) / (12 * m * n))


def test_every_method_brackets_the_auroc_on_asah():
    data = pd.read_csv(Path(__file__).resolve().parents[1] / "data" / "aSAH.csv")
    truth = (data["outcome"] == "Poor").to_numpy(int)
    score = data["s100b"].to_numpy(float)
    for method in ("delong", "hanley", "wald-paper", "bootstrap"):
        a, lo, hi = auc_interval(truth, score, method)
        assert lo < a < hi and a == pytest.approx(0.7313686, abs=1e-6)
    assert auc_interval(truth, score, "bootstrap") == auc_interval(truth, score, "bootstrap")
    assert auc_interval(truth, score, "delong") == auc_ci(truth, score)


def test_stats_auc_ci_command_prints_the_papers_interval(capsys):
    assert main(["stats", "auc-ci", "--auc", "0.916", "--n", "245", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert [round(rep["low"], 3), round(rep["high"], 3)] == [0.881, 0.951]
    assert main(["stats", "auc-ci", "--auc", "0.933", "--n", "152"]) == 0
    assert "0.893 - 0.973" in capsys.readouterr().out
    assert main(["stats", "auc-ci", "--auc", "0.9", "--n", "10", "--method", "hanley"]) == 2
    assert "--n-pos" in capsys.readouterr().err


def test_wald_paper_half_width_formula():
    lo, hi = paper_auc_ci(0.9, 100)
    assert hi - 0.9 == pytest.approx(1.959963985 * math.sqrt(0.09 / 100))
