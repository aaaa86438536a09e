"""Report sections of the multi-run outputs: model comparison, reader study, Grad-CAM.

Each builder takes the folder a stage wrote (``thyrovid compare --out``, ``thyrovid readers
--out``, ``thyrovid cam --out``) and returns a `Section`, or None when it has nothing to show.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from thyrovid.report.html import (
    Section,
    ci,
    colour_bar,
    figure,
    heatmap_figure,
    limits_box,
    num,
    para,
    png_file,
    pval,
    table,
)
from thyrovid.report.sections import CAM_COLUMNS, CAM_TRUTH_COLUMNS, MAX_MONTAGES, _read, show

T4_METRICS = (("Accuracy", "accuracy"), ("Sensitivity", "sensitivity"),
              ("Specificity", "specificity"), ("PPV", "ppv"), ("NPV", "npv"))  # fmt: skip


def _pretty_split(name: str) -> str:
    return {"test": "internal test split", "external": "external test split"}.get(name, name)


# --------------------------------------------------------------------------- compare


def compare_section(folder: Path, key: str, base: Path, skipped: list[str]) -> Section | None:
    """Paper-layout table, DeLong pairs and the three figures of one compare folder."""
    parts = []
    shown = folder / "table_display.csv"  # the formatted table (older folders: table.csv)
    paper = _read(shown if shown.is_file() else folder / "table.csv", skipped,
                  lambda p: pd.read_csv(p, index_col=0, dtype=str, keep_default_na=False))  # fmt: skip
    if paper is not None:
        rows = [[idx, *row] for idx, row in zip(paper.index, paper.to_numpy().tolist())]
        parts.append(table([paper.index.name or "Metric", *paper.columns], rows,
                           caption="Table (paper layout; each model at its own threshold)"))  # fmt: skip
    pairs = _read(folder / "delong.csv", skipped, pd.read_csv)
    need = {"name1", "name2", "auc1", "auc2", "diff", "ci_low", "ci_high", "z", "p"}
    if pairs is not None and need <= set(pairs.columns) and len(pairs):
        rows = [[r.name1, r.name2, num(r.auc1), num(r.auc2), ci(r.diff, r.ci_low, r.ci_high),
                 num(r.z), pval(r.p)] for r in pairs.itertuples()]  # fmt: skip
        head = ["Model 1", "Model 2", "AUROC 1", "AUROC 2", "Difference (95% CI)", "z", "p"]
        parts.append(table(head, rows, caption="Paired DeLong tests"))
    for stem, caption in (
        ("roc", "ROC curves; AUROC (95% CI) in the legend."),
        ("delong", "AUROC difference (row minus column) and DeLong p; * p < 0.05."),
        ("confusion", "Confusion matrices at each model's threshold; rows are the truth."),
    ):
        parts.append(figure(png_file(folder / f"{stem}.png"), caption))
    parts = [p for p in parts if p]
    if not parts:
        return None
    how = ("Models side by side on the same patients. A DeLong p below 0.05 says two AUROCs "
           "differ more than chance would explain; overlapping CIs alone do not show that.")  # fmt: skip
    where = show(folder, base)
    title = f"Comparison: {_pretty_split(folder.name)}" + (
        f" ({where})" if where != folder.name else ""
    )
    return Section(key, title, how, parts, level=3)


# --------------------------------------------------------------------------- readers


def table4_html(t4: pd.DataFrame) -> str:
    head = ["", "Group", "n", "AUROC (95% CI)"] + [f"{a} (95% CI)" for a, _ in T4_METRICS]
    head += ["F1", "Kappa (95% CI)"]
    rows = []
    for r in t4.to_dict(orient="records"):
        g = r.get
        row = [g("row"), g("group"), g("n"), ci(g("auroc"), g("auroc_low"), g("auroc_high"))]
        row += [ci(g(k), g(f"{k}_low"), g(f"{k}_high")) for _, k in T4_METRICS]
        row += [num(g("f1")), ci(g("kappa"), g("kappa_low"), g("kappa_high"))]
        rows.append(row)
    return table(head, rows, caption="Table 4: model and readers, per modality", cls="wide")


def comparisons_html(comps: list[dict], ref: str, test: str) -> str:
    head = ["Reader", "Group", f"AUROC {ref}", f"AUROC {test}", "Difference (95% CI)",
            "DeLong p", f"Accuracy {ref}", f"Accuracy {test}", "Accuracy gain", "Relative gain",
            "McNemar p"]  # fmt: skip
    rows = []
    for c in comps:
        rel = c.get("relative_gain")
        rows.append([c.get("reader"), c.get("group") or "", num(c.get(f"auroc_{ref}")),
                     num(c.get(f"auroc_{test}")),
                     ci(c.get("auroc_diff"), c.get("auroc_diff_low"), c.get("auroc_diff_high")),
                     pval(c.get("delong_p")), num(c.get(f"accuracy_{ref}")),
                     num(c.get(f"accuracy_{test}")), num(c.get("accuracy_gain")),
                     "NA" if rel is None else f"{100 * rel:.2f}%", pval(c.get("mcnemar_p"))])  # fmt: skip
    return table(head, rows, caption=f"Each reader, {test} minus {ref}", cls="wide")


def mrmc_html(mrmc: dict) -> str:
    rows, singles = [], []
    names = {"rrrc": "random readers, random cases", "frrc": "fixed readers, random cases",
             "rrfc": "random readers, fixed cases"}  # fmt: skip
    for method, res in mrmc.items():
        if not isinstance(res, dict) or "rrrc" not in res:
            continue
        for kind, label in names.items():
            a = res.get(kind) or {}
            for d in a.get("differences") or []:
                rows.append([method, label, d.get("comparison"),
                             ci(d.get("estimate"), d.get("ci_low"), d.get("ci_high")),
                             num(a.get("f")), num(a.get("ddf"), 2), pval(d.get("p"))])  # fmt: skip
        for s in (res.get("rrrc") or {}).get("single") or []:
            singles.append(
                [method, s.get("modality"), ci(s.get("auc"), s.get("ci_low"), s.get("ci_high"))]
            )
    out = ""
    if rows:
        head = ["Covariance", "Analysis", "Comparison", "AUROC difference (95% CI)", "F",
                "Denominator df", "p"]  # fmt: skip
        out += table(head, rows, caption="Obuchowski-Rockette MRMC analysis")
    if singles:
        out += table(["Covariance", "Modality", "Mean reader AUROC (95% CI, RRRC)"], singles)
    return out


def readers_section(folder: Path, skipped: list[str]) -> Section | None:
    parts = []
    t4 = _read(
        folder / "table4.csv", skipped, lambda p: pd.read_csv(p, dtype={"row": str, "reader": str})
    )
    if t4 is not None and "row" in t4.columns:
        t4 = t4.replace({np.nan: None})
        parts.append(table4_html(t4))
    res = _read(folder / "mrmc.json", skipped, lambda p: json.loads(p.read_text())) or {}
    mods = res.get("modalities") or {}
    ref, test = mods.get("reference", "reference"), mods.get("test", "test")
    if res.get("comparisons"):
        parts.append(comparisons_html(res["comparisons"], ref, test))
    if res.get("group_gains"):
        rows = [[g, v.get("n_readers"), num(v.get("mean_accuracy_gain")),
                 f"{100 * v['mean_relative_gain']:.2f}%" if v.get("mean_relative_gain") is not None else "NA"]
                for g, v in res["group_gains"].items()]  # fmt: skip
        parts.append(table(["Group", "Readers", "Mean accuracy gain", "Mean relative gain"], rows,
                           caption=f"Accuracy gain per group ({test} vs {ref})"))  # fmt: skip
    if isinstance(res.get("mrmc"), dict):
        skip = res["mrmc"].get("skipped")
        parts.append(para(f"MRMC left out: {skip}") if skip else mrmc_html(res["mrmc"]))
    parts.append(figure(png_file(folder / "fig7_readers.png"),
                        f"Fig. 7: model ROC and each reader's operating point, {ref} (square) "
                        f"to {test} (triangle)."))  # fmt: skip
    parts = [p for p in parts if p]
    if not parts:
        return None
    how = (f"Each reader read every case {ref} and {test}. Gains are {test} minus {ref}; the "
           "MRMC analysis asks whether the mean reader AUROC changes, generalising to new readers "
           "and new cases (RRRC) or to these readers only (FRRC).")  # fmt: skip
    return Section("readers", "Reader study", how, parts)


# --------------------------------------------------------------------------- Grad-CAM


def _yes_no(hit: object) -> str:
    """Pointing-game outcome (1.0 / 0.0 / NaN) as yes / no / NA."""
    text = num(hit)
    return "NA" if text == "NA" else ("yes" if float(text) >= 0.5 else "no")


def _empty_map(row) -> str:
    """The warning of an all-zero map ("" when the map is not empty or cam.csv predates it)."""
    warning = row.warning if isinstance(row.warning, str) else ""
    if warning.strip():
        return warning.strip()
    peak = pd.to_numeric(pd.Series([row.cam_max]), errors="coerce").iloc[0]
    return "the heatmap is all zeros (cam_max 0): it shows nothing" if peak == 0 else ""


def cam_section(folder: Path, skipped: list[str]) -> Section | None:
    """Grad-CAM: cam.csv's table (phantom-only columns when filled), montages with colour bars,
    empty maps flagged in a limits box, the table and the caption."""
    cam = _read(folder / "cam.csv", skipped,
                lambda p: pd.read_csv(p, usecols=lambda c: c in CAM_COLUMNS, dtype={"clip_id": str}))  # fmt: skip
    if cam is None or "clip_id" not in cam.columns or cam.empty:
        return None
    cam = cam.reindex(columns=list(CAM_COLUMNS))
    truth_cols = [(c, h) for c, h in CAM_TRUTH_COLUMNS
                  if pd.to_numeric(cam[c], errors="coerce").notna().any()]  # fmt: skip
    empty = {r.clip_id: _empty_map(r) for r in cam.itertuples()}
    empty = {k: v.removeprefix(f"{k}: ") for k, v in empty.items() if v}  # cam's "<clip>: ..."
    parts = [limits_box([f"{clip}: {why}" for clip, why in empty.items()],
                        title="Empty heatmaps")]  # fmt: skip
    ratio = pd.to_numeric(cam["energy_ratio"], errors="coerce").dropna()
    hit = pd.to_numeric(cam["pointing_hit"], errors="coerce").dropna()
    if len(ratio):
        parts.append(para(f"{len(ratio)} clip(s) scored against the calcification masks: median "
                          f"energy ratio {num(ratio.median())} (1 = no better than a uniform map), "
                          f"pointing game {num(hit.mean()) if len(hit) else 'NA'} (share of clips "
                          "whose hottest voxel lies on a calcification).", cls="how"))  # fmt: skip
    label = {0: "benign", 1: "malignant"}
    cells = {"energy_in_mask": num, "mask_fraction": num, "energy_ratio": num,
             "pointing_hit": _yes_no}  # fmt: skip
    # the Map column needs cam.csv's cam_max (thyrovid >= the one that wrote it) or a flag
    checked = bool(empty) or pd.to_numeric(cam["cam_max"], errors="coerce").notna().any()
    rows = [[r.clip_id, label.get(r.label, r.label), num(r.prob)]
            + (["EMPTY (all zeros)" if r.clip_id in empty else "ok"] if checked else [])
            + [cells[c](getattr(r, c)) for c, _ in truth_cols] for r in cam.itertuples()]  # fmt: skip
    head = ["Clip", "Truth", "P(malignant)"] + (["Map"] if checked else [])
    head += [h for _, h in truth_cols]
    parts.append(table(head, rows))
    figs, root = [], folder.resolve()
    for r in cam.head(MAX_MONTAGES).itertuples():
        path = (folder / f"{r.clip_id}.png").resolve()
        if path.parent != root:  # an id like "../x" must not pull in other files
            continue
        cap = f"{r.clip_id}: {label.get(r.label, r.label)}, P(malignant) {num(r.prob)}" + (
            f", energy ratio {num(r.energy_ratio)}" if num(r.energy_ratio) != "NA" else ""
        )
        bar = colour_bar()
        if r.clip_id in empty:
            cap += f". EMPTY MAP: {empty[r.clip_id]}"
            bar = colour_bar(note="empty map: all 0")
        figs.append(heatmap_figure(png_file(path), cap, bar))
    if any(figs):
        parts.append('<div class="grid">' + "".join(figs) + "</div>")
    if len(cam) > MAX_MONTAGES:
        parts.append(para(f"Montages of the first {MAX_MONTAGES} of {len(cam)} clips shown."))
    how = ("Grad-CAM of the malignancy output (top row: frames; bottom: the map over them, "
           "coloured as the bar beside each: bright yellow = strongest evidence for malignancy "
           "in that clip (maps are scaled to the clip's maximum), dark = none).")  # fmt: skip
    if truth_cols:
        how += (" Energy ratio: share of the map on the calcifications divided by their share "
                "of the clip; above 1 means it looks at them (phantom truth only).")  # fmt: skip
    return Section("gradcam", "Grad-CAM", how, parts)
