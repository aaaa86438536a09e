"""The metrics of `thyrovid evaluate`: per split and level, at the run's one threshold.

The decision threshold is chosen ONCE, on the validation split at PATIENT level (Youden by
default, or the highest threshold reaching ``--target-sensitivity``), or given with
``--threshold``; it is then applied unchanged to every split and level (predict malignant when
P >= threshold). Without a usable validation split it is 0.5, with a warning.

Calibration: logistic regression of the truth on logit(p) (intercept and slope fitted jointly;
a well-calibrated model has intercept 0, slope 1; a slope < 1 means over-confident scores) and a
reliability table over ten equal-width probability bins.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from thyrovid.cohort.schema import SPLITS
from thyrovid.errors import UserError
from thyrovid.inference.voting import LEVELS
from thyrovid.reliability import (
    clip_block,
    emit,
    metrics_cautions,
    prob_range,
    threshold_band,
    to_json,
)
from thyrovid.runs import check_threshold
from thyrovid.stats.auc_ci import AUC_CI_METHODS
from thyrovid.stats.proportions import METHODS as CI_METHODS

SPLIT_ORDER = SPLITS[1:]  # val, test, external: the splits evaluate reports, in this order


# --------------------------------------------------------------------------- calibration
def calibration(truth, prob, n_bins: int = 10) -> dict:
    """Calibration intercept/slope (logistic recalibration) and a binned reliability table.

    Args:
        truth: (n,) 0/1, 1 = malignant.
        prob: (n,) P(malignant) in [0, 1] (clipped to [1e-6, 1 - 1e-6] before the logit).
        n_bins: equal-width bins over [0, 1] for the reliability table.

    Returns:
        dict intercept, slope (None when the fit does not exist: one class, constant scores or
        perfect separation), and bins: list of {low, high, n, mean_prob, frac_pos} for non-empty
        bins.
    """
    y = np.asarray(truth, dtype=np.float64)
    p = np.clip(np.asarray(prob, dtype=np.float64), 1e-6, 1 - 1e-6)
    intercept, slope = _logistic_fit(np.log(p / (1 - p)), y)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, n_bins - 1)
    bins = []
    for b in range(n_bins):
        sel = which == b
        if sel.any():
            bins.append(
                {
                    "low": float(edges[b]),
                    "high": float(edges[b + 1]),
                    "n": int(sel.sum()),
                    "mean_prob": float(p[sel].mean()),
                    "frac_pos": float(y[sel].mean()),
                }
            )
    return {"intercept": intercept, "slope": slope, "bins": bins}


def _logistic_fit(
    x: np.ndarray, y: np.ndarray, iters: int = 100
) -> tuple[float | None, float | None]:
    """Maximum-likelihood (intercept, slope) of P(y=1) = sigmoid(a + b x) by Newton-Raphson."""
    if y.size < 3 or y.min() == y.max() or np.ptp(x) == 0:
        return None, None
    design = np.column_stack([np.ones_like(x), x])
    beta = np.zeros(2)
    for _ in range(iters):
        mu = 1.0 / (1.0 + np.exp(-(design @ beta)))
        w = np.maximum(mu * (1 - mu), 1e-12)
        hess = design.T @ (design * w[:, None])
        try:
            step = np.linalg.solve(hess, design.T @ (y - mu))
        except np.linalg.LinAlgError:
            return None, None
        beta = beta + step
        if np.max(np.abs(step)) < 1e-10:
            break
        if np.max(np.abs(beta)) > 1e3:  # separation: the MLE does not exist
            return None, None
    else:
        return None, None
    return float(beta[0]), float(beta[1])


# --------------------------------------------------------------------------- metrics
def level_metrics(
    truth, prob, threshold: float, ci: str = "wilson", level: float = 0.95, auc_ci: str = "delong"
) -> dict:
    """All metrics of one split and level at a fixed threshold.

    Args:
        truth: (n,) 0/1, 1 = malignant.
        prob: (n,) P(malignant).
        threshold: predict malignant when prob >= threshold.
        ci: interval for the proportions ("wilson", "wald" as in the paper, "clopper-pearson").
        level: confidence level.
        auc_ci: the AUROC interval (`thyrovid.stats.auc_ci.AUC_CI_METHODS`; default DeLong).

    Returns:
        dict n, n_pos, threshold, auroc {value, low, high, method} (DeLong CI by default; no
        DeLong CI with fewer than two cases of a class, no value with one class),
        tp/fp/tn/fn, accuracy, sensitivity, specificity, ppv, npv, f1, kappa, youden (each
        {value, low, high}), brier, calibration, prob_range (min, p05, p95, max of prob).
        A CI bound beyond its metric's range (kappa above 1, a Wald interval below 0, ...) is
        clipped to it, and the entry's ``clipped`` holds the bound as computed
        (`thyrovid.reliability.clip_interval`).
    """
    from thyrovid.stats.auc_ci import auc_interval
    from thyrovid.stats.proportions import binary_metrics, confusion
    from thyrovid.stats.roc import auc, check_level, delong

    t = np.asarray(truth).astype(int)
    p = np.asarray(prob, dtype=np.float64)
    n_pos = int(t.sum())
    out: dict = {"n": int(t.size), "n_pos": n_pos, "threshold": float(threshold)}
    n_neg = t.size - n_pos
    out["auroc"] = {"value": None, "low": None, "high": None}
    if auc_ci == "delong" and min(n_pos, n_neg) >= 2:
        from scipy.stats import norm

        check_level(level)
        d = delong(t, p)  # the interval before any clip: the clip is said by clip_block
        a, se = float(d.aucs[0]), float(np.sqrt(max(d.cov[0, 0], 0.0)))
        half = float(norm.ppf(0.5 + level / 2.0)) * se
        out["auroc"] = {"value": a, "low": a - half, "high": a + half, "method": auc_ci}
    elif auc_ci != "delong" and min(n_pos, n_neg) >= 1:
        a, lo, hi = auc_interval(t, p, auc_ci, level=level)
        out["auroc"] = {"value": a, "low": lo, "high": hi, "method": auc_ci}
    elif min(n_pos, n_neg) == 1:  # DeLong's variance needs two of each class: no CI
        out["auroc"]["value"] = auc(t, p)
        out["auroc"]["note"] = "no CI: DeLong's variance needs two cases of each class"
    else:
        out["auroc"]["note"] = (
            f"undefined: {'no cases' if not t.size else 'one class only'} "
            f"({n_pos} malignant, {n_neg} benign)"
        )
    tp, fp, tn, fn = confusion(t, (p >= threshold).astype(int))
    out.update({"tp": int(tp), "fp": int(fp), "tn": int(tn), "fn": int(fn)})
    out.update(_clean(binary_metrics(tp, fp, tn, fn, ci=ci, level=level)))
    out["brier"] = float(np.mean((p - t) ** 2)) if t.size else None
    out["calibration"] = calibration(t, p)
    out["prob_range"] = prob_range(p)
    clip_block(out, "")  # marks each clipped entry; reliability.metrics_cautions words them
    return out


def _clean(obj):
    """NaN/inf and numpy scalars -> JSON-safe (None / float / int)."""
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if np.isfinite(obj) else None
    return obj


def choose_run_threshold(
    predictions: pd.DataFrame,
    threshold: float | None = None,
    target_sensitivity: float | None = None,
    split: str = "val",
    level: str = "patient",
) -> dict:
    """Decide the one threshold of a run, from the validation split only.

    Returns:
        dict value, source (human-readable), method ("fixed"/"youden"/"sensitivity"/"default"),
        split and level it was chosen on (None when fixed or default), target (or None).
    """
    from thyrovid.stats.roc import choose_threshold

    if threshold is not None:
        return {"value": check_threshold(threshold), "source": "--threshold", "method": "fixed",
                "split": None, "level": None, "target": None}  # fmt: skip
    rows = predictions[(predictions["split"] == split) & (predictions["level"] == level)]
    method = "youden" if target_sensitivity is None else "sensitivity"
    if rows.empty or rows["label"].nunique() < 2:
        why = "no validation split" if rows.empty else "validation split has one class only"
        return {"value": 0.5, "source": f"default 0.5 ({why})", "method": "default",
                "split": None, "level": None, "target": None}  # fmt: skip
    truth, prob = rows["label"].to_numpy(int), rows["prob"].to_numpy(float)
    value = choose_threshold(truth, prob, method=method, target=target_sensitivity)
    source = f"{split} split, {level} level, " + (
        "Youden index" if method == "youden" else f"sensitivity >= {target_sensitivity}"
    )
    band = threshold_band(truth, prob, method, target_sensitivity)  # "near the threshold"
    return {"value": float(value), "source": source, "method": method, "split": split,
            "level": level, "target": target_sensitivity, "band": band}  # fmt: skip


def metrics_from_predictions(
    predictions: pd.DataFrame,
    threshold: float | None = None,
    target_sensitivity: float | None = None,
    ci: str = "wilson",
    ci_level: float = 0.95,
    auc_ci: str = "delong",
    patient_vote: str = "mean",
    extra_cautions=(),
    quiet: bool = False,
) -> dict:
    """metrics.json content from a predictions table (the columns of predictions.csv).

    Args:
        patient_vote: how the predictions' patient rows were voted (recorded only).
        extra_cautions: `thyrovid.reliability.Caution`s found elsewhere (the training log).
        quiet: do not print the warnings (evaluate prints them on one rank only).

    Returns:
        dict threshold (see :func:`choose_run_threshold`), ci, auc_ci, patient_vote, level
        (the CI level), splits: {split: {level: :func:`level_metrics`}} for every split and
        level in ``predictions``, and warnings: what makes these numbers unreliable
        (`thyrovid.reliability`), printed to stderr as ``warning: ...`` lines unless `quiet`.
    """
    if ci not in CI_METHODS:
        raise UserError(f"--ci must be one of {', '.join(CI_METHODS)}, got {ci!r}")
    if auc_ci not in AUC_CI_METHODS:
        raise UserError(f"--auc-ci must be one of {', '.join(AUC_CI_METHODS)}, got {auc_ci!r}")
    chosen = choose_run_threshold(predictions, threshold, target_sensitivity)
    present = list(dict.fromkeys(predictions["split"].astype(str)))
    ordered = [s for s in SPLIT_ORDER if s in present] + [
        s for s in present if s not in SPLIT_ORDER
    ]
    splits: dict = {}
    for split in ordered:
        splits[split] = {}
        for lvl in LEVELS[::-1]:  # patient first
            rows = predictions[(predictions["split"] == split) & (predictions["level"] == lvl)]
            if not rows.empty:
                splits[split][lvl] = level_metrics(
                    rows["label"].to_numpy(int),
                    rows["prob"].to_numpy(float),
                    chosen["value"],
                    ci,
                    ci_level,
                    auc_ci,
                )
    out = _clean({"threshold": chosen, "ci": ci, "auc_ci": auc_ci, "patient_vote": patient_vote,
                  "level": ci_level, "splits": splits})  # fmt: skip
    cautions = [*metrics_cautions(out), *extra_cautions]
    if not quiet:
        emit(cautions)
    out["warnings"] = to_json(cautions)
    return out
