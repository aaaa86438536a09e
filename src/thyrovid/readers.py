"""`thyrovid readers`: the reader study (the paper's Table 4 and Fig. 7) and its MRMC analysis.

Input is readers.csv (reader, group, case, modality, truth, score, decision; see
ARCHITECTURE.md): every reader reads every case in both modalities. Outputs:

* Table 4: per reader and modality the AUROC with its DeLong CI and ACC/SEN/SPE/PPV/NPV/F1/kappa
  with CIs (from the decision column, or score >= --threshold), plus the model's row when a
  run folder is given (its patient-level probabilities on --split);
* per reader, reference vs test modality: paired DeLong test of AUROC and McNemar test of
  accuracy; the mean accuracy gain per group (the paper reports the mean relative gain);
* the Obuchowski-Rockette MRMC analysis of the reader AUROCs with jackknife and DeLong
  covariances (random readers & cases with Hillis's ddf, fixed readers, fixed cases);
* Fig. 7: the model's ROC curve with each reader's operating points.

Modalities: any two labels; "unaided"/"aided" make aided the test modality, otherwise the
second label met in the file is. Differences are test minus reference.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from thyrovid.errors import UserError
from thyrovid.report import atomic_path, write_text_atomic
from thyrovid.stats.mrmc import mrmc

HELP = "reader study: Table 4, aided vs unaided, MRMC analysis"
METRICS = ("accuracy", "sensitivity", "specificity", "ppv", "npv", "f1", "kappa")
# Okabe-Ito colour-blind-safe palette (yellow left out: it vanishes on white).
COLOURS = ("#E69F00", "#56B4E9", "#009E73", "#0072B2", "#D55E00", "#CC79A7", "#999999")


# ----------------------------------------------------------------------------- input


def _row_error(path: Path, idx: int, df: pd.DataFrame, cause: str) -> UserError:
    who = f"reader {df.at[idx, 'reader']!s}, case {df.at[idx, 'case']!s}"
    return UserError(f"{path}: line {idx + 2} ({who}): {cause}")


def _binary_column(path: Path, df: pd.DataFrame, col: str) -> pd.Series:
    mapped = df[col].astype(str).str.strip().str.lower()
    mapped = mapped.replace({"malignant": "1", "benign": "0", "1.0": "1", "0.0": "0"})
    bad = ~mapped.isin(["0", "1"])
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise _row_error(path, df.index[i], df, f"{col} {df[col].iloc[i]!r} is not 0 or 1")
    return mapped.astype(int)


def load_readers(readers_csv, score_col: str = "score") -> tuple[pd.DataFrame, str, str]:
    """Read and validate readers.csv.

    Returns:
        (frame with columns reader, group, case, modality, truth (int 0/1), score (float),
        decision (int 0/1 or absent), reference modality, test modality).

    Raises:
        UserError: one line naming the file, line, reader or case at fault.
    """
    path = Path(readers_csv)
    try:
        df = pd.read_csv(path, dtype={"reader": str, "case": str, "modality": str, "group": str})
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise UserError(f"{path}: cannot read readers.csv ({exc})") from None
    need = ["reader", "case", "modality", "truth", score_col]
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise UserError(f"{path}: missing column(s) {missing}; need {need} (+ group, decision)")
    df = df.reset_index(drop=True)
    for col in ("reader", "case", "modality"):
        empty = df[col].isna() | (df[col].astype(str).str.strip() == "")
        if empty.any():
            raise UserError(f"{path}: line {int(np.flatnonzero(empty)[0]) + 2}: empty {col}")
    df["truth"] = _binary_column(path, df, "truth")
    score = pd.to_numeric(df[score_col], errors="coerce")
    bad = score.isna() | ~np.isfinite(score)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise _row_error(path, i, df, f"{score_col} {df[score_col].iloc[i]!r} is not a number")
    df["score"] = score.astype(float)
    if "decision" in df.columns:
        df["decision"] = _binary_column(path, df, "decision")
    df["group"] = df["group"].fillna("").astype(str) if "group" in df.columns else ""
    _check_design(path, df)
    mods = list(pd.unique(df["modality"]))
    ref, test = ("unaided", "aided") if set(mods) == {"unaided", "aided"} else mods
    keep = ["reader", "group", "case", "modality", "truth", "score"]
    return df[keep + (["decision"] if "decision" in df.columns else [])], ref, test


def _check_design(path: Path, df: pd.DataFrame) -> None:
    """Two modalities, one truth per case, one group per reader, a fully crossed design."""
    mods = list(pd.unique(df["modality"]))
    if len(mods) != 2:
        raise UserError(
            f"{path}: found {len(mods)} modality label(s) {mods}; a reader study needs exactly "
            "two (e.g. unaided and aided)"
        )
    dup = df.duplicated(["reader", "case", "modality"])
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        raise _row_error(path, i, df, f"a second reading in modality {df.at[i, 'modality']!r}")
    truths = df.groupby("case")["truth"].nunique()
    if (truths > 1).any():
        case = truths.index[truths > 1][0]
        raise UserError(f"{path}: case {case} has two different truths (0 and 1)")
    groups = df.groupby("reader")["group"].nunique()
    if (groups > 1).any():
        raise UserError(f"{path}: reader {groups.index[groups > 1][0]} is in two groups")
    cases = pd.unique(df["case"])
    have = set(zip(df["reader"], df["case"], df["modality"]))
    for reader in pd.unique(df["reader"]):
        for mod in mods:
            for case in cases:
                if (reader, case, mod) not in have:
                    raise UserError(
                        f"{path}: reader {reader} has no {mod!r} reading of case {case} "
                        "(every reader must read every case in both modalities)"
                    )
    if df["truth"].nunique() < 2:
        raise UserError(f"{path}: all cases have truth {df['truth'].iloc[0]}; need both classes")


def load_model_predictions(run_dir, split: str, cases: pd.Series, truth=None) -> pd.Series:
    """The model's patient-level P(malignant) for the given cases, from RUN/predictions.csv.

    Args:
        run_dir: run folder with predictions.csv (level, id, split, label, prob).
        split: which split's patient rows to use.
        cases: (n,) case ids from readers.csv (matched to predictions' id).
        truth: optional (n,) 0/1 truth of those cases; a different label is an error.

    Returns:
        Series case -> prob, in the order of `cases`.
    """
    path = Path(run_dir) / "predictions.csv"
    if not path.is_file():
        raise UserError(f"{path}: not found; run `thyrovid evaluate` on the run first")
    pred = pd.read_csv(path, dtype={"id": str, "split": str, "level": str})
    rows = pred[(pred["level"] == "patient") & (pred["split"] == split)]
    rows = rows.drop_duplicates("id").set_index("id")
    prob = rows["prob"].astype(float)
    absent = [c for c in cases if c not in prob.index]
    if absent:
        raise UserError(
            f"{path}: no patient-level {split!r} prediction for case {absent[0]} "
            f"({len(absent)} of {len(cases)} cases missing)"
        )
    if truth is not None and "label" in rows.columns:
        label = rows.loc[list(cases), "label"].astype(int).to_numpy()
        wrong = np.flatnonzero(label != np.asarray(truth))
        if wrong.size:
            case = cases.iloc[wrong[0]]
            raise UserError(
                f"{path}: case {case} has label {label[wrong[0]]} here but a "
                "different truth in readers.csv"
            )
    return prob.loc[list(cases)]


def model_threshold(run_dir, split: str) -> tuple[float, str]:
    """The decision threshold stored in RUN/metrics.json (patient level), else 0.5."""
    path = Path(run_dir) / "metrics.json"
    found: list[tuple[int, float, str]] = []

    def walk(node, trail):
        if isinstance(node, dict):
            for key, val in node.items():
                if key == "threshold" and isinstance(val, (int, float)):
                    rank = ("patient" in trail) * 2 + (split in trail)
                    found.append((rank, float(val), "/".join([*trail, key])))
                else:
                    walk(val, [*trail, str(key)])

    if path.is_file():
        try:
            walk(json.loads(path.read_text()), [])
        except json.JSONDecodeError:
            pass
    if not found:
        return 0.5, "default 0.5 (no threshold in metrics.json)"
    rank, value, where = max(found, key=lambda x: x[0])
    return value, f"metrics.json {where}"


# ----------------------------------------------------------------------------- statistics


def metrics_row(label: str, truth, score, decision, ci: str = "wilson", level: float = 0.95):
    """One Table 4 row: AUROC with DeLong CI and the binary metrics with CIs.

    Args:
        label: row label, e.g. "JR1 unaided".
        truth: (n,) 0/1; score: (n,) rating/probability; decision: (n,) 0/1 or None.

    Returns:
        dict row, n, auroc, auroc_low, auroc_high, then METRICS with _low/_high (NaN when no
        decision or the metric is undefined).
    """
    from thyrovid.stats.proportions import binary_metrics, confusion
    from thyrovid.stats.roc import auc_ci

    auc, lo, hi = auc_ci(truth, score, level)
    row = {"row": label, "n": int(len(truth)), "auroc": auc, "auroc_low": lo, "auroc_high": hi}
    bm = (
        binary_metrics(*confusion(truth, decision), ci=ci, level=level)
        if decision is not None
        else {}
    )
    for name in METRICS:
        entry = bm.get(name, {})
        for suffix, key in (("", "value"), ("_low", "low"), ("_high", "high")):
            val = entry.get(key)
            row[name + suffix] = math.nan if val is None else float(val)
    return row


def paired_comparisons(df: pd.DataFrame, ref: str, test: str, level: float = 0.95) -> list[dict]:
    """Per reader, test vs reference modality: paired DeLong (AUROC) and McNemar (accuracy)."""
    from thyrovid.stats.agreement import mcnemar
    from thyrovid.stats.roc import delong_test

    out = []
    for reader, g in df.groupby("reader", sort=False):
        a = g[g["modality"] == ref].set_index("case").sort_index()
        b = g[g["modality"] == test].set_index("case").loc[a.index]
        truth = a["truth"].to_numpy()
        dl = delong_test(truth, b["score"].to_numpy(), a["score"].to_numpy(), level=level)
        row = {
            "reader": reader,
            "group": str(a["group"].iloc[0]),
            f"auroc_{ref}": dl["auc2"],
            f"auroc_{test}": dl["auc1"],
            "auroc_diff": dl["diff"],
            "auroc_diff_low": dl["ci_low"],
            "auroc_diff_high": dl["ci_high"],
            "delong_z": dl["z"],
            "delong_p": dl["p"],
        }
        if "decision" in a.columns:
            acc_a = float((a["decision"] == truth).mean())
            acc_b = float((b["decision"].to_numpy() == truth).mean())
            mc = mcnemar(a["decision"].to_numpy(), b["decision"].to_numpy(), truth=truth)
            row.update(
                {
                    f"accuracy_{ref}": acc_a,
                    f"accuracy_{test}": acc_b,
                    "accuracy_gain": acc_b - acc_a,
                    "relative_gain": (acc_b - acc_a) / acc_a if acc_a > 0 else math.nan,
                    "mcnemar_statistic": float(mc["statistic"]),
                    "mcnemar_p": float(mc["p"]),
                    "mcnemar_b": int(mc["b"]),
                    "mcnemar_c": int(mc["c"]),
                }
            )
        out.append(row)
    return out


def group_gains(comparisons: list[dict]) -> dict:
    """Mean accuracy gain per reader group: absolute (proportion) and relative, as the paper.

    The paper's "junior radiologists' accuracy increased by 16.87%" is the mean over readers
    of (aided - unaided) / unaided accuracy.
    """
    out = {}
    rows = [c for c in comparisons if "accuracy_gain" in c]
    for group in dict.fromkeys(c["group"] or "all" for c in rows):
        sel = [c for c in rows if (c["group"] or "all") == group]
        out[group] = {
            "n_readers": len(sel),
            "mean_accuracy_gain": float(np.mean([c["accuracy_gain"] for c in sel])),
            "mean_relative_gain": float(np.mean([c["relative_gain"] for c in sel])),
        }
    return out


def mrmc_analyses(df: pd.DataFrame, ref: str, test: str, level: float = 0.95) -> dict:
    """OR MRMC analysis of the reader scores with jackknife and with DeLong covariance."""
    readers = list(pd.unique(df["reader"]))
    if len(readers) < 2:
        return {"skipped": "MRMC needs at least two readers"}
    cases = sorted(pd.unique(df["case"]))
    wide = df.pivot_table(index=["modality", "reader"], columns="case", values="score")
    ratings = np.stack(
        [np.stack([wide.loc[(m, r), cases].to_numpy() for r in readers]) for m in (test, ref)]
    )
    truth = df.drop_duplicates("case").set_index("case")["truth"].loc[cases].to_numpy()
    return {
        method: mrmc(truth, ratings, method, [test, ref], readers, level)
        for method in ("jackknife", "delong")
    }


# ----------------------------------------------------------------------------- Table 4


def table4(df, ref, test, model=None, ci="wilson", level=0.95) -> pd.DataFrame:
    """The paper's Table 4: the model's row (if any), then each reader unaided and aided.

    Args:
        df: validated readers frame (see load_readers), with decision if available.
        model: None or (label, prob Series by case, threshold).

    Returns:
        DataFrame with row, reader, group, modality, n, auroc(+_low/_high), METRICS(+CIs).
    """
    rows = []
    if model is not None:
        label, prob, thr = model
        truth = df.drop_duplicates("case").set_index("case")["truth"].loc[prob.index]
        pred = (prob.to_numpy() >= thr).astype(int)
        rows.append(
            {"reader": "model", "group": "model", "modality": "model"}
            | metrics_row(label, truth.to_numpy(), prob.to_numpy(), pred, ci, level)
        )
    for reader, g in df.groupby("reader", sort=False):
        for mod in (ref, test):
            s = g[g["modality"] == mod]
            dec = s["decision"].to_numpy() if "decision" in s.columns else None
            rows.append(
                {"reader": reader, "group": str(s["group"].iloc[0]), "modality": mod}
                | metrics_row(
                    f"{reader} {mod}", s["truth"].to_numpy(), s["score"].to_numpy(), dec, ci, level
                )
            )
    cols = ["row", "reader", "group", "modality", "n", "auroc", "auroc_low", "auroc_high"]
    cols += [f"{m}{s}" for m in METRICS for s in ("", "_low", "_high")]
    return pd.DataFrame(rows)[cols]


def _fmt(v, lo=None, hi=None) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if lo is None or hi is None or math.isnan(lo) or math.isnan(hi):
        return f"{v:.3f}"
    return f"{v:.3f} ({lo:.3f}, {hi:.3f})"


def table4_markdown(table: pd.DataFrame, ci: str, level: float = 0.95) -> str:
    """Table 4 as Markdown in the paper's layout ("0.916 (0.881, 0.951)")."""
    pct = f"{level:.0%}"
    head = ["", f"AUROC ({pct} CI)", f"Accuracy ({pct} CI)", f"Sensitivity ({pct} CI)"]
    head += [f"Specificity ({pct} CI)", f"PPV ({pct} CI)", f"NPV ({pct} CI)", "F1", "Kappa"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, r in table.iterrows():
        cells = [str(r["row"]), _fmt(r["auroc"], r["auroc_low"], r["auroc_high"])]
        for m in ("accuracy", "sensitivity", "specificity", "ppv", "npv"):
            cells.append(_fmt(r[m], r[f"{m}_low"], r[f"{m}_high"]))
        cells += [_fmt(r["f1"]), _fmt(r["kappa"])]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        f"AUROC CIs: DeLong. Proportion CIs: {ci}. Kappa: Cohen's. Decisions from the "
        "readers' decision column (or score >= threshold); the model's from its threshold."
    )
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- Fig. 7


def _name(kind: str, label: str) -> str:
    """A bare number as a legend label reads badly: "1" -> "reader 1"."""
    return f"{kind} {label}" if str(label).isdigit() else str(label)


def plot_fig7(path, table: pd.DataFrame, ref: str, test: str, model_curve=None) -> None:
    """Fig. 7: model ROC curve with each reader's operating points, ref (square) -> test (triangle).

    Args:
        path: PNG file to write (atomically).
        table: Table 4 frame (sensitivity/specificity of each reader and modality).
        model_curve: None or (label, fpr array, tpr array).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 5.5), dpi=150)
    ax.plot([0, 1], [0, 1], ls=":", color="#999999", lw=1)
    if model_curve is not None:
        label, fpr, tpr = model_curve
        ax.plot(fpr, tpr, color="black", lw=2, label=label)
        m = table[table["reader"] == "model"]
        if len(m) and not math.isnan(m["sensitivity"].iloc[0]):
            ax.scatter(
                1 - m["specificity"].iloc[0],
                m["sensitivity"].iloc[0],
                marker="*",
                s=140,
                color="black",
                zorder=3,
                label=f"{label} at its threshold",
            )
    readers = [r for r in pd.unique(table["reader"]) if r != "model"]
    for i, reader in enumerate(readers):
        colour = COLOURS[i % len(COLOURS)]
        pts = {}
        for mod, marker in ((ref, "s"), (test, "^")):
            r = table[(table["reader"] == reader) & (table["modality"] == mod)].iloc[0]
            if math.isnan(r["sensitivity"]) or math.isnan(r["specificity"]):
                continue
            pts[mod] = (1 - r["specificity"], r["sensitivity"])
            ax.scatter(*pts[mod], marker=marker, s=60, color=colour, edgecolor="black", zorder=3)
        if len(pts) == 2:
            ax.annotate(
                "",
                xy=pts[test],
                xytext=pts[ref],
                arrowprops={
                    "arrowstyle": "->",
                    "color": colour,
                    "lw": 1.5,
                    "shrinkA": 5,
                    "shrinkB": 6,
                },
            )
        ax.plot([], [], color=colour, lw=6, label=_name("reader", reader))
    ax.scatter([], [], marker="s", color="white", edgecolor="black", label=_name("modality", ref))
    ax.scatter([], [], marker="^", color="white", edgecolor="black", label=_name("modality", test))
    ax.set(
        xlim=(-0.02, 1.02),
        ylim=(-0.02, 1.02),
        xlabel="1 - specificity (false-positive rate)",
        ylabel="Sensitivity (true-positive rate)",
        aspect="equal",
    )
    ax.set_title(
        f"Readers: {_name('modality', ref)} (square) -> {_name('modality', test)} (triangle)",
        fontsize=10,
    )
    ax.legend(loc="lower right", fontsize=8, frameon=True)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


# ----------------------------------------------------------------------------- orchestration


def _jsonable(obj):
    """Make a result JSON-safe: inf -> "inf", nan -> null, numpy scalars -> Python."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        x = float(obj)
        return (
            None if math.isnan(x) else ("inf" if x == math.inf else "-inf" if x == -math.inf else x)
        )
    return obj


def _model(df: pd.DataFrame, model_run, split: str):
    """The model's Table 4 input (label, probs, threshold), its description and ROC curve."""
    from thyrovid.stats.roc import roc_points

    cases = pd.Series(sorted(pd.unique(df["case"])))
    truth = df.drop_duplicates("case").set_index("case")["truth"].loc[cases].to_numpy()
    prob = load_model_predictions(model_run, split, cases, truth)
    thr, thr_source = model_threshold(model_run, split)
    label = f"Model ({Path(model_run).name})"
    info = {"run": str(model_run), "split": split, "threshold": thr, "threshold_source": thr_source}
    _, sens, spec = roc_points(truth, prob.to_numpy())
    return (label, prob, thr), info, (label, np.r_[0.0, 1 - spec], np.r_[0.0, sens])


def reader_study(
    readers_csv,
    model_run=None,
    split: str = "external",
    score_col: str = "score",
    threshold: float | None = None,
    out_dir=None,
    ci: str = "wilson",
    level: float = 0.95,
) -> dict:
    """Run the whole reader study; see the module docstring.

    Args:
        readers_csv: readers.csv path.
        model_run: run folder whose predictions.csv gives the model's row and ROC curve.
        split: split of the model's patient-level predictions to use.
        score_col: the column holding each reader's rating or probability.
        threshold: decisions are score >= threshold (overrides the decision column).
        out_dir: if given, writes table4.csv, table4.md, mrmc.json, fig7_readers.png.
        ci: proportion CI method ("wilson", "wald" = the paper's, "clopper-pearson").

    Returns:
        JSON-safe dict: design, table4 (list of rows), comparisons, group_gains, mrmc,
        model, outputs.
    """
    df, ref, test = load_readers(readers_csv, score_col)
    if threshold is not None:
        df["decision"] = (df["score"] >= threshold).astype(int)
    source = "decision column" if "decision" in df.columns else None
    if threshold is not None:
        source = f"score >= {threshold}"
    model, model_info, curve = (
        (None, None, None) if model_run is None else _model(df, model_run, split)
    )
    table = table4(df, ref, test, model, ci, level)
    comparisons = paired_comparisons(df, ref, test, level)
    result = {
        "readers_csv": str(readers_csv),
        "n_cases": int(df["case"].nunique()),
        "n_positive": int(df.drop_duplicates("case")["truth"].sum()),
        "readers": list(pd.unique(df["reader"])),
        "modalities": {"reference": ref, "test": test},
        "decision_source": source,
        "ci_method": ci,
        "model": model_info,
        "table4": table.to_dict(orient="records"),
        "comparisons": comparisons,
        "group_gains": group_gains(comparisons),
        "mrmc": mrmc_analyses(df, ref, test, level),
    }
    if out_dir is not None:
        out = Path(out_dir)
        files = {
            k: out / v
            for k, v in (
                ("table4_csv", "table4.csv"),
                ("table4_md", "table4.md"),
                ("mrmc_json", "mrmc.json"),
                ("fig7", "fig7_readers.png"),
            )
        }
        with atomic_path(files["table4_csv"]) as tmp:
            table.to_csv(tmp, index=False, float_format="%.6g")
        write_text_atomic(files["table4_md"], table4_markdown(table, ci, level))
        payload = {k: result[k] for k in ("modalities", "comparisons", "group_gains", "mrmc")}
        write_text_atomic(files["mrmc_json"], json.dumps(_jsonable(payload), indent=2) + "\n")
        plot_fig7(files["fig7"], table, ref, test, curve)
        result["outputs"] = {k: str(v) for k, v in files.items()}
    return _jsonable(result)


# ----------------------------------------------------------------------------- CLI


def add_arguments(parser) -> None:
    parser.add_argument(
        "readers_csv", metavar="READERS_CSV", help="readers.csv (see ARCHITECTURE.md)"
    )
    parser.add_argument(
        "--model", metavar="RUN", help="run folder: adds the model's row and ROC curve"
    )
    parser.add_argument(
        "--split", default="external", help="split of the model's predictions (default external)"
    )
    parser.add_argument(
        "--score-col", default="score", help="column with the readers' rating/probability"
    )
    parser.add_argument(
        "--threshold", type=float, help="decide positive when score >= T (overrides decision)"
    )
    parser.add_argument(
        "--ci",
        default="wilson",
        choices=("wilson", "wald", "clopper-pearson"),
        help="CI method for proportions (the paper used wald)",
    )
    parser.add_argument("--json", action="store_true", help="print the full result as JSON")
    parser.add_argument(
        "--out", metavar="DIR", help="write table4.csv/.md, mrmc.json, fig7_readers.png"
    )


def summary_text(result: dict) -> str:
    """Human-readable summary: Table 4, per-reader comparisons, group gains, MRMC."""
    mods = result["modalities"]
    lines = [table4_markdown(pd.DataFrame(result["table4"]), result["ci_method"])]
    if result["decision_source"] is None:
        lines.append("No decision column and no --threshold: binary metrics left out.\n")
    for c in result["comparisons"]:
        s = f"{c['reader']}: AUROC {mods['test']} - {mods['reference']} = {c['auroc_diff']:+.3f} (DeLong p = {c['delong_p']:.3g})"
        if "accuracy_gain" in c:
            s += f"; accuracy {c['accuracy_gain']:+.3f} (McNemar p = {c['mcnemar_p']:.3g})"
        lines.append(s)
    for group, g in result["group_gains"].items():
        lines.append(
            f"mean accuracy gain, {group}: {g['mean_accuracy_gain']:+.3f} "
            f"(relative {g['mean_relative_gain']:+.1%}, {g['n_readers']} readers)"
        )
    for method, m in result["mrmc"].items():
        if not isinstance(m, dict):
            continue
        d, r = m["rrrc"]["differences"][0], m["rrrc"]
        lines.append(
            f"MRMC OR ({method}) RRRC: {d['comparison']} = {d['estimate']:+.4f} "
            f"({d['ci_low']:+.4f}, {d['ci_high']:+.4f}), F(1, {float(r['ddf']):.2f}) = {r['f']:.3f}, p = {r['p']:.4f}; "
            f"FRRC p = {m['frrc']['p']:.4f}; RRFC p = {m['rrfc']['p']:.4f}"
        )
    return "\n".join(lines)


def run(args) -> int:
    result = reader_study(
        args.readers_csv,
        args.model,
        args.split,
        args.score_col,
        args.threshold,
        args.out,
        ci=args.ci,
    )
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(summary_text(result))
        if args.out:
            print(f"wrote {', '.join(result['outputs'].values())}")
    return 0
