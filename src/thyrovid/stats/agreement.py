"""Agreement and paired-accuracy tests: Cohen's kappa with its CI, McNemar's test.

Kappa CI: kappa +- z * ASE, with ASE the large-sample (non-null) standard error of
Fleiss, Cohen & Everitt (1969), "Large sample standard errors of kappa and weighted kappa",
Psychological Bulletin 72(5) -- the ASE reported by SAS PROC FREQ. Not clipped.

McNemar: on the discordant pairs b (first right/positive, second not) and c (the reverse).
Exact two-sided binomial test (p = min(1, 2 P[Bin(b + c, 1/2) <= min(b, c)])) when b + c < 25 or
``exact=True``; otherwise the chi-square statistic with continuity correction
(|b - c| - 1)^2 / (b + c) on 1 degree of freedom (Edwards 1948).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import binom, chi2, norm

from thyrovid.errors import UserError
from thyrovid.stats.counts import _binary, _count

EXACT_BELOW = 25  # b + c below this: exact binomial test


def kappa_table(table, level: float = 0.95) -> tuple:
    """Cohen's kappa of a k x k agreement table with its Fleiss-Cohen-Everitt CI.

    Args:
        table: (k, k) counts, rows = rater/test 1 category, columns = rater/truth 2 category.
        level: confidence level.

    Returns:
        (kappa, low, high); (None, None, None) when kappa is undefined (expected agreement 1,
        e.g. everything in one cell).
    """
    if not 0.0 < level < 1.0:
        raise UserError(f"confidence level must be in (0, 1), got {level}")
    t = np.asarray(table, dtype=np.float64)
    if t.ndim != 2 or t.shape[0] != t.shape[1] or (t < 0).any():
        raise UserError(f"kappa needs a square table of non-negative counts, got {t.shape}")
    n = t.sum()
    if n == 0:
        raise UserError("kappa needs at least one case")
    p = t / n
    rows, cols = p.sum(axis=1), p.sum(axis=0)
    po = float(np.trace(p))
    pe = float(rows @ cols)
    if pe >= 1.0:
        return None, None, None
    kappa = (po - pe) / (1.0 - pe)
    a = float(np.sum(np.diag(p) * (1.0 - (rows + cols) * (1.0 - kappa)) ** 2))
    off = p * (cols[:, None] + rows[None, :]) ** 2  # p_ij (p_.i + p_j.)^2
    b = (1.0 - kappa) ** 2 * float(off.sum() - np.trace(off))
    c = (kappa - pe * (1.0 - kappa)) ** 2
    var = max(a + b - c, 0.0) / ((1.0 - pe) ** 2 * n)
    half = float(norm.ppf(0.5 + level / 2.0)) * float(np.sqrt(var))
    return float(kappa), float(kappa - half), float(kappa + half)


def cohen_kappa(tp: int, fp: int, tn: int, fn: int, level: float = 0.95) -> tuple:
    """Cohen's kappa between a binary test and the truth (or two raters) from 2x2 counts.

    Args:
        tp, fp, tn, fn: confusion-matrix counts (test positive/negative vs truth).
        level: confidence level.

    Returns:
        (kappa, low, high), CI by the Fleiss-Cohen-Everitt ASE; Nones when undefined.
    """
    tp, fp, tn, fn = (_count(k, v) for k, v in (("tp", tp), ("fp", fp), ("tn", tn), ("fn", fn)))
    return kappa_table([[tp, fp], [fn, tn]], level)


def mcnemar(pred1, pred2, truth=None, exact: bool | None = None) -> dict:
    """McNemar's test for paired binary outcomes on the same cases.

    Args:
        pred1, pred2: (N,) 0/1 decisions of two tests/readers on the same N cases.
        truth: optional (N,) 0/1 truth; when given, the test compares paired CORRECTNESS
            (accuracy of test 1 vs test 2); otherwise the positive rates.
        exact: True = exact binomial, False = chi-square with continuity correction,
            None = exact when b + c < 25.

    Returns:
        dict with statistic (exact: min(b, c); chi-square: the corrected chi-square), p,
        b (test 1 correct/positive and test 2 not), c (the reverse), method ("exact" or
        "chi-square").
    """
    a1, a2 = _binary("pred1", pred1), _binary("pred2", pred2)
    if a1.shape != a2.shape:
        raise UserError(f"pred1 and pred2 differ in length: {a1.size} vs {a2.size}")
    if truth is not None:
        t = _binary("truth", truth)
        if t.shape != a1.shape:
            raise UserError(f"truth and predictions differ in length: {t.size} vs {a1.size}")
        a1, a2 = a1 == t, a2 == t
    b, c = int(np.sum(a1 & ~a2)), int(np.sum(~a1 & a2))
    return mcnemar_counts(b, c, exact)


def mcnemar_counts(b: int, c: int, exact: bool | None = None) -> dict:
    """McNemar's test from the discordant counts b and c (see :func:`mcnemar`)."""
    b, c = _count("b", b), _count("c", c)
    n = b + c
    use_exact = n < EXACT_BELOW if exact is None else bool(exact)
    if n == 0:
        return {"statistic": 0.0, "p": 1.0, "b": b, "c": c, "method": "exact"}
    if use_exact:
        p = min(1.0, 2.0 * float(binom.cdf(min(b, c), n, 0.5)))
        return {"statistic": float(min(b, c)), "p": p, "b": b, "c": c, "method": "exact"}
    stat = (abs(b - c) - 1.0) ** 2 / n if abs(b - c) > 1 else 0.0
    p = float(chi2.sf(stat, 1))
    return {"statistic": float(stat), "p": p, "b": b, "c": c, "method": "chi-square"}
