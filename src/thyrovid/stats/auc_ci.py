"""Confidence intervals of one AUROC, four ways (`AUC_CI_METHODS`).

- ``"delong"`` (the default): auc +- z sqrt(DeLong variance), as pROC's ci.auc
  (`thyrovid.stats.roc.auc_ci`); needs two cases of each class.
- ``"hanley"``: Hanley & McNeil (1982), Radiology 143:29-36, from the AUROC and the class
  counts alone: var = (A (1 - A) + (m - 1)(Q1 - A^2) + (n - 1)(Q2 - A^2)) / (m n), with
  Q1 = A / (2 - A), Q2 = 2 A^2 / (1 + A), m positives, n negatives.
- ``"wald-paper"``: the seed paper's intervals, A +- z sqrt(A (1 - A) / N) with N the number of
  cases (the binomial Wald interval applied to the AUROC as if it were a proportion). It is not
  an interval for the AUROC (it ignores the class balance and the ranks) and it is here to
  reproduce the paper: its Table 2 and Table 3 AUROC intervals follow from the AUROC and
  N = 152 (the internal test patients), its Table 4 intervals from N = 244 or 245 (the external
  test patients); `tests/stats/test_auc_ci.py` checks every row.
- ``"bootstrap"``: stratified percentile bootstrap (2000 replicates, seed 0; positives and
  negatives resampled separately, as pROC's default), `thyrovid.stats.bootstrap.bootstrap_ci`.

The normal intervals are clipped to [0, 1]; z = Phi^-1((1 + level) / 2).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import norm

from thyrovid.errors import UserError

AUC_CI_METHODS = ("delong", "hanley", "wald-paper", "bootstrap")
AUC_CI_NAMES = {
    "delong": "DeLong",
    "hanley": "Hanley-McNeil",
    "wald-paper": "Wald on the AUROC, as the paper",
    "bootstrap": "stratified bootstrap",
}


def _z(level: float) -> float:
    if not 0.0 < level < 1.0:
        raise UserError(f"confidence level must be in (0, 1), got {level}")
    return float(norm.ppf(0.5 + level / 2.0))


def _check_auc(auc: float) -> float:
    a = float(auc)
    if not 0.0 <= a <= 1.0:
        raise UserError(f"AUROC must be in [0, 1], got {auc}")
    return a


def paper_auc_ci(auc: float, n: int, level: float = 0.95) -> tuple[float, float]:
    """The seed paper's AUROC interval: auc +- z sqrt(auc (1 - auc) / n), clipped to [0, 1].

    Args:
        auc: the AUROC.
        n: the number of cases (patients) it was computed on.
        level: confidence level.

    Returns:
        (low, high).
    """
    a = _check_auc(auc)
    if int(n) < 1:
        raise UserError(f"n must be >= 1, got {n}")
    half = _z(level) * math.sqrt(a * (1.0 - a) / int(n))
    return max(a - half, 0.0), min(a + half, 1.0)


def hanley_mcneil_se(auc: float, n_pos: int, n_neg: int) -> float:
    """Hanley & McNeil's (1982) standard error of an AUROC from m positives and n negatives."""
    a = _check_auc(auc)
    m, n = int(n_pos), int(n_neg)
    if m < 1 or n < 1:
        raise UserError(f"Hanley-McNeil needs a case of each class, got {m} and {n}")
    q1, q2 = a / (2.0 - a), 2.0 * a * a / (1.0 + a)
    var = (a * (1 - a) + (m - 1) * (q1 - a * a) + (n - 1) * (q2 - a * a)) / (m * n)
    return math.sqrt(max(var, 0.0))


def hanley_mcneil_ci(auc: float, n_pos: int, n_neg: int, level: float = 0.95):
    """(low, high): auc +- z * `hanley_mcneil_se`, clipped to [0, 1]."""
    a = _check_auc(auc)
    half = _z(level) * hanley_mcneil_se(a, n_pos, n_neg)
    return max(a - half, 0.0), min(a + half, 1.0)


def auc_interval(
    truth, score, method: str = "delong", level: float = 0.95, n_boot: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """AUROC of `score` against `truth` with its interval by `method` (AUC_CI_METHODS).

    Returns:
        (auc, low, high).
    """
    from thyrovid.stats.roc import auc, auc_ci

    if method not in AUC_CI_METHODS:
        raise UserError(
            f"AUROC CI method must be one of {', '.join(AUC_CI_METHODS)}, got {method!r}"
        )
    if method == "delong":
        return auc_ci(truth, score, level)
    t = np.asarray(truth).astype(int)
    a = auc(t, score)
    if method == "bootstrap":
        _z(level)
        _, low, high = bootstrap_auc(t, score, level, n_boot, seed)
        return a, low, high
    n_pos = int(t.sum())
    if method == "hanley":
        low, high = hanley_mcneil_ci(a, n_pos, t.size - n_pos, level)
    else:
        low, high = paper_auc_ci(a, t.size, level)
    return a, low, high


def bootstrap_auc(truth, score, level: float, n_boot: int, seed: int):
    from thyrovid.stats.bootstrap import bootstrap_ci
    from thyrovid.stats.roc import auc

    return bootstrap_ci(auc, truth, np.asarray(score, dtype=np.float64), n_boot=n_boot,
                        level=level, seed=seed)  # fmt: skip
