"""Confidence intervals for proportions and the confusion-matrix metrics of a binary test.

Methods (``method`` / ``ci`` argument):

- ``"wald"``: p +- z sqrt(p (1 - p) / n), NOT clipped to [0, 1]. It is what the seed paper's
  Table 2 used (and what most clinical papers use); it collapses to a zero-width interval at
  p = 0 or 1 and can leave [0, 1] near them.
- ``"wilson"`` (the default): the Wilson (1927) score interval; well behaved near 0 and 1.
- ``"clopper-pearson"``: the "exact" interval from beta quantiles; conservative.

z = Phi^-1((1 + level) / 2). Counts are non-negative integers.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import beta, norm

from thyrovid.errors import UserError
from thyrovid.stats.agreement import cohen_kappa
from thyrovid.stats.counts import _binary, _count

METHODS = ("wilson", "wald", "clopper-pearson")


def _z(level: float) -> float:
    if not 0.0 < level < 1.0:
        raise UserError(f"confidence level must be in (0, 1), got {level}")
    return float(norm.ppf(0.5 + level / 2.0))


def proportion_ci(k: int, n: int, method: str = "wilson", level: float = 0.95):
    """A proportion k / n with its confidence interval.

    Args:
        k: successes (0 <= k <= n).
        n: trials (> 0).
        method: "wilson", "wald" or "clopper-pearson" (see the module docstring).
        level: confidence level.

    Returns:
        (p, low, high) as floats.

    Raises:
        UserError: n = 0, k outside [0, n], or an unknown method.
    """
    k, n = _count("k", k), _count("n", n)
    if n == 0:
        raise UserError("a proportion needs n > 0 (no cases in the denominator)")
    if k > n:
        raise UserError(f"k = {k} exceeds n = {n}")
    z = _z(level)
    p = k / n
    if method == "wald":
        half = z * math.sqrt(p * (1.0 - p) / n)
        return p, p - half, p + half
    if method == "wilson":
        z2 = z * z
        centre = (p + z2 / (2 * n)) / (1.0 + z2 / n)
        half = z * math.sqrt(p * (1.0 - p) / n + z2 / (4 * n * n)) / (1.0 + z2 / n)
        # k = 0 or n: the bound at the edge is exactly 0 or 1 (avoid -1e-17)
        return p, 0.0 if k == 0 else centre - half, 1.0 if k == n else centre + half
    if method == "clopper-pearson":
        alpha = 1.0 - level
        low = 0.0 if k == 0 else float(beta.ppf(alpha / 2, k, n - k + 1))
        high = 1.0 if k == n else float(beta.ppf(1 - alpha / 2, k + 1, n - k))
        return p, low, high
    raise UserError(f"CI method must be one of {METHODS}, got {method!r}")


def _entry(value, low=None, high=None) -> dict:
    return {"value": value, "low": low, "high": high}


def _prop_entry(k: int, n: int, method: str, level: float) -> dict:
    if n == 0:
        return _entry(None)  # undefined, e.g. PPV with no positive predictions
    return _entry(*proportion_ci(k, n, method, level))


def _youden_entry(tp: int, fp: int, tn: int, fn: int, method: str, level: float) -> dict:
    """Youden's J = sensitivity - (1 - specificity) with a MOVER CI.

    Newcombe's (1998) square-and-add method for a difference of two independent proportions,
    built from the chosen per-proportion intervals: with Wald intervals it is the Wald interval
    of J, with Wilson intervals Newcombe's hybrid score interval.
    """
    if tp + fn == 0 or tn + fp == 0:
        return _entry(None)
    p1, l1, u1 = proportion_ci(tp, tp + fn, method, level)  # sensitivity
    p2, l2, u2 = proportion_ci(fp, tn + fp, method, level)  # false-positive rate
    j = p1 - p2
    low = j - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = j + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return _entry(j, low, high)


def binary_metrics(tp: int, fp: int, tn: int, fn: int, ci: str = "wilson", level: float = 0.95):
    """Accuracy, sensitivity, specificity, PPV, NPV, F1, Cohen's kappa and Youden's J with CIs.

    Args:
        tp, fp, tn, fn: confusion-matrix counts (positive = malignant).
        ci: proportion CI method for the proportions ("wilson", "wald", "clopper-pearson").
        level: confidence level.

    Returns:
        dict metric -> {"value", "low", "high"} for accuracy, sensitivity, specificity, ppv,
        npv, f1, kappa, youden. F1 has no CI (low/high None). Kappa's CI is the large-sample
        interval of Fleiss, Cohen & Everitt (1969) whatever ``ci`` is. A metric whose
        denominator is 0 (e.g. PPV with no positive predictions) has value None.
    """
    tp, fp, tn, fn = (_count(n, v) for n, v in (("tp", tp), ("fp", fp), ("tn", tn), ("fn", fn)))
    if ci not in METHODS:
        raise UserError(f"CI method must be one of {METHODS}, got {ci!r}")
    total = tp + fp + tn + fn
    if total == 0:
        raise UserError("the confusion matrix is empty (tp + fp + tn + fn = 0)")
    out = {
        "accuracy": _prop_entry(tp + tn, total, ci, level),
        "sensitivity": _prop_entry(tp, tp + fn, ci, level),
        "specificity": _prop_entry(tn, tn + fp, ci, level),
        "ppv": _prop_entry(tp, tp + fp, ci, level),
        "npv": _prop_entry(tn, tn + fn, ci, level),
    }
    denom = 2 * tp + fp + fn
    out["f1"] = _entry(2 * tp / denom if denom else None)
    out["kappa"] = _entry(*cohen_kappa(tp, fp, tn, fn, level))
    out["youden"] = _youden_entry(tp, fp, tn, fn, ci, level)
    return out


def confusion(truth, pred) -> tuple[int, int, int, int]:
    """Confusion-matrix counts of 0/1 predictions against 0/1 truth (1 = positive).

    Args:
        truth: (N,) 0/1 or bool.
        pred: (N,) 0/1 or bool (e.g. ``score >= threshold``).

    Returns:
        (tp, fp, tn, fn) as ints.
    """
    t, p = _binary("truth", truth), _binary("pred", pred)
    if t.shape != p.shape:
        raise UserError(f"truth and pred differ in length: {t.size} vs {p.size}")
    tp = int(np.sum(t & p))
    fp = int(np.sum(~t & p))
    tn = int(np.sum(~t & ~p))
    fn = int(np.sum(t & ~p))
    return tp, fp, tn, fn
