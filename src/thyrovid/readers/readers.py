"""`thyrovid readers`: the reader study (the paper's Table 4 and Fig. 7) and its MRMC analysis.

Input is readers.csv (reader, group, case, modality, truth, score, decision; see
README.md): every reader reads every case in both modalities. Outputs:

* Table 4: per reader and modality the AUROC with its DeLong CI and ACC/SEN/SPE/PPV/NPV/F1/kappa
  with CIs (from the decision column, or score >= --threshold), plus the model's row when a
  run folder is given (its patient-level probabilities on --split);
* per reader, reference vs test modality: paired DeLong test of AUROC and McNemar test of
  accuracy; the mean accuracy gain per group (the paper reports the mean relative gain);
* the Obuchowski-Rockette MRMC analysis of the reader AUROCs with jackknife and DeLong
  covariances (random readers & cases with Hillis's ddf, fixed readers, fixed cases);
* Fig. 7: the model's ROC curve with each reader's operating points.

Modalities: any two labels; "unaided"/"aided" (any case; also "unassisted"/"assisted",
"without AI"/"with AI") make the aided one the test modality, otherwise the second label met in
the file is. Differences are test minus reference.

This module holds the statistics, the orchestration (`reader_study`) and the CLI; readers.csv
and the model's predictions are read in `thyrovid.readers.inputs`, the model's threshold by
`thyrovid.runs.require_threshold` (a model run without one is an error, never a made-up 0.5),
Table 4 and Fig. 7 are built in `thyrovid.readers.table4`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from thyrovid.atomic import atomic_path, write_text_atomic
from thyrovid.readers.inputs import load_model_predictions, load_readers
from thyrovid.readers.table4 import plot_fig7, table4, table4_markdown
from thyrovid.reliability import emit, from_json, to_json
from thyrovid.runs import require_threshold
from thyrovid.stats.mrmc import mrmc
from thyrovid.stats.proportions import METHODS as CI_METHODS

# ----------------------------------------------------------------------------- statistics


def paired_comparisons(df: pd.DataFrame, ref: str, test: str, level: float = 0.95) -> list[dict]:
    """Per reader, test vs reference modality: paired DeLong (AUROC) and McNemar (accuracy)."""
    from thyrovid.stats.agreement import mcnemar
    from thyrovid.stats.auc_compare import delong_test

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


# ----------------------------------------------------------------------------- reliability


def _table4_cautions(table: pd.DataFrame) -> list:
    """Clip each Table 4 CI to its metric's range, in place; the cautions say which."""
    from thyrovid.readers.table4 import METRICS
    from thyrovid.reliability import clip_interval

    out = []
    for i in table.index:
        for metric in ("auroc", *METRICS):
            if f"{metric}_low" not in table.columns:
                continue
            entry = {k: table.at[i, c] for k, c in
                     (("value", metric), ("low", f"{metric}_low"), ("high", f"{metric}_high"))}  # fmt: skip
            found = clip_interval(entry, metric, f"Table 4, {table.at[i, 'row']}, {metric}")
            if found:
                table.at[i, f"{metric}_low"], table.at[i, f"{metric}_high"] = (
                    entry["low"],
                    entry["high"],
                )
                out += found
    return out


def _mrmc_cautions(analyses: dict) -> list:
    """Clip the mean-reader AUROC CIs of each MRMC analysis to [0, 1], in place."""
    from thyrovid.reliability import clip_interval

    out = []
    for method, m in analyses.items():
        if not isinstance(m, dict):
            continue
        for design in ("rrrc", "frrc", "rrfc"):
            for single in (m.get(design) or {}).get("single", []):
                entry = {"value": single["auc"], "low": single["ci_low"], "high": single["ci_high"]}
                where = f"MRMC {method} {design.upper()}, mean-reader AUROC {single['modality']}"
                found = clip_interval(entry, "auroc", where)
                if found:
                    single["ci_low"], single["ci_high"] = entry["low"], entry["high"]
                    single["clipped"] = entry["clipped"]
                    out += found
    return out


def study_cautions(df: pd.DataFrame, table: pd.DataFrame, analyses: dict) -> list:
    """Every caution of a reader study: the cases per class, clipped Table 4 and MRMC CIs."""
    from thyrovid.reliability import few_for_auroc

    cases = df.drop_duplicates("case")
    n_pos = int(cases["truth"].sum())
    out = few_for_auroc(n_pos, len(cases) - n_pos, "reader study", "cases")
    return out + _table4_cautions(table) + _mrmc_cautions(analyses)


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
    thr, thr_source = require_threshold(model_run)
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
        model, warnings (`thyrovid.reliability`: too few cases of a class, CIs clipped to their
        range, e.g. kappa <= 1, a mean-reader AUROC <= 1), outputs.
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
    analyses = mrmc_analyses(df, ref, test, level)
    cautions = study_cautions(df, table, analyses)
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
        "mrmc": analyses,
        "warnings": to_json(cautions),
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
        keys = ("modalities", "comparisons", "group_gains", "mrmc", "warnings")
        payload = {k: result[k] for k in keys}
        write_text_atomic(files["mrmc_json"], json.dumps(_jsonable(payload), indent=2) + "\n")
        plot_fig7(files["fig7"], table, ref, test, curve)
        result["outputs"] = {k: str(v) for k, v in files.items()}
    return _jsonable(result)


# ----------------------------------------------------------------------------- CLI


def add_arguments(parser) -> None:
    parser.add_argument(
        "readers_csv",
        metavar="READERS_CSV",
        help="readers.csv (columns: README.md, 'Your own data')",
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
        choices=CI_METHODS,
        help="CI method for proportions (the paper used wald)",
    )
    parser.add_argument("--json", action="store_true", help="print the full result as JSON")
    parser.add_argument(
        "--out", metavar="DIR", help="write table4.csv/.md, mrmc.json, fig7_readers.png"
    )


def _num(value, spec: str) -> str:
    """A JSON-safe number for the summary: None (undefined) -> "n/a", "inf" kept, huge -> inf."""
    if value is None:
        return "n/a"
    x = float(value)
    if math.isinf(x) or abs(x) > 1e12:  # Hillis ddf of a zero interaction: effectively infinite
        return "inf" if x > 0 else "-inf"
    return format(x, spec)


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
            lines.append(f"MRMC analysis skipped: {m}")
            continue
        d, r = m["rrrc"]["differences"][0], m["rrrc"]
        lines.append(
            f"MRMC OR ({method}) RRRC: {d['comparison']} = {_num(d['estimate'], '+.4f')} "
            f"({_num(d['ci_low'], '+.4f')}, {_num(d['ci_high'], '+.4f')}), "
            f"F(1, {_num(r['ddf'], '.2f')}) = {_num(r['f'], '.3f')}, p = {_num(r['p'], '.4f')}; "
            f"FRRC p = {_num(m['frrc']['p'], '.4f')}; RRFC p = {_num(m['rrfc']['p'], '.4f')}"
        )
        if r["p"] is None:
            lines.append(
                f"  (MRMC {method}: F test undefined (0/0): the AUROCs vary neither between "
                "readers and modalities nor over cases, e.g. every score is the same)"
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
    emit(from_json(result["warnings"]))
    return 0
