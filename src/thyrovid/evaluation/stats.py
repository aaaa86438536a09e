"""`thyrovid stats`: AUROC/DeLong and confusion-matrix metrics from a CSV, as text or JSON.

    thyrovid stats auc --csv aSAH.csv --truth outcome --positive Poor \\
        --score wfns --score s100b [--alternative greater] [--json]
    thyrovid stats metrics --tp 101 --fp 7 --tn 29 --fn 15 --ci wald [--json]
    thyrovid stats auc-ci --auc 0.916 --n 245 [--method wald-paper|hanley --n-pos 100]
    thyrovid stats metrics --csv preds.csv --truth label --pred prob --threshold 0.5

Line numbers in errors count the header as line 1.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from thyrovid.csv_input import NEGATIVE, POSITIVE, read_user_csv, to_number
from thyrovid.errors import UserError
from thyrovid.stats.auc_ci import (
    AUC_CI_METHODS,
    AUC_CI_NAMES,
    auc_interval,
    hanley_mcneil_ci,
    paper_auc_ci,
)
from thyrovid.stats.auc_compare import ALTERNATIVES, paired_from_delong
from thyrovid.stats.proportions import METHODS, binary_metrics, confusion
from thyrovid.stats.roc import delong

_ALT_NAMES = {
    "two-sided": "two-sided",
    "greater": "one-sided, H1: AUROC1 > AUROC2",
    "less": "one-sided, H1: AUROC1 < AUROC2",
}
_CI_NAMES = {"wilson": "Wilson", "wald": "Wald", "clopper-pearson": "Clopper-Pearson"}


# ----------------------------------------------------------------------------- arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the `auc` and `metrics` sub-commands to the `thyrovid stats` parser."""
    sub = parser.add_subparsers(dest="stats_command", metavar="SUBCOMMAND", required=True)

    p = sub.add_parser(
        "auc",
        help="AUROC with DeLong CI per score; paired DeLong tests between every pair of scores",
        description="AUROC (Mann-Whitney, ties 1/2) with DeLong CIs (as pROC ci.auc); with two "
        "or more scores, the paired DeLong test (as pROC roc.test) for every pair, "
        "first named minus second.",
    )
    _add_csv(p, required=True)
    p.add_argument(
        "--score",
        action="append",
        required=True,
        metavar="COL",
        help="score column, higher = more likely positive (repeat for several models)",
    )
    p.add_argument(
        "--alternative",
        choices=ALTERNATIVES,
        default="two-sided",
        help="for the paired tests; 'greater' tests AUC(first) > AUC(second) (default two-sided)",
    )
    _add_auc_ci(p)
    _add_common(p)

    p = sub.add_parser(
        "auc-ci",
        help="an AUROC's interval from the AUROC and the case counts (the paper's formula)",
        description="The interval of a published AUROC from the AUROC and its counts alone. "
        "wald-paper (default): AUC +- z sqrt(AUC (1 - AUC) / N), the seed paper's formula; "
        "it reproduces the paper's Table 2/3 AUROC intervals with N = 152 and Table 4's with "
        "N = 244 (or 245). hanley: Hanley & McNeil (1982), needs --n-pos (and N).",
    )
    p.add_argument("--auc", type=float, required=True, help="the AUROC")
    p.add_argument("--n", type=int, required=True, help="number of cases (patients)")
    p.add_argument("--n-pos", type=int, help="positive cases (hanley)")
    p.add_argument(
        "--method", choices=("wald-paper", "hanley"), default="wald-paper",
        help="default wald-paper (the seed paper's intervals)",
    )  # fmt: skip
    _add_common(p)

    p = sub.add_parser(
        "metrics",
        help="accuracy, sensitivity, specificity, PPV, NPV, F1, kappa, Youden with CIs",
        description="Confusion-matrix metrics with CIs, from counts or from a CSV of decisions.",
    )
    for name in ("tp", "fp", "tn", "fn"):
        p.add_argument(f"--{name}", type=int, metavar="N", help=f"count of {name.upper()}")
    _add_csv(p, required=False)
    p.add_argument("--pred", metavar="COL", help="prediction column (with --csv)")
    p.add_argument(
        "--pred-positive",
        metavar="VALUE",
        help="value of --pred meaning positive (default: the --positive value)",
    )
    p.add_argument(
        "--threshold",
        type=float,
        metavar="T",
        help="treat --pred as a score: positive when score >= T",
    )
    p.add_argument(
        "--ci",
        choices=METHODS,
        default="wilson",
        help="proportion CI (default wilson; the seed paper used wald)",
    )
    _add_common(p)


def _add_csv(p: argparse.ArgumentParser, required: bool) -> None:
    p.add_argument("--csv", type=Path, required=required, metavar="F", help="input CSV file")
    p.add_argument("--truth", metavar="COL", help="truth column (required with --csv)")
    p.add_argument(
        "--positive",
        default="1",
        metavar="VALUE",
        help="value of the truth column meaning positive/malignant (default 1)",
    )
    p.add_argument(
        "--negative",
        default=None,
        metavar="VALUE",
        help="value meaning negative/benign (default: the pair of --positive, 0 for 1, "
        "benign for malignant, ...; else the column's only other value); any third value "
        "(2, -1, NA, Unknown) is refused with its line",
    )


def _add_auc_ci(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--auc-ci",
        choices=AUC_CI_METHODS,
        default="delong",
        help="AUROC interval: delong (default, as pROC), hanley (Hanley-McNeil), wald-paper "
        "(the seed paper's AUC +- z sqrt(AUC(1-AUC)/N)), bootstrap (2000 stratified)",
    )


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--level", type=float, default=0.95, help="confidence level (default 0.95)")
    p.add_argument("--digits", type=int, default=3, help="decimals in the text table (default 3)")
    p.add_argument("--json", action="store_true", help="print JSON (full precision) instead")


# ----------------------------------------------------------------------------- CSV input


def read_table(path: Path, columns: list[str]) -> pd.DataFrame:
    """Read a CSV (comma, semicolon or tab; BOM allowed) as strings and check the columns exist.

    The delimiter is kept in ``df.attrs["sep"]`` (a ';' file may use decimal commas).
    """
    df, sep = read_user_csv(path)
    for col in columns:
        if col not in df.columns:
            near = [c for c in df.columns if c.lower() == col.lower()]
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise UserError(f"{path}: no column {col!r} (columns: {', '.join(df.columns)}){hint}")
    if len(df) == 0:
        raise UserError(f"{path}: no data rows")
    df.attrs["sep"] = sep
    return df


def warn_pooled(df: pd.DataFrame, path: Path) -> str | None:
    """A predictions.csv mixes levels and splits: say that every row is pooled (on stderr)."""
    mixed = [c for c in ("level", "split") if c in df.columns and df[c].nunique() > 1]
    if not mixed:
        return None
    what = "; ".join(f"{c}: {', '.join(sorted(df[c].unique()))}" for c in mixed)
    note = (
        f"note: {path} has several values of {' and '.join(mixed)} ({what}); all "
        f"{len(df)} rows are pooled. Keep the rows of one level and split for a per-patient "
        "AUROC"
    )
    print(note, file=sys.stderr)
    return note


def _is_positive(values: pd.Series, positive: str, sep: str = ",") -> np.ndarray:
    """values == positive, as strings, or as numbers when both are numbers ("1.0" is "1")."""
    same = (values == positive).to_numpy()
    num = to_number(values, sep).to_numpy(np.float64)
    try:
        target = float(positive)
    except ValueError:
        return same
    return same | (num == target)


def _negative_of(positive: str) -> str | None:
    """The value paired with `positive` in csv_input's spellings (1/0, malignant/benign, ...)."""
    low = positive.strip().lower()
    return NEGATIVE[POSITIVE.index(low)] if low in POSITIVE else None


def _matches(values: pd.Series, value: str, sep: str) -> np.ndarray:
    """`_is_positive`, also ignoring case for words (Benign is benign)."""
    return _is_positive(values, value, sep) | (values.str.lower() == value.lower()).to_numpy()


def truth_column(
    df: pd.DataFrame,
    path: Path,
    col: str,
    positive: str,
    both: bool = True,
    negative: str | None = None,
) -> np.ndarray:
    """(N,) bool: column value == positive; an empty value is refused with its line, and so
    is a third value, neither positive nor negative (`negative`: default `_negative_of`, else
    the column's only other value).

    Args:
        both: refuse a column with one class only (an AUROC needs both).
    """
    values = df[col]  # read_table has stripped every cell
    empty = np.flatnonzero((values == "").to_numpy())
    if empty.size:
        raise UserError(f"{path}, line {df.index[empty[0]] + 2}: truth column {col!r} is empty")
    sep = df.attrs.get("sep", ",")
    truth = _is_positive(values, positive, sep)
    negative = negative if negative is not None else _negative_of(positive)
    if negative is None:
        others = sorted(set(values[~truth]))
        if len(others) > 1:
            raise UserError(
                f"{path}: truth column {col!r} holds {len(others)} values besides "
                f"{positive!r} ({', '.join(map(repr, others[:4]))}); say which one is "
                "negative with --negative (a third value cannot be counted)"
            )
        negative = others[0] if others else None
    if negative is not None:
        third = np.flatnonzero(~truth & ~_matches(values, negative, sep))
        if third.size:
            i = int(third[0])
            raise UserError(
                f"{path}, line {df.index[i] + 2}: truth column {col!r} holds "
                f"{values.iloc[i]!r}, neither positive {positive!r} nor negative {negative!r}; "
                f"{third.size} such row(s): fix or delete them, or set --positive/--negative"
            )
    seen = sorted(values.unique())
    if len(seen) == 1 and both:
        raise UserError(
            f"{path}: every row ({truth.size}) has {col} == {seen[0]!r}: one class "
            "only; need both classes (positives and negatives) for an AUROC"
        )
    if not truth.any() and (both or len(seen) > 1):
        raise UserError(
            f"{path}: no row has {col} == {positive!r} (values: {', '.join(seen[:5])}); "
            "set --positive"
        )
    if truth.all() and both:
        raise UserError(f"{path}: every row has {col} == {positive!r}; need both classes")
    return truth


def score_column(df: pd.DataFrame, path: Path, col: str) -> np.ndarray:
    """(N,) float64; an empty, non-numeric, NaN or infinite value is refused with its line."""
    values = to_number(df[col], df.attrs.get("sep", ",")).to_numpy(np.float64)  # stripped
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        i = int(bad[0])
        raise UserError(
            f"{path}, line {df.index[i] + 2}: score column {col!r} is not a finite number "
            f"({df[col].iloc[i]!r}); {bad.size} such row(s)"
        )
    return values


# ----------------------------------------------------------------------------- stages


def auc_report(
    csv: Path,
    truth: str,
    positive: str,
    scores: list[str],
    level: float = 0.95,
    alternative: str = "two-sided",
    auc_ci: str = "delong",
    negative: str | None = None,
) -> dict:
    """AUROC + CI (`auc_ci`, DeLong by default) per score column, their DeLong covariance, and
    all paired DeLong tests.

    Returns:
        dict: file, truth, positive, n, n_pos, n_neg, level, alternative, auc_ci,
        scores [{name, auc, low, high, se, var}], cov (k x k), tests [{name1, name2, auc1,
        auc2, diff, se, z, p, ci_low, ci_high}] (empty for one score).
    """
    if not truth:
        raise UserError("--truth COL is required with --csv")
    if len(set(scores)) != len(scores):
        raise UserError(f"a score column is named twice: {scores}")
    df = read_table(csv, [truth, *scores])
    warn_pooled(df, csv)
    t = truth_column(df, csv, truth, positive, negative=negative)
    s = np.stack([score_column(df, csv, c) for c in scores])
    n_pos, n_neg = int(t.sum()), int((~t).sum())
    if min(n_pos, n_neg) < 2:
        raise UserError(
            f"{csv}: {n_pos} positive and {n_neg} negative row(s) ({truth} == {positive!r}); "
            "the DeLong CI needs at least 2 of each"
        )
    d = delong(t, s)
    rows = []
    for i, name in enumerate(scores):
        a, low, high = auc_interval(t, s[i], auc_ci, level)
        rows.append(
            {
                "name": name,
                "auc": a,
                "low": low,
                "high": high,
                "se": math.sqrt(max(d.cov[i, i], 0.0)),
                "var": float(d.cov[i, i]),
            }
        )
    tests = []
    for i in range(len(scores)):
        for j in range(i + 1, len(scores)):
            res = paired_from_delong(d, i, j, alternative, level)
            tests.append({"name1": scores[i], "name2": scores[j], **res})
    return {
        "file": str(csv),
        "truth": truth,
        "positive": positive,
        "n": int(t.size),
        "n_pos": d.n_pos,
        "n_neg": d.n_neg,
        "level": level,
        "alternative": alternative,
        "auc_ci": auc_ci,
        "scores": rows,
        "cov": d.cov.tolist(),
        "tests": tests,
    }


def auc_ci_report(auc: float, n: int, n_pos: int | None, method: str, level: float) -> dict:
    """`thyrovid stats auc-ci`: an AUROC's interval from the AUROC and the counts."""
    if method == "hanley":
        if n_pos is None or not 0 < n_pos < n:
            raise UserError(f"--method hanley needs --n-pos between 1 and N - 1 (N = {n})")
        low, high = hanley_mcneil_ci(auc, n_pos, n - n_pos, level)
    else:
        low, high = paper_auc_ci(auc, n, level)
    return {"auc": auc, "n": n, "n_pos": n_pos, "method": method, "level": level,
            "low": low, "high": high}  # fmt: skip


def metrics_report(
    tp: int | None = None,
    fp: int | None = None,
    tn: int | None = None,
    fn: int | None = None,
    csv: Path | None = None,
    truth: str | None = None,
    positive: str = "1",
    pred: str | None = None,
    pred_positive: str | None = None,
    threshold: float | None = None,
    ci: str = "wilson",
    level: float = 0.95,
    negative: str | None = None,
) -> dict:
    """Confusion-matrix metrics with CIs from counts or from a CSV of decisions/scores.

    Returns:
        dict: source, tp, fp, tn, fn, ci, level, metrics (see ``binary_metrics``).
    """
    counts = (tp, fp, tn, fn)
    if csv is not None:
        if any(c is not None for c in counts):
            raise UserError("give either --tp/--fp/--tn/--fn or --csv, not both")
        if not truth or not pred:
            raise UserError("--csv needs --truth COL and --pred COL")
        df = read_table(csv, [truth, pred])
        warn_pooled(df, csv)
        t = truth_column(df, csv, truth, positive, both=False, negative=negative)
        if threshold is not None:
            p = score_column(df, csv, pred) >= threshold
        else:
            want = positive if pred_positive is None else pred_positive
            p = _is_positive(df[pred].str.strip(), want, df.attrs.get("sep", ","))
        tp, fp, tn, fn = confusion(t, p)
        source = str(csv)
    elif any(c is None for c in counts):
        raise UserError("give all of --tp --fp --tn --fn, or --csv with --truth and --pred")
    else:
        source = "counts"
    return {
        "source": source,
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
        "ci": ci,
        "level": level,
        "metrics": binary_metrics(tp, fp, tn, fn, ci=ci, level=level),
    }


# ----------------------------------------------------------------------------- text output


def _f(v, digits: int) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def _p(p: float, digits: int) -> str:
    floor = 10.0**-digits
    return f"<{floor:.{digits}f}" if p < floor else f"{p:.{digits}f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header, *rows]]
    return "\n".join(lines)


def format_auc(rep: dict, digits: int = 3) -> str:
    """The auc report as plain-text tables."""
    pct = f"{rep['level'] * 100:g}%"
    out = [
        f"{rep['file']}: {rep['n']} cases, {rep['n_pos']} positive "
        f"({rep['truth']} == {rep['positive']}), {rep['n_neg']} negative",
        "",
        _table(
            ["score", "AUROC", f"{pct} CI ({AUC_CI_NAMES[rep.get('auc_ci', 'delong')]})", "SE"],
            [
                [
                    r["name"],
                    _f(r["auc"], digits),
                    f"{_f(r['low'], digits)} - {_f(r['high'], digits)}",
                    _f(r["se"], digits + 1),
                ]
                for r in rep["scores"]
            ],
        ),
    ]
    if rep["tests"]:
        out += [
            "",
            f"Paired DeLong tests ({_ALT_NAMES[rep['alternative']]}; diff = AUROC1 - AUROC2; "
            "two-sided CI)",
            _table(
                ["score1", "score2", "diff", f"{pct} CI of diff", "Z", "p"],
                [
                    [
                        r["name1"],
                        r["name2"],
                        _f(r["diff"], digits),
                        f"{_f(r['ci_low'], digits)} - {_f(r['ci_high'], digits)}",
                        f"{r['z']:.3f}",
                        _p(r["p"], digits),
                    ]
                    for r in rep["tests"]
                ],
            ),
        ]
    return "\n".join(out)


def format_metrics(rep: dict, digits: int = 3) -> str:
    """The metrics report as a plain-text table."""
    pct = f"{rep['level'] * 100:g}%"
    head = (
        f"{rep['source']}: TP {rep['tp']}, FP {rep['fp']}, TN {rep['tn']}, FN {rep['fn']} "
        f"(CI: {_CI_NAMES[rep['ci']]} for proportions, Fleiss-Cohen-Everitt for kappa, "
        "Newcombe MOVER for Youden)"
    )
    rows = []
    for name, v in rep["metrics"].items():
        ci = "" if v["low"] is None else f"{_f(v['low'], digits)} - {_f(v['high'], digits)}"
        rows.append([name, _f(v["value"], digits), ci])
    return head + "\n\n" + _table(["metric", "value", f"{pct} CI"], rows)


# ----------------------------------------------------------------------------- run


def _json_safe(obj):
    """Infinite floats (z of a zero-variance difference) as the strings "inf" / "-inf"."""
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, float) and math.isinf(obj):
        return "inf" if obj > 0 else "-inf"
    return obj


def run(args: argparse.Namespace) -> int:
    """Run `thyrovid stats auc|metrics`; print the report to stdout. Returns the exit code."""
    if args.stats_command == "auc":
        rep = auc_report(
            args.csv, args.truth, args.positive, args.score, args.level, args.alternative,
            args.auc_ci, negative=args.negative,
        )  # fmt: skip
        text = format_auc(rep, args.digits)
    elif args.stats_command == "auc-ci":
        rep = auc_ci_report(args.auc, args.n, args.n_pos, args.method, args.level)
        d = args.digits
        text = (
            f"AUROC {_f(rep['auc'], d)}, N = {rep['n']}: {rep['level'] * 100:g}% CI "
            f"{_f(rep['low'], d)} - {_f(rep['high'], d)} ({AUC_CI_NAMES[rep['method']]})"
        )
    else:
        rep = metrics_report(
            args.tp,
            args.fp,
            args.tn,
            args.fn,
            csv=args.csv,
            truth=args.truth,
            positive=args.positive,
            pred=args.pred,
            pred_positive=args.pred_positive,
            threshold=args.threshold,
            ci=args.ci,
            level=args.level,
            negative=args.negative,
        )
        text = format_metrics(rep, args.digits)
    if args.json:
        json.dump(_json_safe(rep), sys.stdout, indent=2, allow_nan=False)
        sys.stdout.write("\n")
    else:
        print(text)
    return 0
