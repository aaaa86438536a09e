"""`thyrovid compare`: several evaluated runs side by side, as in the paper.

Reads only RUN/predictions.csv, RUN/metrics.json (the run's threshold, chosen on validation)
and RUN/config.yaml (the model's name); no model is loaded. For one split and level it writes
into OUT (every table as CSV and Markdown with the same stem):

- ``table.csv``: the paper's rows (Tables 2-3: AUROC, accuracy, sensitivity, specificity, PPV,
  NPV, F1, kappa) as numbers, per model the columns "<model>: value", "<model>: low",
  "<model>: high"; ``table_display.csv`` / ``table.md``: the same formatted as in the paper,
  "0.933 (0.893, 0.973)", one column per model. ``metrics_long.csv``: the numbers in long
  form (model, metric, value, low, high).
- ``warnings.json``: what makes these numbers unreliable (`thyrovid.reliability`: too few
  cases of a class, a near-constant model, a calibration slope out of range, a CI clipped to
  its range), also printed as ``warning: ...`` lines.
- ``delong.csv``: every pair's paired DeLong test (AUROC difference with CI, z, p);
  ``delong_p.csv``/``delong_diff.csv``: the k x k matrices; ``delong.png``/``.svg``: the matrix
  (Fig. 6).
- ``roc.png``/``.svg``: all ROC curves on one plot, AUROC (95% CI) in the legend (Figs. 3-5).
- ``confusion.png``/``.svg``: one confusion matrix per model at its own threshold (Fig. 8).

The paired DeLong test needs the same cases in every run: when the runs' ids (or labels)
differ, compare says which and stops.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from thyrovid.atomic import write_text_atomic
from thyrovid.csv_input import read_predictions
from thyrovid.errors import UserError
from thyrovid.inference.voting import LEVELS as FINEST_FIRST
from thyrovid.reliability import block_cautions, emit, to_json
from thyrovid.runs import display_name, require_threshold
from thyrovid.stats.proportions import METHODS as CI_METHODS

LEVELS = FINEST_FIRST[::-1]  # patient, nodule, video, clip: the paper's level first


def model_name(run_dir: Path) -> str:
    """ "3D ResNet50" from RUN/config.yaml (arch, dims); the folder name when unknown."""
    cfg = run_dir / "config.yaml"
    if cfg.is_file():
        doc = yaml.safe_load(cfg.read_text()) or {}
        return display_name(doc) or run_dir.name
    return run_dir.name


def load_run_predictions(run_dir: Path, split: str, level: str) -> tuple[pd.DataFrame, float]:
    """The rows of one split and level of RUN/predictions.csv, and the run's threshold."""
    pred_path, metrics_path = run_dir / "predictions.csv", run_dir / "metrics.json"
    for path in (pred_path, metrics_path):
        if not path.is_file():
            raise UserError(f"{path}: not found; run `thyrovid evaluate {run_dir}` first")
    threshold, _ = require_threshold(run_dir)
    return read_predictions(pred_path, split, level), threshold


def _check_same_cases(tables: Sequence[pd.DataFrame], names: Sequence[str], level: str) -> None:
    """Refuse runs that were not evaluated on the same cases with the same labels."""
    ref = tables[0]
    for name, table in zip(names[1:], tables[1:]):
        only_ref = sorted(set(ref.index) - set(table.index))
        only_this = sorted(set(table.index) - set(ref.index))
        if only_ref or only_this:

            def show(ids):
                return ", ".join(ids[:8]) + (f" (+{len(ids) - 8} more)" if len(ids) > 8 else "")

            raise UserError(
                f"runs {names[0]!r} and {name!r} were evaluated on different {level}s "
                f"(only in {names[0]!r}: {show(only_ref) or 'none'}; only in {name!r}: "
                f"{show(only_this) or 'none'}); the paired DeLong test needs the same cases"
            )
        differ = (table.loc[ref.index, "label"].to_numpy() != ref["label"].to_numpy()).nonzero()[0]
        if differ.size:
            raise UserError(
                f"runs {names[0]!r} and {name!r} disagree on the label of {level} {ref.index[differ[0]]!r}"
            )


def delong_matrix(truth: np.ndarray, scores: np.ndarray, names: Sequence[str], level: float = 0.95):
    """Pairwise paired DeLong tests.

    Args:
        truth: (n,) 0/1; scores: (k, n) P(malignant); names: k names.

    Returns:
        (pairs DataFrame: name1, name2, auc1, auc2, diff, se, z, p, ci_low, ci_high for i < j,
        diff (k, k) AUROC(row) - AUROC(col), p (k, k) two-sided p with 1 on the diagonal).
    """
    from thyrovid.stats.auc_compare import delong_test

    k = len(names)
    diff, p = np.zeros((k, k)), np.ones((k, k))
    pairs = []
    for i in range(k):
        for j in range(i + 1, k):
            res = delong_test(truth, scores[i], scores[j], level=level)
            diff[i, j], diff[j, i] = res["diff"], -res["diff"]
            p[i, j] = p[j, i] = res["p"]
            pairs.append({"name1": names[i], "name2": names[j], **res})
    columns = ["name1", "name2", "auc1", "auc2", "diff", "se", "z", "p", "ci_low", "ci_high"]
    return pd.DataFrame(pairs, columns=columns), diff, p


def compare(
    runs: Sequence[str | os.PathLike],
    level: str = "patient",
    split: str = "test",
    names: Sequence[str] | None = None,
    out: str | os.PathLike | None = None,
    ci: str = "wilson",
    ci_level: float = 0.95,
    figures: bool = True,
) -> dict:
    """Compare evaluated runs on one split and level; write tables and figures into ``out``.

    Args:
        runs: run folders, each evaluated (predictions.csv + metrics.json).
        level: "patient" (default, as in the paper), "nodule", "video" or "clip".
        split: e.g. "test" (internal) or "external".
        names: one column name per run (default: "3D ResNet50" etc. from each config.yaml).
        out: output folder (default: RUNS[0]/../compare_{split}_{level}).
        ci: proportion CI method ("wilson", "wald" as in the paper, "clopper-pearson").
        ci_level: confidence level.
        figures: also draw the ROC, DeLong and confusion figures (PNG + SVG).

    Returns:
        dict names, table (paper layout DataFrame), metrics {name: block}, delong (pairs DataFrame),
        diff and p (k x k arrays), files (list of written paths).
    """
    from thyrovid.evaluation.metrics import level_metrics
    from thyrovid.report.tables import (
        long_table,
        numeric_table,
        paper_table,
        to_markdown,
        write_table,
    )

    if level not in LEVELS:
        raise UserError(f"--level must be one of {', '.join(LEVELS)}, got {level!r}")
    run_dirs = [Path(r) for r in runs]
    if not run_dirs:
        raise UserError("give at least one run folder")
    names = list(names) if names else [model_name(r) for r in run_dirs]
    if len(names) != len(run_dirs):
        raise UserError(f"--names has {len(names)} names for {len(run_dirs)} runs")
    if len(set(names)) < len(names):  # two runs of the same architecture
        names = [f"{n} ({r.name})" if names.count(n) > 1 else n for n, r in zip(names, run_dirs)]
    loaded = [load_run_predictions(r, split, level) for r in run_dirs]
    tables = [t for t, _ in loaded]
    _check_same_cases(tables, names, level)
    ids = tables[0].index
    truth = tables[0]["label"].to_numpy(int)
    n_pos, n_neg = int(truth.sum()), int(truth.size - truth.sum())
    if min(n_pos, n_neg) < 2:
        finer = LEVELS[LEVELS.index(level) + 1 :]  # more cases per split
        hint = "another --split" + (f", or --level {' or '.join(finer)}" if finer else "")
        raise UserError(
            f"split {split!r} has {n_pos} malignant and {n_neg} benign {level}s; DeLong needs at "
            f"least 2 of each (try {hint})"
        )
    scores = np.stack([t.loc[ids, "prob"].to_numpy(float) for t in tables])

    blocks = {
        name: level_metrics(truth, scores[i], loaded[i][1], ci=ci, level=ci_level)
        for i, name in enumerate(names)
    }
    pairs, diff, p = delong_matrix(truth, scores, names, ci_level)

    out = Path(out) if out is not None else run_dirs[0].parent / f"compare_{split}_{level}"
    title = f"{split} split, {level} level (n = {len(ids)}, {int(truth.sum())} malignant)"
    cautions = [
        c
        for name, b in blocks.items()
        for c in block_cautions(b, f"{name}: {split}/{level}", f"{level}s")
    ]
    table = paper_table(blocks)
    files = [
        write_text_atomic(out / "table.csv", numeric_table(blocks).to_csv(float_format="%.6g"))
    ]
    files.append(write_text_atomic(out / "table_display.csv", table.to_csv()))
    files.append(write_text_atomic(out / "table.md", to_markdown(table)))
    files.append(
        write_text_atomic(out / "warnings.json", json.dumps(to_json(cautions), indent=2) + "\n")
    )
    files += write_table(long_table(blocks), out / "metrics_long", index=False)
    files += write_table(pairs, out / "delong", index=False)
    for stem, matrix in (("delong_p", p), ("delong_diff", diff)):
        files += write_table(
            pd.DataFrame(matrix, index=names, columns=names).rename_axis("model"), out / stem
        )
    if figures:
        files += draw_figures(
            names, truth, scores, blocks, diff, p, out, f"{split}, {level} level", title
        )
    return {
        "names": names,
        "table": table,
        "metrics": blocks,
        "delong": pairs,
        "diff": diff,
        "p": p,
        "files": files,
        "warnings": cautions,
    }


def draw_figures(
    names, truth, scores, blocks, diff, p, out: Path, where: str, title: str
) -> list[Path]:
    """ROC curves, the DeLong matrix (two or more runs) and confusion matrices into ``out``."""
    from thyrovid.report.figures import RocCurve, confusion_figure, delong_figure, roc_figure

    curves = []
    for i, name in enumerate(names):
        auroc = blocks[name]["auroc"]
        curves.append(RocCurve(name, truth, scores[i], auroc["value"], auroc["low"], auroc["high"]))
    files = roc_figure(curves, out / "roc", title=f"ROC, {title}")
    if len(names) > 1:
        files += delong_figure(
            names, diff, p, out / "delong", title=f"DeLong: AUROC(row) - AUROC(column), {where}"
        )
    panels = [
        (f"{n}\n(threshold {b['threshold']:.3f})", b["tp"], b["fp"], b["tn"], b["fn"])
        for n, b in blocks.items()
    ]
    return files + confusion_figure(panels, out / "confusion", title=f"Confusion matrices, {title}")


# --------------------------------------------------------------------------- CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", type=Path, help="evaluated run folders")
    parser.add_argument(
        "--level", choices=LEVELS, default="patient", help="level compared (default: %(default)s)"
    )
    parser.add_argument(
        "--split",
        default="test",
        help="split compared, e.g. test or external (default: %(default)s)",
    )
    parser.add_argument(
        "--names",
        nargs="+",
        default=None,
        help="column names, one per run (default: from config.yaml)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output folder (default: RUNS[0]/../compare_SPLIT_LEVEL)",
    )
    parser.add_argument("--ci", choices=CI_METHODS, default="wilson",
                        help="proportion CIs (paper: wald)")  # fmt: skip
    parser.add_argument("--no-figures", action="store_true", help="tables only, no PNG/SVG")
    parser.add_argument("--json", action="store_true",
                        help="print the metrics as JSON instead of the table")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from thyrovid.report.tables import to_markdown

    result = compare(
        args.runs, level=args.level, split=args.split, names=args.names, out=args.out, ci=args.ci,
        figures=not args.no_figures,
    )  # fmt: skip
    if args.json:
        print(json.dumps({"names": result["names"], "metrics": result["metrics"],
                          "warnings": to_json(result["warnings"]),
                          "files": [str(f) for f in result["files"]]}, indent=2))  # fmt: skip
        emit(result["warnings"])
        return 0
    print(to_markdown(result["table"]), end="")
    emit(result["warnings"])
    print(f"wrote {len(result['files'])} files to {Path(result['files'][0]).parent}")
    return 0
