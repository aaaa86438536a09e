"""Reader-study Table 4 (per reader and modality, with CIs) and Fig. 7 (readers on the ROC).

``table4`` builds the table from a validated readers frame (see ``thyrovid.readers.inputs``),
``table4_markdown`` prints it in the paper's layout, ``plot_fig7`` draws the model's ROC curve
with each reader's operating points.
"""

from __future__ import annotations

import math

import pandas as pd

from thyrovid.atomic import atomic_path

METRICS = ("accuracy", "sensitivity", "specificity", "ppv", "npv", "f1", "kappa")
# Okabe-Ito colour-blind-safe palette (yellow left out: it vanishes on white).
COLOURS = ("#E69F00", "#56B4E9", "#009E73", "#0072B2", "#D55E00", "#CC79A7", "#999999")


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
