"""DeLong tests between two AUROCs, paired (same cases) or unpaired, as pROC's roc.test.

The AUROCs and their DeLong covariance come from `thyrovid.stats.roc`. Validated against
pROC's published test values on its aSAH data (tests/stats/test_stats_roc.py).
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
from scipy.stats import norm
from scipy.stats import t as student_t

from thyrovid.errors import UserError
from thyrovid.stats.roc import DeLong, check_level, delong

ALTERNATIVES = ("two-sided", "greater", "less")


def _z_test(
    a1: float, a2: float, var: float, alternative: str, level: float, df: float | None = None
) -> dict:
    """Test of AUC1 - AUC2 with variance var, as pROC roc.test (method "delong").

    The statistic is (AUC1 - AUC2) / sqrt(var), referred to the standard normal, or to Student's
    t with ``df`` degrees of freedom when df is given (pROC's unpaired test). Identical AUCs with
    zero variance (identical scores) give z = 0, p = 1; a nonzero difference with zero variance
    gives z = +-inf, p = 0. The CI of the difference is always the two-sided ``level`` interval
    diff +- crit * se, also for one-sided alternatives (as pROC reports it).
    """
    if alternative not in ALTERNATIVES:
        raise UserError(f"alternative must be one of {ALTERNATIVES}, got {alternative!r}")
    check_level(level)
    dist = norm if df is None else student_t(df)
    diff = a1 - a2
    se = float(np.sqrt(max(var, 0.0)))
    if se > 0.0:
        z = diff / se
    elif diff == 0.0:
        z = 0.0  # identical AUCs with no variance of the difference: no evidence at all
    else:
        z = float(np.copysign(np.inf, diff))
    if alternative == "two-sided":
        p = 2.0 * dist.sf(abs(z))
    elif alternative == "greater":
        p = dist.sf(z)
    else:
        p = dist.cdf(z)
    half = float(dist.ppf(0.5 + level / 2.0)) * se
    out = {
        "auc1": float(a1),
        "auc2": float(a2),
        "diff": float(diff),
        "se": se,
        "z": float(z),
        "p": float(min(p, 1.0)),
        "ci_low": float(diff - half),
        "ci_high": float(diff + half),
    }
    if df is not None:
        out["df"] = float(df)
    return out


def paired_from_delong(
    d: DeLong, i: int, j: int, alternative: str = "two-sided", level: float = 0.95
) -> dict:
    """Paired DeLong test of AUC_i vs AUC_j from a precomputed covariance.

    Returns:
        dict with auc1, auc2, diff (= auc_i - auc_j), se, z, p, ci_low, ci_high; the CI is the
        two-sided ``level`` interval whatever the alternative (as pROC).
    """
    var = d.cov[i, i] + d.cov[j, j] - 2.0 * d.cov[i, j]
    return _z_test(d.aucs[i], d.aucs[j], var, alternative, level)


def delong_test(truth, score1, score2, alternative: str = "two-sided", level: float = 0.95) -> dict:
    """Paired DeLong test between two correlated AUROCs (same cases), as pROC roc.test.

    Z = (AUC1 - AUC2) / SD; swapping the scores flips the sign of Z, not p.
    alternative "greater" tests AUC1 > AUC2.

    Args:
        truth: (N,) 0/1 labels, 1 = positive.
        score1, score2: (N,) scores of the two models on the same N cases.
        alternative: "two-sided", "greater" or "less".
        level: confidence level of the CI of the difference.

    Returns:
        dict with keys auc1, auc2, diff, se, z, p, ci_low, ci_high. Identical (or identically
        ranked) scores give z = 0, p = 1. If the difference has zero variance but is not 0
        (e.g. a perfect score vs a constant one), z = +-inf and p = 0. The CI of the difference
        is two-sided at ``level`` for every alternative, as pROC reports it.
    """
    a, b = np.asarray(score1, dtype=np.float64), np.asarray(score2, dtype=np.float64)
    if a.shape != b.shape:
        raise UserError(f"score1 and score2 differ in shape: {a.shape} vs {b.shape}")
    return paired_from_delong(delong(truth, np.stack([a, b])), 0, 1, alternative, level)


def delong_all_pairs(
    truth, scores, names=None, alternative: str = "two-sided", level: float = 0.95
) -> list[dict]:
    """Paired DeLong tests for every pair (i < j) of k correlated scores.

    Args:
        truth: (N,) 0/1 labels.
        scores: (k, N) scores.
        names: optional k names (default "0", "1", ...).

    Returns:
        One dict per pair, as :func:`delong_test`, plus "name1" and "name2". No multiplicity
        correction is applied (report it, or multiply p by the number of pairs for Bonferroni).
    """
    d = delong(truth, scores)
    k = d.aucs.size
    names = [str(i) for i in range(k)] if names is None else [str(v) for v in names]
    if len(names) != k:
        raise UserError(f"{len(names)} names for {k} scores")
    out = []
    for i, j in combinations(range(k), 2):
        res = paired_from_delong(d, i, j, alternative, level)
        out.append({"name1": names[i], "name2": names[j], **res})
    return out


def delong_unpaired(
    truth1, score1, truth2, score2, alternative: str = "two-sided", level: float = 0.95
) -> dict:
    """Unpaired DeLong test between AUROCs on two independent sets of cases, as pROC.

    D = (AUC1 - AUC2) / sqrt(V1 + V2) with the DeLong variances V1, V2, referred to Student's t
    with df = (V1 + V2)^2 / (V1^2 / (N1 - 1) + V2^2 / (N2 - 1)) (N = cases of each set), which
    is pROC's roc.test(paired = FALSE). The CI of the difference uses the same t quantile.

    Returns:
        dict with the keys of :func:`delong_test` (z holds D) plus df.
    """
    d1, d2 = delong(truth1, score1), delong(truth2, score2)
    if d1.aucs.size != 1 or d2.aucs.size != 1:
        raise UserError("delong_unpaired takes one score per set")
    v1, v2 = float(d1.cov[0, 0]), float(d2.cov[0, 0])
    n1, n2 = d1.n_pos + d1.n_neg, d2.n_pos + d2.n_neg
    denom = v1**2 / (n1 - 1) + v2**2 / (n2 - 1)
    df = (v1 + v2) ** 2 / denom if denom > 0 else float(n1 + n2 - 2)
    return _z_test(d1.aucs[0], d2.aucs[0], v1 + v2, alternative, level, df=df)
