"""Figures the report draws itself from a run folder (the others are the PNGs the stages wrote).

- ``training_curves``: loss and validation AUROC per epoch from RUN/log.csv.
- ``roc_and_reliability``: patient-level ROC per split (RUN/predictions.csv) next to the
  reliability diagram of each split (the calibration bins of RUN/metrics.json).

Each returns PNG bytes (matplotlib, Agg) or None when there is nothing to draw.
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from thyrovid.report.figures import LINE_STYLES, OKABE_ITO, roc_points  # noqa: E402

DPI = 110


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def _style(i: int) -> dict:
    return {"color": OKABE_ITO[i % len(OKABE_ITO)], "linestyle": LINE_STYLES[i % len(LINE_STYLES)]}


def training_curves(log: pd.DataFrame, kept_epoch: int | None = None) -> bytes | None:
    """Two panels: train/val loss and validation AUROC against the epoch.

    Args:
        log: RUN/log.csv rows (epoch, train_loss, val_loss, val_auroc, ...); empty cells allowed.
        kept_epoch: the epoch whose weights the run kept (config.yaml meta.selected_epoch),
            circled; None: the epoch of best validation AUROC (what `train` keeps by default).
            When the kept epoch is not the best, the best is marked with a cross.

    Returns:
        PNG bytes, or None without an epoch column or any loss/AUROC value.
    """
    if "epoch" not in log.columns or log.empty:
        return None
    cols = {c: pd.to_numeric(log[c], errors="coerce") for c in log.columns}
    epoch = cols["epoch"]
    have = [
        c for c in ("train_loss", "val_loss", "val_auroc") if c in cols and cols[c].notna().any()
    ]
    if not have:
        return None
    fig, (ax_loss, ax_auc) = plt.subplots(1, 2, figsize=(9.0, 3.4), layout="constrained")
    for i, name in enumerate(c for c in ("train_loss", "val_loss") if c in have):
        ok = cols[name].notna()
        ax_loss.plot(epoch[ok], cols[name][ok], marker="o", ms=3, label=name.replace("_", " "),
                     **_style(i))  # fmt: skip
    ax_loss.set(xlabel="epoch", ylabel="binary cross-entropy", title="Loss")
    if ax_loss.lines:
        ax_loss.legend(fontsize=8, frameon=False)
    if "val_auroc" in have:
        auc = cols["val_auroc"]
        ok = auc.notna()
        ax_auc.plot(epoch[ok], auc[ok], marker="o", ms=3, **_style(0))
        best = int(auc[ok].idxmax())
        at = epoch.index[(epoch == kept_epoch) & ok] if kept_epoch is not None else []
        kept = int(at[0]) if len(at) else best
        if kept != best:
            ax_auc.scatter([epoch[best]], [auc[best]], s=40, marker="x", color="black", zorder=3,
                           label=f"best: epoch {int(epoch[best])}, {auc[best]:.3f}")  # fmt: skip
        what = "best" if kept_epoch is None else "kept"
        ax_auc.scatter([epoch[kept]], [auc[kept]], s=70, facecolor="none", edgecolor="black",
                       zorder=3, label=f"{what}: epoch {int(epoch[kept])}, {auc[kept]:.3f}")  # fmt: skip
        ax_auc.legend(fontsize=8, frameon=False, loc="lower right")
        ax_auc.set_ylim(min(0.4, float(auc[ok].min()) - 0.02), 1.01)
    ax_auc.set(xlabel="epoch", ylabel="AUROC", title="Validation AUROC")
    for ax in (ax_loss, ax_auc):
        ax.grid(True, color="#dddddd", linewidth=0.6)
        ax.set_xlim(float(epoch.min()) - 0.5, float(epoch.max()) + 0.5)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    return _png(fig)


def roc_and_reliability(predictions: pd.DataFrame | None, metrics: dict | None) -> bytes | None:
    """Patient-level ROC curves per split and the reliability diagram per split.

    Args:
        predictions: RUN/predictions.csv (level, split, label, prob = P(malignant)) or None.
        metrics: RUN/metrics.json content or None (``splits[s]["patient"]["calibration"]["bins"]``).

    Returns:
        PNG bytes, or None when neither panel has data.
    """
    curves = []
    if predictions is not None and {"level", "split", "label", "prob"} <= set(predictions.columns):
        rows = predictions[predictions["level"].astype(str) == "patient"]
        for split in dict.fromkeys(rows["split"].astype(str)):
            s = rows[rows["split"].astype(str) == split]
            truth = pd.to_numeric(s["label"], errors="coerce")
            prob = pd.to_numeric(s["prob"], errors="coerce")
            ok = truth.notna() & prob.notna()
            if ok.any() and truth[ok].nunique() == 2:
                curves.append((split, truth[ok].to_numpy(int), prob[ok].to_numpy(float)))
    bins = {}
    for split, levels in ((metrics or {}).get("splits") or {}).items():
        cal = ((levels or {}).get("patient") or {}).get("calibration") or {}
        if cal.get("bins"):
            bins[split] = cal["bins"]
    if not curves and not bins:
        return None
    n_panels = int(bool(curves)) + int(bool(bins))
    fig, axes = plt.subplots(1, n_panels, figsize=(4.6 * n_panels, 4.3), layout="constrained",
                             squeeze=False)  # fmt: skip
    axes = list(axes[0])
    for ax in axes:
        ax.plot([0, 1], [0, 1], color="#999999", lw=0.8, ls=(0, (2, 2)))
        ax.set(xlim=(-0.01, 1.01), ylim=(-0.01, 1.01), aspect="equal")
        ax.grid(True, color="#dddddd", linewidth=0.6)
    splits = list(dict.fromkeys([c[0] for c in curves] + list(bins)))
    if curves:
        ax = axes.pop(0)
        for split, truth, prob in curves:
            fpr, tpr = roc_points(truth, prob)
            ax.step(fpr, tpr, where="post", lw=2, label=f"{split} (n = {truth.size})",
                    **_style(splits.index(split)))  # fmt: skip
        ax.set(xlabel="1 - specificity", ylabel="sensitivity", title="ROC, patient level")
        ax.legend(fontsize=8, frameon=False, loc="lower right")
    if bins:
        ax = axes.pop(0)
        for split, b in bins.items():
            x = np.array([e["mean_prob"] for e in b], float)
            y = np.array([e["frac_pos"] for e in b], float)
            n = np.array([e["n"] for e in b], float)
            st = _style(splits.index(split))
            ax.plot(x, y, color=st["color"], ls=st["linestyle"], lw=1.2)
            ax.scatter(x, y, s=12 + 60 * n / n.max(), color=st["color"], label=split, zorder=3)
        ax.set(xlabel="mean predicted P(malignant)", ylabel="observed fraction malignant",
               title="Reliability, patient level")  # fmt: skip
        ax.legend(fontsize=8, frameon=False, loc="lower right")
    return _png(fig)
