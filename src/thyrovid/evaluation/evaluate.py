"""`thyrovid evaluate`: predict, soft-vote clip -> video -> nodule -> patient, metrics with CIs.

Writes into the run folder:

- ``predictions.csv``: level (clip/video/nodule/patient), id, patient_id, center, split, label, prob
  (P(malignant)); see :func:`thyrovid.inference.voting.soft_vote` for the vote and the truth per level.
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

import pandas as pd

from thyrovid.atomic import remove_stale_temps, write_text_atomic
from thyrovid.errors import UserError
from thyrovid.evaluation.metrics import CI_METHODS, SPLIT_ORDER, metrics_from_predictions
from thyrovid.inference.voting import PATIENT_VOTES
from thyrovid.options import add_device_argument, add_work_argument
from thyrovid.reliability import never_above_chance
from thyrovid.runs import check_threshold, training_log
from thyrovid.stats.auc_ci import AUC_CI_METHODS


# --------------------------------------------------------------------------- the stage
def write_predictions(predictions: pd.DataFrame, path: Path) -> Path:
    """predictions.csv, atomically; probabilities with full float precision."""
    return write_text_atomic(path, predictions.to_csv(index=False, float_format="%.17g"))


def check_options(threshold, target_sensitivity, ci: str, tta: int, batch_size: int) -> None:
    """Refuse out-of-range options before any prediction is made (one line each)."""
    if threshold is not None and target_sensitivity is not None:
        raise UserError("give --threshold or --target-sensitivity, not both")
    if threshold is not None:
        check_threshold(threshold)
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
    splits: Sequence[str] = SPLIT_ORDER,
    work_dir: str | os.PathLike | None = None,
    tta: int = 1,
    threshold: float | None = None,
    target_sensitivity: float | None = None,
    ci: str = "wilson",
    ci_level: float = 0.95,
    device: str = "cpu",
    batch_size: int = 16,
    auc_ci: str = "delong",
    patient_vote: str = "mean",
) -> dict:
    """Predict the clips of ``splits``, soft-vote, write predictions.csv and metrics.json.

    Args:
        run_dir: run folder from ``thyrovid train``.
        splits: splits to report (val is always predicted when present: it sets the threshold).
        work_dir: work folder from ``thyrovid extract``; default: the one in RUN/config.yaml.
        tta: test-time views averaged per clip (see :mod:`thyrovid.inference.batch`).
        threshold: fixed threshold (skips the choice on validation).
        target_sensitivity: choose the highest validation threshold with at least this sensitivity.
        ci, ci_level: confidence intervals of the proportions (AUROC: DeLong).
        device: torch device for inference.
        batch_size: clips per forward pass.
        auc_ci: the AUROC interval ("delong", "hanley", "wald-paper" = the paper's, "bootstrap").
        patient_vote: nodules -> patient: "mean" (the paper's), "max" or "noisy-or".

    Returns:
        The metrics dict written to metrics.json (on every rank under torchrun; rank 0 writes).
    """
    from thyrovid import distributed
    from thyrovid.clips.dataset import read_clips
    from thyrovid.inference.batch import predict_clips
    from thyrovid.inference.voting import soft_vote
    from thyrovid.runs import work_dir as recorded_work_dir

    run_dir = Path(run_dir)
    remove_stale_temps(run_dir)  # what a killed evaluate left: .predictions.tmp-*, ...
    if not (run_dir / "config.yaml").is_file():
        raise UserError(f"{run_dir}: not a run folder (no config.yaml)")
    check_options(threshold, target_sensitivity, ci, tta, batch_size)
    if auc_ci not in AUC_CI_METHODS:
        raise UserError(f"--auc-ci must be one of {', '.join(AUC_CI_METHODS)}, got {auc_ci!r}")
    if patient_vote not in PATIENT_VOTES:
        raise UserError(
            f"--patient-vote must be one of {', '.join(PATIENT_VOTES)}, got {patient_vote!r}"
        )
    work_dir = Path(work_dir) if work_dir is not None else recorded_work_dir(run_dir)
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
    predictions = soft_vote(chosen, patient_vote=patient_vote)
    trained = never_above_chance([row.get("val_auroc") for row in training_log(run_dir)])
    metrics = metrics_from_predictions(
        predictions, threshold, target_sensitivity, ci, ci_level, auc_ci, patient_vote,
        extra_cautions=trained, quiet=not distributed.is_main(),
    )  # fmt: skip
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
        "validation patients, is applied to every split. What makes the numbers unreliable "
        "(too few patients of a class, a near-constant model, a CI clipped to its range, ...) "
        "is printed as warning lines and kept in metrics.json 'warnings'."
    )
    parser.add_argument("run", type=Path, help="run folder written by `thyrovid train`")
    add_work_argument(parser)
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
        help="CIs of ACC/SEN/SPE/PPV/NPV (default: %(default)s; wald reproduces the paper's "
        "proportion intervals)",
    )
    parser.add_argument(
        "--auc-ci",
        choices=AUC_CI_METHODS,
        default="delong",
        help="AUROC interval: delong (default, as pROC), hanley (Hanley-McNeil 1982), "
        "wald-paper (AUC +- 1.96 sqrt(AUC(1-AUC)/N): reproduces the paper's AUROC intervals), "
        "bootstrap (2000 stratified replicates, seed 0)",
    )
    parser.add_argument(
        "--patient-vote",
        choices=PATIENT_VOTES,
        default="mean",
        help="nodules -> patient: mean (default, the paper's soft voting), max (the most "
        "suspicious nodule) or noisy-or (1 - prod(1 - p)); recorded in metrics.json",
    )
    add_device_argument(parser, default="auto")
    parser.add_argument(
        "--batch-size", type=int, default=16, help="clips per forward pass (default: 16)"
    )
    parser.add_argument(
        "--json", action="store_true", help="print the summary as JSON instead of a table"
    )


def run(args: argparse.Namespace) -> int:
    from thyrovid import distributed

    splits = [s.strip() for s in args.splits.split(",") if s.strip()]
    main = True
    try:
        metrics = evaluate(
            args.run, splits, work_dir=args.work, tta=args.tta, threshold=args.threshold,
            target_sensitivity=args.target_sensitivity, ci=args.ci, device=args.device,
            batch_size=args.batch_size, auc_ci=args.auc_ci, patient_vote=args.patient_vote,
        )  # fmt: skip
        main = distributed.is_main()
    finally:
        distributed.cleanup()
    if main:
        summary = _summary(metrics)
        summary["wrote"] = [str(args.run / "predictions.csv"), str(args.run / "metrics.json")]
        print(json.dumps(summary, indent=2) if args.json else summary_table(metrics, summary))
    return 0


def _cell(entry: dict | None) -> str:
    """ "0.933 (0.893, 0.973)", "0.933" without a CI, "n/a" undefined."""
    if not entry or entry.get("value") is None:
        return "n/a"
    text = f"{entry['value']:.3f}"
    if entry.get("low") is not None and entry.get("high") is not None:
        text += f" ({entry['low']:.3f}, {entry['high']:.3f})"
    return text + ("*" if entry.get("clipped") else "")


def summary_table(metrics: dict, summary: dict) -> str:
    """The terminal summary: the threshold, then one row per split (patient level)."""
    thr = metrics["threshold"]
    lines = [f"threshold {thr['value']:.4f} ({thr['source']})"]
    band = thr.get("band")
    if band:
        lines[0] += f"; near-threshold band {band['low']:.4f}-{band['high']:.4f}"
    head = ("split", "patients", "malignant", "AUROC (95% CI)", "accuracy", "sensitivity",
            "specificity")  # fmt: skip
    rows, notes = [head], []
    for split, levels in metrics["splits"].items():
        b = levels.get("patient")
        if not b:
            continue
        rows.append((split, str(b["n"]), str(b["n_pos"]), _cell(b["auroc"]),
                     *(_cell(b[k]) for k in ("accuracy", "sensitivity", "specificity"))))  # fmt: skip
        if b["auroc"].get("note"):
            notes.append(f"{split}: AUROC {b['auroc']['note']}")
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines += notes
    if any(w["code"] == "ci_clipped" for w in metrics.get("warnings", [])):
        lines.append("* CI clipped to the metric's range (metrics.json keeps the raw bound)")
    if metrics.get("warnings"):
        lines.append(f"{len(metrics['warnings'])} warning(s) above; metrics.json 'warnings'")
    lines.append("wrote " + ", ".join(summary["wrote"]))
    return "\n".join(lines)


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
