"""AUROC, DeLong variances and covariances, CIs, ROC points and thresholds.

Tests between two AUROCs (paired and unpaired DeLong) are in `thyrovid.stats.auc_compare`.

Conventions (the same as pROC with ``direction = "<"``):

- ``truth`` is a 1-D array of 0/1 (or bool); 1 = positive (malignant).
- a score is "higher = more likely positive" (P(malignant)); the AUROC is
  P(score_pos > score_neg) + 1/2 P(score_pos == score_neg) (Mann-Whitney, ties count 1/2).
- DeLong variances use the (m - 1), (n - 1) denominators (m positives, n negatives),
  as pROC does. The covariance matrix comes from the fast algorithm of Sun & Xu (2014),
  "Fast implementation of DeLong's algorithm for comparing the areas under correlated
  receiver operating characteristic curves", IEEE Signal Processing Letters 21(11), which
  needs only midranks: O(N log N) per score instead of O(m n) (here one sort per score).

Validated against pROC's published test values on its aSAH data (tests/stats/test_stats_roc.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

from thyrovid.errors import UserError


@dataclass(frozen=True)
class DeLong:
    """AUROCs of k correlated scores with their DeLong covariance.

    Attributes:
        aucs: (k,) float64 AUROCs.
        cov: (k, k) float64 DeLong covariance matrix (the diagonal holds the variances).
        n_pos: number of positive cases (m).
        n_neg: number of negative cases (n).
    """

    aucs: np.ndarray
    cov: np.ndarray
    n_pos: int
    n_neg: int

    @property
    def var(self) -> np.ndarray:
        """(k,) DeLong variances."""
        return np.diag(self.cov).copy()


# ----------------------------------------------------------------------------- input checks


def _check_truth(truth) -> np.ndarray:
    """Return truth as a (N,) bool array; refuse non-binary labels and a single class."""
    t = np.asarray(truth)
    if t.ndim != 1:
        raise UserError(f"truth must be 1-D, got shape {t.shape}")
    if t.dtype != bool:
        if t.dtype.kind not in "iuf":
            raise UserError(f"truth must be 0/1, got dtype {t.dtype}")
        bad = ~np.isin(t, (0, 1))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise UserError(f"truth must be 0/1; index {i} holds {t[i]!r}")
        t = t.astype(bool)
    n_pos = int(t.sum())
    if n_pos == 0 or n_pos == t.size:
        only = "positive" if n_pos else "negative"
        raise UserError(
            f"truth has only {only} cases ({t.size}); AUROC needs both positives and negatives"
        )
    return t


def _check_two_each(t: np.ndarray) -> None:
    """DeLong's (m - 1), (n - 1) denominators need at least two cases of each class."""
    m = int(t.sum())
    n = t.size - m
    if m < 2 or n < 2:
        raise UserError(
            f"DeLong variance needs at least 2 positives and 2 negatives, got {m} and {n}"
        )


def _check_scores(scores, n: int) -> np.ndarray:
    """Return scores as a (k, N) float64 array; refuse NaN/inf and a length mismatch."""
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim == 1:
        s = s[None, :]
    if s.ndim != 2 or s.shape[1] != n:
        raise UserError(f"scores must be (N,) or (k, N) with N = {n}, got shape {s.shape}")
    bad = ~np.isfinite(s)
    if bad.any():
        k, i = (int(v[0]) for v in np.nonzero(bad))
        which = f"score {k} " if s.shape[0] > 1 else "score "
        raise UserError(f"{which}index {i} is {s[k, i]} (NaN/inf scores are refused)")
    return s


# ----------------------------------------------------------------------------- core


def _placement_row(z: np.ndarray, m: int) -> np.ndarray:
    """Placement values of every case for one score, from ONE sort of all N scores.

    Sun & Xu (2014) write the DeLong components with midranks: for a positive,
    V10 = (Tz - Tx) / n, its midrank among all cases minus its midrank among positives, which
    is the number of negatives below it plus half the tied negatives, over n. For a negative,
    V01 = 1 - (Tz - Ty) / m. Both counts come from tie groups of the sorted scores, so one
    argsort per score suffices (the order inside a tie group does not matter).

    Args:
        z: (N,) float64 scores, the m positives first, then the n = N - m negatives.
        m: number of positives.

    Returns:
        (N,) float64: V10 of the positives (first m), then V01 of the negatives.
    """
    size = z.size
    n = size - m
    order = np.argsort(z)
    zs = z[order]
    ps = order < m  # positive, in sorted order
    new = np.empty(size, dtype=bool)
    new[0] = True
    np.not_equal(zs[1:], zs[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    ties = starts.size < size
    ends = np.append(starts[1:], size) if ties else np.arange(1, size + 1)  # exclusive
    pos_upto = np.cumsum(ps)[ends - 1] if ties else np.cumsum(ps)  # positives in groups 0..g
    pos_in = np.diff(pos_upto, prepend=0)
    pos_below = pos_upto - pos_in
    neg_in = (ends - starts) - pos_in
    neg_below = starts - pos_below
    v_pos = (neg_below + 0.5 * neg_in) / n
    v_neg = 1.0 - (pos_below + 0.5 * pos_in) / m
    if ties:
        group = np.cumsum(new) - 1
        v_pos, v_neg = v_pos[group], v_neg[group]
    out = np.empty(size, dtype=np.float64)
    out[order] = np.where(ps, v_pos, v_neg)
    return out


def _placements(truth: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fast DeLong structural components (Sun & Xu 2014), O(k N log N).

    Args:
        truth: (N,) bool.
        s: (k, N) float64 scores.

    Returns:
        aucs (k,), v10 (k, m) positive placements, v01 (k, n) negative placements, each in
        the order of the cases.
    """
    m = int(truth.sum())
    z = np.concatenate([s[:, truth], s[:, ~truth]], axis=1)
    place = np.empty_like(z)
    for k in range(s.shape[0]):
        place[k] = _placement_row(z[k], m)
    v10, v01 = place[:, :m], place[:, m:]
    return v10.mean(axis=1), v10, v01


def _cov(v: np.ndarray) -> np.ndarray:
    """(k, k) sample covariance (denominator count - 1) of the rows of (k, count) v."""
    d = v - v.mean(axis=1, keepdims=True)
    return (d @ d.T) / (v.shape[1] - 1)


def auc(truth, score) -> float:
    """AUROC by Mann-Whitney (ties count 1/2).

    Args:
        truth: (N,) 0/1 labels, 1 = positive (malignant).
        score: (N,) float scores, higher = more likely positive.

    Returns:
        The AUROC in [0, 1]; 0.5 for constant scores.

    Raises:
        UserError: one class only, non-binary truth, NaN/inf score (index named).
    """
    t = _check_truth(truth)
    s = _check_scores(score, t.size)
    if s.shape[0] != 1:
        raise UserError("auc takes one score; use delong for several")
    m = int(t.sum())
    return float(_placement_row(np.concatenate([s[0, t], s[0, ~t]]), m)[:m].mean())


def delong(truth, scores) -> DeLong:
    """AUROCs and DeLong covariance of one or several scores on the same cases.

    Args:
        truth: (N,) 0/1 labels, 1 = positive.
        scores: (N,) or (k, N) float scores, higher = more likely positive.

    Returns:
        DeLong with aucs (k,) and cov (k, k); k = 1 for a 1-D score.
    """
    t = _check_truth(truth)
    s = _check_scores(scores, t.size)
    _check_two_each(t)
    aucs, v10, v01 = _placements(t, s)
    m, n = v10.shape[1], v01.shape[1]
    cov = _cov(v10) / m + _cov(v01) / n
    return DeLong(aucs=aucs, cov=cov, n_pos=m, n_neg=n)


def delong_slow(truth, scores, chunk: int = 2048) -> DeLong:
    """DeLong by the O(m n) placement formula (the definition; a reference for tests/benchmarks).

    psi(x, y) = 1 if x > y, 1/2 if x == y, 0 otherwise; V10_i = mean_j psi(x_i, y_j),
    V01_j = mean_i psi(x_i, y_j). Same arguments and result as :func:`delong`.
    """
    t = _check_truth(truth)
    s = _check_scores(scores, t.size)
    _check_two_each(t)
    x, y = s[:, t], s[:, ~t]
    m, n = x.shape[1], y.shape[1]
    v10 = np.empty((s.shape[0], m))
    v01 = np.zeros((s.shape[0], n))
    for k in range(s.shape[0]):
        for a in range(0, m, chunk):
            xa = x[k, a : a + chunk, None]
            psi = (xa > y[k]).astype(np.float64)
            psi += 0.5 * (xa == y[k])
            v10[k, a : a + chunk] = psi.mean(axis=1)
            v01[k] += psi.sum(axis=0)
    v01 /= m
    aucs = v10.mean(axis=1)
    cov = _cov(v10) / m + _cov(v01) / n
    return DeLong(aucs=aucs, cov=cov, n_pos=m, n_neg=n)


def check_level(level: float) -> None:
    if not 0.0 < level < 1.0:
        raise UserError(f"confidence level must be in (0, 1), got {level}")


def auc_ci(truth, score, level: float = 0.95) -> tuple[float, float, float]:
    """AUROC with its DeLong confidence interval (normal approximation, as pROC ci.auc).

    The interval is auc +- z_{(1+level)/2} * sqrt(var), clipped to [0, 1].

    Returns:
        (auc, low, high).
    """
    check_level(level)
    d = delong(truth, score)
    if d.aucs.size != 1:
        raise UserError("auc_ci takes one score")
    a, se = float(d.aucs[0]), float(np.sqrt(max(d.cov[0, 0], 0.0)))
    half = norm.ppf(0.5 + level / 2.0) * se
    return a, float(max(a - half, 0.0)), float(min(a + half, 1.0))


# ----------------------------------------------------------------------------- thresholds


def roc_points(truth, score) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sensitivity and specificity at every distinct threshold (predict positive if score >= t).

    Returns:
        thresholds (u,) descending distinct scores, sensitivity (u,), specificity (u,).
    """
    t = _check_truth(truth)
    s = _check_scores(score, t.size)[0]
    order = np.argsort(-s, kind="stable")
    ss, ts = s[order], t[order]
    last = np.r_[ss[1:] != ss[:-1], True]  # last index of each tie group (descending)
    tp = np.cumsum(ts)[last]
    fp = np.cumsum(~ts)[last]
    m, n = int(t.sum()), int((~t).sum())
    return ss[last], tp / m, 1.0 - fp / n


def choose_threshold(truth, score, method: str = "youden", target: float | None = None) -> float:
    """Choose a decision threshold on (validation) scores; predict positive when score >= it.

    Args:
        truth: (N,) 0/1 labels.
        score: (N,) scores.
        method: "youden" maximises sensitivity + specificity - 1 (ties: the highest threshold);
            "sensitivity" returns the highest threshold whose sensitivity >= ``target``
            (so the best specificity that keeps that sensitivity).
        target: the target sensitivity in (0, 1] for method "sensitivity".

    Returns:
        The threshold, one of the observed scores.
    """
    thr, sens, spec = roc_points(truth, score)
    if method == "youden":
        return float(thr[int(np.argmax(sens + spec - 1.0))])
    if method == "sensitivity":
        if target is None or not 0.0 < target <= 1.0:
            raise UserError(f"method 'sensitivity' needs a target in (0, 1], got {target}")
        return float(thr[int(np.argmax(sens >= target - 1e-12))])
    raise UserError(f"threshold method must be 'youden' or 'sensitivity', got {method!r}")
