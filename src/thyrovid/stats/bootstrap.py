"""Seeded (stratified) percentile bootstrap confidence intervals for any metric."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from thyrovid.errors import UserError


def bootstrap_ci(
    metric: Callable[..., float],
    truth,
    *arrays,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
    stratified: bool = True,
) -> tuple[float, float, float]:
    """Percentile bootstrap CI of ``metric(truth, *arrays)`` over resampled cases.

    Cases are resampled with replacement; with ``stratified=True`` positives and negatives are
    resampled separately, keeping their counts, so every replicate has both classes (the usual
    choice for AUROC). A replicate on which the metric raises UserError/ValueError or returns
    NaN (e.g. a single-class resample when not stratified) is dropped; if more than half are
    dropped the CI is refused.

    Args:
        metric: f(truth_b, *arrays_b) -> float, e.g. ``thyrovid.stats.roc.auc``.
        truth: (N,) 0/1 labels (1 = positive).
        *arrays: (N, ...) arrays indexed along axis 0 together with truth (scores, predictions).
        n_boot: number of bootstrap replicates.
        level: confidence level; the interval is the (1-level)/2 and (1+level)/2 quantiles.
        seed: seed of numpy's default_rng: the same seed gives the same interval.
        stratified: resample within each truth class.

    Returns:
        (value on the full data, low, high).
    """
    if not 0.0 < level < 1.0:
        raise UserError(f"confidence level must be in (0, 1), got {level}")
    if n_boot < 1:
        raise UserError(f"n_boot must be >= 1, got {n_boot}")
    t = np.asarray(truth)
    arrs = [np.asarray(a) for a in arrays]
    for a in arrs:
        if a.shape[0] != t.shape[0]:
            raise UserError(f"arrays differ in length from truth: {a.shape[0]} vs {t.shape[0]}")
    value = float(metric(t, *arrs))
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(t == v) for v in np.unique(t)] if stratified else [np.arange(t.size)]
    stats = []
    for _ in range(n_boot):
        idx = np.concatenate([g[rng.integers(0, g.size, g.size)] for g in groups])
        try:
            v = float(metric(t[idx], *(a[idx] for a in arrs)))
        except (UserError, ValueError):
            continue
        if not math.isnan(v):
            stats.append(v)
    if len(stats) < n_boot / 2:
        raise UserError(
            f"only {len(stats)} of {n_boot} bootstrap replicates gave a value; "
            "use stratified=True or more cases"
        )
    low, high = np.quantile(np.asarray(stats), [(1 - level) / 2, (1 + level) / 2])
    return value, float(low), float(high)
