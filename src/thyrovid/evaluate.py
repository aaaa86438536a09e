"""`thyrovid evaluate`: predict, soft-vote clip -> video -> nodule -> patient, metrics with CIs.

Writes into the run folder:

- ``predictions.csv``: level (clip/video/nodule/patient), id, patient_id, center, split, label, prob
  (P(malignant)); see :func:`thyrovid.predict.soft_vote` for the vote and the truth per level.
- ``metrics.json``: the threshold and where it came from, then per split and level: n, n_pos,
  AUROC with its DeLong CI, ACC/SEN/SPE/PPV/NPV/F1/kappa with CIs, Brier score, calibration.

The decision threshold is chosen ONCE, on the validation split at PATIENT level (Youden by
default, or the highest threshold reaching ``--target-sensitivity``), or given with
``--threshold``; it is then applied unchanged to every split and level (predict malignant when
P >= threshold). Without a usable validation split it is 0.5, with a warning. The validation
split is always predicted when the work folder has one, since the threshold needs it.

Calibration: logistic regression of the truth on logit(p) (intercept and slope fitted jointly;
a well-calibrated model has intercept 0, slope 1; a slope < 1 means over-confident scores) and a
reliability table over ten equal-width probability bins.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from thyrovid.errors import UserError
from thyrovid.report import write_text_atomic

HELP = "predict, soft-vote clip->video->nodule->patient, metrics with CIs"
SPLIT_ORDER = ("val", "test", "external")
CI_METHODS = ("wilson", "wald", "clopper-pearson")


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
def level_metrics(truth, prob, threshold: float, ci: str = "wilson", level: float = 0.95) -> dict:
    """All metrics of one split and level at a fixed threshold.

    Args:
        truth: (n,) 0/1, 1 = malignant.
        prob: (n,) P(malignant).
        threshold: predict malignant when prob >= threshold.
        ci: interval for the proportions ("wilson", "wald" as in the paper, "clopper-pearson").
        level: confidence level.

    Returns:
        dict n, n_pos, threshold, auroc {value, low, high} (DeLong CI; no CI with fewer than two
        cases of a class, no value with one class),
        tp/fp/tn/fn, accuracy, sensitivity, specificity, ppv, npv, f1, kappa, youden (each
        {value, low, high}), brier, calibration.
    """
    from thyrovid.stats.proportions import binary_metrics, confusion
    from thyrovid.stats.roc import auc, auc_ci

    t = np.asarray(truth).astype(int)
    p = np.asarray(prob, dtype=np.float64)
    n_pos = int(t.sum())
    out: dict = {"n": int(t.size), "n_pos": n_pos, "threshold": float(threshold)}
    n_neg = t.size - n_pos
    out["auroc"] = {"value": None, "low": None, "high": None}
    if min(n_pos, n_neg) >= 2:
        a, lo, hi = auc_ci(t, p, level=level)
        out["auroc"] = {"value": a, "low": lo, "high": hi}
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
        if not 0.0 <= threshold <= 1.0:
            raise UserError(f"--threshold must be in [0, 1], got {threshold}")
        return {"value": float(threshold), "source": "--threshold", "method": "fixed",
                "split": None, "level": None, "target": None}  # fmt: skip
    rows = predictions[(predictions["split"] == split) & (predictions["level"] == level)]
    method = "youden" if target_sensitivity is None else "sensitivity"
    if rows.empty or rows["label"].nunique() < 2:
        why = "no validation split" if rows.empty else "validation split has one class only"
        print(f"warning: {why}; using threshold 0.5", file=sys.stderr)
        return {"value": 0.5, "source": f"default 0.5 ({why})", "method": "default",
                "split": None, "level": None, "target": None}  # fmt: skip
    value = choose_threshold(
        rows["label"].to_numpy(int),
        rows["prob"].to_numpy(float),
        method=method,
        target=target_sensitivity,
    )
    source = f"{split} split, {level} level, " + (
        "Youden index" if method == "youden" else f"sensitivity >= {target_sensitivity}"
    )
    return {"value": float(value), "source": source, "method": method, "split": split,
            "level": level, "target": target_sensitivity}  # fmt: skip


def metrics_from_predictions(
    predictions: pd.DataFrame,
    threshold: float | None = None,
    target_sensitivity: float | None = None,
    ci: str = "wilson",
    ci_level: float = 0.95,
) -> dict:
    """metrics.json content from a predictions table (the columns of predictions.csv).

    Returns:
        dict threshold (see :func:`choose_run_threshold`), ci, level (the CI level), and splits:
        {split: {level: :func:`level_metrics`}} for every split and level in ``predictions``.
    """
    if ci not in CI_METHODS:
        raise UserError(f"--ci must be one of {', '.join(CI_METHODS)}, got {ci!r}")
    chosen = choose_run_threshold(predictions, threshold, target_sensitivity)
    present = list(dict.fromkeys(predictions["split"].astype(str)))
    ordered = [s for s in SPLIT_ORDER if s in present] + [
        s for s in present if s not in SPLIT_ORDER
    ]
    splits: dict = {}
    for split in ordered:
        splits[split] = {}
        for lvl in ("patient", "nodule", "video", "clip"):
            rows = predictions[(predictions["split"] == split) & (predictions["level"] == lvl)]
            if not rows.empty:
                splits[split][lvl] = level_metrics(
                    rows["label"].to_numpy(int),
                    rows["prob"].to_numpy(float),
                    chosen["value"],
                    ci,
                    ci_level,
                )
    return _clean({"threshold": chosen, "ci": ci, "level": ci_level, "splits": splits})


# --------------------------------------------------------------------------- the stage
def run_work_dir(run_dir: Path) -> Path:
    """The work folder recorded in RUN/config.yaml (``meta.work_dir`` or ``work_dir``)."""
    cfg_path = run_dir / "config.yaml"
    if not cfg_path.is_file():
        raise UserError(
            f"{cfg_path}: not found; is {run_dir} a run folder written by `thyrovid train`?"
        )
    doc = yaml.safe_load(cfg_path.read_text()) or {}
    work = (doc.get("meta") or {}).get("work_dir") or doc.get("work_dir")
    if not work:
        raise UserError(f"{cfg_path}: no work_dir recorded; pass --work WORK")
    work = Path(work)
    work = work if work.is_absolute() else (run_dir / work).resolve()
    if not (work / "clips.csv").is_file():
        raise UserError(
            f"{work}/clips.csv: not found; the work folder recorded in {cfg_path} has moved "
            "or gone: pass --work WORK"
        )
    return work


def write_predictions(predictions: pd.DataFrame, path: Path) -> Path:
    """predictions.csv, atomically; probabilities with full float precision."""
    return write_text_atomic(path, predictions.to_csv(index=False, float_format="%.17g"))


def check_options(threshold, target_sensitivity, ci: str, tta: int, batch_size: int) -> None:
    """Refuse out-of-range options before any prediction is made (one line each)."""
    if threshold is not None and target_sensitivity is not None:
        raise UserError("give --threshold or --target-sensitivity, not both")
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise UserError(f"--threshold must be in [0, 1], got {threshold}")
    if target_sensitivity is not None and not 0.0 < target_sensitivity <= 1.0:
        raise UserError(f"--target-sensitivity must be in (0, 1], got {target_sensitivity}")
    if ci not in CI_METHODS:
        raise UserError(f"--ci must be one of {', '.join(CI_METHODS)}, got {ci!r}")
    if tta < 1:
        raise UserError(f"--tta must be >= 1, got {tta}")
    if batch_size < 1:
        raise UserError(f"--batch-size must be >= 1, got {batch_size}")


def evaluate(
    run_dir: str | os.PathLike,
    splits: Sequence[str] = ("val", "test", "external"),
    work_dir: str | os.PathLike | None = None,
    tta: int = 1,
    threshold: float | None = None,
    target_sensitivity: float | None = None,
    ci: str = "wilson",
    ci_level: float = 0.95,
    device: str = "cpu",
    batch_size: int = 16,
) -> dict:
    """Predict the clips of ``splits``, soft-vote, write predictions.csv and metrics.json.

    Args:
        run_dir: run folder from ``thyrovid train``.
        splits: splits to report (val is always predicted when present: it sets the threshold).
        work_dir: work folder from ``thyrovid extract``; default: the one in RUN/config.yaml.
        tta: test-time views averaged per clip (see :mod:`thyrovid.predict`).
        threshold: fixed threshold (skips the choice on validation).
        target_sensitivity: choose the highest validation threshold with at least this sensitivity.
        ci, ci_level: confidence intervals of the proportions (AUROC: DeLong).
        device: torch device for inference.
        batch_size: clips per forward pass.

    Returns:
        The metrics dict written to metrics.json (on every rank under torchrun; rank 0 writes).
    """
    from thyrovid import distributed
    from thyrovid.data import read_clips
    from thyrovid.predict import predict_clips, soft_vote

    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise UserError(f"{run_dir}: not a run folder (no config.yaml)")
    check_options(threshold, target_sensitivity, ci, tta, batch_size)
    work_dir = Path(work_dir) if work_dir is not None else run_work_dir(run_dir)
    clips = read_clips(work_dir)
    available = set(clips["split"].astype(str))
    wanted = [s for s in splits if s in available]
    if not wanted:
        raise UserError(
            f"{work_dir}/clips.csv has none of the splits {', '.join(splits) or '(none)'}; "
            f"it has {', '.join(sorted(available))}: choose with --splits"
        )
    for s in splits:
        if s not in available and distributed.is_main():
            print(f"note: split {s!r} not in {work_dir}/clips.csv; skipped", file=sys.stderr)
    if "val" in available and "val" not in wanted:
        wanted = ["val", *wanted]

    probs = predict_clips(run_dir, work_dir, wanted, device=device, batch_size=batch_size, tta=tta)
    chosen = clips[clips["split"].astype(str).isin(wanted)].copy()
    chosen["clip_id"] = chosen["clip_id"].astype(str)
    chosen = chosen.drop(columns=["prob"], errors="ignore").merge(probs, on="clip_id", how="left")
    missing = chosen["prob"].isna()
    if missing.any() and distributed.is_main():
        print(f"warning: {int(missing.sum())} clip(s) got no prediction; left out", file=sys.stderr)
    predictions = soft_vote(chosen)
    metrics = metrics_from_predictions(predictions, threshold, target_sensitivity, ci, ci_level)
    metrics = {"run": run_dir.name, "work_dir": str(work_dir), "tta": int(tta), **metrics}
    if distributed.is_main():
        write_predictions(predictions, run_dir / "predictions.csv")
        write_text_atomic(run_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    return metrics


# --------------------------------------------------------------------------- CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        "writes RUN/predictions.csv (P(malignant) per clip, video, nodule, patient) and "
        "RUN/metrics.json (per split and level, with 95% CIs); one threshold, chosen on "
        "validation patients, is applied to every split."
    )
    parser.add_argument("run", type=Path, help="run folder written by `thyrovid train`")
    parser.add_argument(
        "--work",
        type=Path,
        default=None,
        help="work folder (default: the one recorded in RUN/config.yaml; give it if moved)",
    )
    parser.add_argument(
        "--splits",
        default="val,test,external",
        help="comma-separated splits to report (default: %(default)s); val is always "
        "predicted when present, since it sets the threshold",
    )
    parser.add_argument(
        "--tta",
        type=int,
        default=1,
        help="test-time views per clip: 1 none, 2 +flip, >2 +temporal shifts",
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="fixed decision threshold on P(malignant), in [0, 1] (default: Youden index on "
        "validation patients; 0.5 without a validation split of both classes)",
    )
    group.add_argument("--target-sensitivity", type=float, default=None,
                       help="instead, the highest threshold reaching this sensitivity, in (0, 1], "
                       "on validation patients")  # fmt: skip
    parser.add_argument(
        "--ci",
        choices=CI_METHODS,
        default="wilson",
        help="CIs of ACC/SEN/SPE/PPV/NPV (default: %(default)s; paper: wald); AUROC: DeLong",
    )
    parser.add_argument(
        "--device",
        default="auto",
        help="torch device: auto (CUDA when available), cpu, cuda, cuda:1 (default: %(default)s)",
    )
    parser.add_argument(
        "--batch-size", type=int, default=16, help="clips per forward pass (default: 16)"
    )


def run(args: argparse.Namespace) -> int:
    from thyrovid import distributed

    splits = [s.strip() for s in args.splits.split(",") if s.strip()]
    main = True
    try:
        metrics = evaluate(
            args.run, splits, work_dir=args.work, tta=args.tta, threshold=args.threshold,
            target_sensitivity=args.target_sensitivity, ci=args.ci, device=args.device,
            batch_size=args.batch_size,
        )  # fmt: skip
        main = distributed.is_main()
    finally:
        distributed.cleanup()
    if main:
        summary = _summary(metrics)
        summary["wrote"] = [str(args.run / "predictions.csv"), str(args.run / "metrics.json")]
        print(json.dumps(summary, indent=2))
    return 0


def _summary(metrics: dict) -> dict:
    """Patient-level AUROC/ACC/SEN/SPE per split, for the terminal."""
    out = {
        "threshold": metrics["threshold"]["value"],
        "threshold_source": metrics["threshold"]["source"],
    }
    for split, levels in metrics["splits"].items():
        block = levels.get("patient")
        if block:
            out[split] = {
                "n_patients": block["n"],
                **{
                    k: block[k]["value"]
                    for k in ("auroc", "accuracy", "sensitivity", "specificity")
                },
            }
            if "note" in block["auroc"]:
                out[split]["auroc_note"] = block["auroc"]["note"]
    return out
