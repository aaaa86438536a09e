"""Obuchowski-Rockette multi-reader multi-case (MRMC) analysis of reader AUROCs.

Every reader reads every case in every modality (a fully crossed, "factorial" design).
The figure of merit is the empirical (trapezoidal, Mann-Whitney) AUROC of each reader in
each modality; its case-sampling covariance is estimated by the jackknife or by the DeLong
method. The analysis follows Obuchowski & Rockette (1995) with Hillis's improvements:

* random readers, random cases (RRRC): F = MS(T) / [MS(T*R) + r max(Cov2 - Cov3, 0)] with
  the Hillis (2007) denominator degrees of freedom
  ddf_H = [MS(T*R) + r max(Cov2 - Cov3, 0)]^2 / {MS(T*R)^2 / [(t-1)(r-1)]};
* fixed readers, random cases (FRRC): X2 = (t-1) MS(T) / [Var - Cov1 + (r-1) max(Cov2-Cov3, 0)]
  on t-1 degrees of freedom (equivalently F = X2/(t-1) with ddf = infinity);
* random readers, fixed cases (RRFC): F = MS(T) / MS(T*R) on (t-1, (t-1)(r-1)) df.

References: Obuchowski & Rockette, Commun Stat Simul Comput 1995;24:285-308. Hillis et al.,
Stat Med 2005;24:1579-1607. Hillis, Stat Med 2007;26:596-619. Hillis, Berbaum & Metz, Acad
Radiol 2008;15:647-661. The output mirrors the layout of the Iowa OR-DBM MRMC program.

Conventions: truth 1 = positive (malignant); a higher rating means more suspicious;
differences are "earlier modality minus later modality" in the order given.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import combinations

import numpy as np
from scipy import stats

COV_METHODS = ("jackknife", "delong")


def placements(truth: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Empirical AUROCs and DeLong placement values of several score sets on the same cases.

    Args:
        truth: (n,) 0/1, 1 = positive.
        scores: (k, n) float, higher = more likely positive.

    Returns:
        auc (k,), v10 (k, m) placement of each positive among the negatives, v01 (k, n0)
        placement of each negative among the positives (ties count 1/2), where m and n0 are
        the numbers of positives and negatives.
    """
    truth = np.asarray(truth).astype(bool)
    scores = np.atleast_2d(np.asarray(scores, dtype=float))
    pos, neg = scores[:, truth], scores[:, ~truth]
    m, n0 = pos.shape[1], neg.shape[1]
    if m == 0 or n0 == 0:
        raise ValueError("AUROC needs at least one positive and one negative case")
    v10 = np.empty_like(pos)
    v01 = np.empty_like(neg)
    for k in range(scores.shape[0]):
        neg_sorted, pos_sorted = np.sort(neg[k]), np.sort(pos[k])
        lo = np.searchsorted(neg_sorted, pos[k], side="left")
        hi = np.searchsorted(neg_sorted, pos[k], side="right")
        v10[k] = (lo + 0.5 * (hi - lo)) / n0
        lo = np.searchsorted(pos_sorted, neg[k], side="left")
        hi = np.searchsorted(pos_sorted, neg[k], side="right")
        v01[k] = (m - hi + 0.5 * (hi - lo)) / m
    return v10.mean(axis=1), v10, v01


def auc_covariance(
    truth: np.ndarray, scores: np.ndarray, method: str = "jackknife"
) -> tuple[np.ndarray, np.ndarray]:
    """AUROCs of k score sets on the same cases and their case-sampling covariance.

    Args:
        truth: (n,) 0/1.
        scores: (k, n) float.
        method: "jackknife" (leave one case out; covariance of the k leave-one-out AUROCs times
            (n-1)^2/n) or "delong" (S10/m + S01/n0 from the placement values, (m-1), (n0-1)
            denominators, as DeLong et al. 1988).

    Returns:
        aucs (k,), cov (k, k).
    """
    if method not in COV_METHODS:
        raise ValueError(f"method must be one of {COV_METHODS}, got {method!r}")
    aucs, v10, v01 = placements(truth, scores)
    m, n0 = v10.shape[1], v01.shape[1]
    if method == "delong":
        s10 = np.atleast_2d(np.cov(v10)) if m > 1 else np.zeros((len(aucs),) * 2)
        s01 = np.atleast_2d(np.cov(v01)) if n0 > 1 else np.zeros((len(aucs),) * 2)
        return aucs, s10 / m + s01 / n0
    # Leave-one-out AUROCs from the placement sums: dropping positive i removes its row of
    # the m x n0 comparison matrix, dropping negative j its column.
    total = aucs[:, None] * (m * n0)
    drop_pos = (total - v10 * n0) / ((m - 1) * n0) if m > 1 else np.empty((len(aucs), 0))
    drop_neg = (total - v01 * m) / (m * (n0 - 1)) if n0 > 1 else np.empty((len(aucs), 0))
    loo = np.concatenate([drop_pos, drop_neg], axis=1)  # (k, n)
    n = loo.shape[1]
    centred = loo - loo.mean(axis=1, keepdims=True)
    return aucs, centred @ centred.T * (n - 1) / n


def _error_covariances(cov: np.ndarray, t: int, r: int) -> dict[str, float]:
    """Var, Cov1, Cov2, Cov3 of the OR model, averaged over the cells of a (t*r, t*r) matrix.

    Rows/columns are ordered modality-major: index = i * r + j.
    """
    c = cov.reshape(t, r, t, r)
    same_t = np.eye(t, dtype=bool)[:, None, :, None]
    same_r = np.eye(r, dtype=bool)[None, :, None, :]
    out = {"var_error": float(c[same_t & same_r].mean())}
    out["cov1"] = float(c[~same_t & same_r].mean()) if t > 1 else math.nan
    out["cov2"] = float(c[same_t & ~same_r].mean()) if r > 1 else math.nan
    out["cov3"] = float(c[~same_t & ~same_r].mean()) if t > 1 and r > 1 else math.nan
    return out


def _anova(aucs: np.ndarray) -> dict[str, float]:
    """Modality x reader ANOVA of the (t, r) AUROC matrix (one observation per cell)."""
    t, r = aucs.shape
    grand = aucs.mean()
    mod_means, rdr_means = aucs.mean(axis=1), aucs.mean(axis=0)
    inter = aucs - mod_means[:, None] - rdr_means[None, :] + grand
    ss_t = r * float(((mod_means - grand) ** 2).sum())
    ss_r = t * float(((rdr_means - grand) ** 2).sum())
    ss_tr = float((inter**2).sum())
    df_t, df_r, df_tr = t - 1, r - 1, (t - 1) * (r - 1)
    return {
        "ss_t": ss_t,
        "ss_r": ss_r,
        "ss_tr": ss_tr,
        "df_t": df_t,
        "df_r": df_r,
        "df_tr": df_tr,
        "ms_t": ss_t / df_t,
        "ms_r": ss_r / df_r,
        "ms_tr": ss_tr / df_tr,
    }


def _ratio(num: float, den: float) -> float:
    if den > 0:
        return num / den
    return math.inf if num > 0 else math.nan


def _t_interval(est: float, se: float, df: float, level: float) -> dict[str, float]:
    """Two-sided t (df finite) or z (df = inf) test of est = 0 and its CI."""
    dist = stats.norm if math.isinf(df) else stats.t(df)
    q = float(dist.ppf(0.5 + level / 2))
    stat = _ratio(est, se) if est >= 0 else -_ratio(-est, se)
    p = float(2 * dist.sf(abs(stat))) if not math.isnan(stat) else math.nan
    return {
        "estimate": est,
        "se": se,
        "df": df,
        "statistic": stat,
        "p": p,
        "ci_low": est - q * se,
        "ci_high": est + q * se,
    }


def _pairs(names: Sequence[str], means: np.ndarray):
    for a, b in combinations(range(len(names)), 2):
        yield f"{names[a]} - {names[b]}", float(means[a] - means[b])


def or_analysis(
    aucs: np.ndarray,
    cov: np.ndarray,
    modalities: Sequence[str] | None = None,
    readers: Sequence[str] | None = None,
    level: float = 0.95,
) -> dict:
    """Obuchowski-Rockette analysis from reader AUROCs and their error covariance.

    Args:
        aucs: (t, r) AUROC of reader j in modality i; t >= 2 modalities, r >= 2 readers.
        cov: (t*r, t*r) case-sampling covariance of the flattened aucs (modality-major).
        modalities, readers: names (default "1", "2", ...).
        level: confidence level of the intervals.

    Returns:
        A JSON-friendly dict: auc, modality_means, anova, variance_components, rrrc, frrc,
        rrfc (each with the global test, the pairwise differences and single-modality CIs).
        Infinite degrees of freedom are math.inf.
    """
    aucs = np.asarray(aucs, dtype=float)
    t, r = aucs.shape
    if t < 2 or r < 2:
        raise ValueError(f"OR analysis needs >= 2 modalities and >= 2 readers, got {t} x {r}")
    modalities = [str(x) for x in (modalities or range(1, t + 1))]
    readers = [str(x) for x in (readers or range(1, r + 1))]
    cov = np.asarray(cov, dtype=float).reshape(t * r, t * r)
    means = aucs.mean(axis=1)
    anova = _anova(aucs)
    ec = _error_covariances(cov, t, r)
    var, cov1, cov2, cov3 = ec["var_error"], ec["cov1"], ec["cov2"], ec["cov3"]
    ms_r, ms_tr = anova["ms_r"], anova["ms_tr"]
    # Expected mean squares of the OR model (Hillis et al. 2005, Table I).
    var_tr = ms_tr - var + cov1 + cov2 - cov3
    var_r = (ms_r - var_tr - var - (t - 1) * cov1 + cov2 + (t - 1) * cov3) / t
    components = {
        "var_r": var_r,
        "var_tr": var_tr,
        "cov1": cov1,
        "cov2": cov2,
        "cov3": cov3,
        "var_error": var,
        "rho1": _ratio(cov1, var),
        "rho2": _ratio(cov2, var),
        "rho3": _ratio(cov3, var),
    }
    # Per-modality error covariances for the single-modality intervals.
    c4 = cov.reshape(t, r, t, r)
    per_mod = []
    for i in range(t):
        block = c4[i, :, i, :]
        off = ~np.eye(r, dtype=bool)
        ms_r_i = float(aucs[i].var(ddof=1))
        per_mod.append((float(np.diag(block).mean()), float(block[off].mean()), ms_r_i))

    excess = max(cov2 - cov3, 0.0)
    return {
        "modalities": modalities,
        "readers": readers,
        "level": level,
        "auc": {m: dict(zip(readers, map(float, aucs[i]))) for i, m in enumerate(modalities)},
        "modality_means": dict(zip(modalities, map(float, means))),
        "anova": anova,
        "variance_components": components,
        "rrrc": _rrrc(modalities, means, anova, excess, per_mod, r, level),
        "frrc": _frrc(modalities, readers, aucs, means, anova, ec, excess, per_mod, c4, level),
        "rrfc": _rrfc(modalities, means, anova, per_mod, r, level),
    }


def _rrrc(modalities, means, anova, excess, per_mod, r, level) -> dict:
    t = len(modalities)
    den = anova["ms_tr"] + r * excess
    ddf = _ratio(den**2, anova["ms_tr"] ** 2 / ((t - 1) * (r - 1)))
    f = _ratio(anova["ms_t"], den)
    p = float(stats.f.sf(f, t - 1, ddf)) if not math.isnan(f) else math.nan
    se = math.sqrt(2 / r * den)
    single = []
    for name, mean, (_, cov2_i, ms_r_i) in zip(modalities, means, per_mod):
        den_i = ms_r_i + r * max(cov2_i, 0.0)
        df_i = _ratio(den_i**2, ms_r_i**2 / (r - 1))
        ci = _t_interval(float(mean), math.sqrt(den_i / r), df_i, level)
        single.append({"modality": name, "auc": float(mean), "cov2": cov2_i, **_ci_only(ci)})
    return {
        "f": f,
        "ndf": t - 1,
        "ddf": ddf,
        "p": p,
        "error_ms": den,
        "differences": [
            {"comparison": c, **_t_interval(d, se, ddf, level)}
            for c, d in _pairs(modalities, means)
        ],
        "single": single,
    }


def _frrc(modalities, readers, aucs, means, anova, ec, excess, per_mod, c4, level) -> dict:
    t, r = aucs.shape
    den = ec["var_error"] - ec["cov1"] + (r - 1) * excess
    chi2 = (t - 1) * _ratio(anova["ms_t"], den)
    p = float(stats.chi2.sf(chi2, t - 1)) if not math.isnan(chi2) else math.nan
    se = math.sqrt(max(2 / r * den, 0.0))
    single = []
    for name, mean, (var_i, cov2_i, _) in zip(modalities, means, per_mod):
        se_i = math.sqrt(max((var_i + (r - 1) * max(cov2_i, 0.0)) / r, 0.0))
        ci = _t_interval(float(mean), se_i, math.inf, level)
        single.append(
            {
                "modality": name,
                "auc": float(mean),
                "var_error": var_i,
                "cov2": cov2_i,
                **_ci_only(ci),
            }
        )
    per_reader = []
    for j, reader in enumerate(readers):
        for a, b in combinations(range(t), 2):
            v = c4[a, j, a, j] + c4[b, j, b, j] - 2 * c4[a, j, b, j]
            d = float(aucs[a, j] - aucs[b, j])
            per_reader.append(
                {
                    "reader": reader,
                    "comparison": f"{modalities[a]} - {modalities[b]}",
                    **_t_interval(d, math.sqrt(max(v, 0.0)), math.inf, level),
                }
            )
    return {
        "chi2": chi2,
        "df": t - 1,
        "f": chi2 / (t - 1),
        "ndf": t - 1,
        "ddf": math.inf,
        "p": p,
        "error_ms": den,
        "differences": [
            {"comparison": c, **_t_interval(d, se, math.inf, level)}
            for c, d in _pairs(modalities, means)
        ],
        "single": single,
        "per_reader": per_reader,
    }


def _rrfc(modalities, means, anova, per_mod, r, level) -> dict:
    t = len(modalities)
    ddf = (t - 1) * (r - 1)
    f = _ratio(anova["ms_t"], anova["ms_tr"])
    p = float(stats.f.sf(f, t - 1, ddf)) if not math.isnan(f) else math.nan
    se = math.sqrt(2 / r * anova["ms_tr"])
    single = []
    for name, mean, (_, _, ms_r_i) in zip(modalities, means, per_mod):
        ci = _t_interval(float(mean), math.sqrt(ms_r_i / r), r - 1, level)
        single.append({"modality": name, "auc": float(mean), "ms_r": ms_r_i, **_ci_only(ci)})
    return {
        "f": f,
        "ndf": t - 1,
        "ddf": ddf,
        "p": p,
        "error_ms": anova["ms_tr"],
        "differences": [
            {"comparison": c, **_t_interval(d, se, ddf, level)}
            for c, d in _pairs(modalities, means)
        ],
        "single": single,
    }


def _ci_only(ci: dict) -> dict:
    return {"se": ci["se"], "df": ci["df"], "ci_low": ci["ci_low"], "ci_high": ci["ci_high"]}


def mrmc(
    truth: np.ndarray,
    ratings: np.ndarray,
    method: str = "jackknife",
    modalities: Sequence[str] | None = None,
    readers: Sequence[str] | None = None,
    level: float = 0.95,
) -> dict:
    """Obuchowski-Rockette MRMC analysis of empirical AUROCs for a fully crossed study.

    Args:
        truth: (n,) 0/1 case truth, 1 = positive (malignant).
        ratings: (t, r, n) float rating or probability of modality i, reader j, case k
            (higher = more suspicious).
        method: error covariance estimator, "jackknife" or "delong".
        modalities, readers: names; differences are earlier minus later modality.
        level: confidence level.

    Returns:
        The dict of `or_analysis`, plus cov_method, n_cases, n_positive, n_negative.
    """
    ratings = np.asarray(ratings, dtype=float)
    t, r, n = ratings.shape
    truth = np.asarray(truth).astype(int)
    if truth.shape != (n,):
        raise ValueError(f"truth has shape {truth.shape}, ratings have {n} cases")
    aucs, cov = auc_covariance(truth, ratings.reshape(t * r, n), method)
    out = or_analysis(aucs.reshape(t, r), cov, modalities, readers, level)
    n_pos = int(truth.sum())
    return {"cov_method": method, "n_cases": n, "n_positive": n_pos, "n_negative": n - n_pos, **out}
