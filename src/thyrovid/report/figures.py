"""Figures of the paper, readable in print and by colour-blind readers.

- ``roc_figure``: ROC curves of several models on one plot, AUROC (95% CI) in the legend
  (the paper's Figs. 3-5). Curves differ in colour (Okabe-Ito) AND line style.
- ``delong_figure``: pairwise AUROC differences and DeLong p-values as a matrix (Fig. 6).
- ``confusion_figure``: 2x2 confusion matrices, one panel per model or split (Fig. 8).

Each function writes ``base``.png (150 dpi) and ``base``.svg atomically and returns both paths.
Matplotlib runs headless (Agg).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from thyrovid.atomic import atomic_path  # noqa: E402

# Okabe & Ito (2008), ordered for contrast on white paper; their yellow is left out (too faint
# in print). 7 colours x 8 line styles (coprime counts): the first 56 curves all differ in both.
OKABE_ITO = (
    "#0072B2",  # blue
    "#D55E00",  # vermillion
    "#009E73",  # bluish green
    "#CC79A7",  # reddish purple
    "#E69F00",  # orange
    "#56B4E9",  # sky blue
    "#000000",  # black
)
LINE_STYLES = (
    "-",
    "--",
    "-.",
    ":",
    (0, (5, 1, 1, 1, 1, 1)),
    (0, (8, 2)),
    (0, (1, 1)),
    (0, (3, 1, 1, 1)),
)


@dataclass(frozen=True)
class RocCurve:
    """One model's ROC input. truth: (n,) 0/1 (1 = malignant); score: (n,) P(malignant)."""

    name: str
    truth: np.ndarray
    score: np.ndarray
    auc: float
    low: float | None = None
    high: float | None = None


def roc_points(truth: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Empirical ROC: (fpr, tpr) over all thresholds "positive if score >= t", from (0,0) to (1,1)."""
    truth = np.asarray(truth).astype(bool)
    score = np.asarray(score, dtype=np.float64)
    order = np.argsort(-score, kind="mergesort")
    s, t = score[order], truth[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1]
    tp = np.cumsum(t)[last_of_tie]
    fp = np.cumsum(~t)[last_of_tie]
    n_pos, n_neg = max(int(t.sum()), 1), max(int((~t).sum()), 1)
    return np.r_[0.0, fp / n_neg], np.r_[0.0, tp / n_pos]


def _save(fig, base: str | os.PathLike) -> list[Path]:
    base = Path(base)
    paths = []
    for ext in (".png", ".svg"):
        out = base.with_suffix(ext)
        with atomic_path(out) as tmp:
            fig.savefig(tmp, format=ext[1:], dpi=150)
        paths.append(out)
    plt.close(fig)
    return paths


def _style(i: int) -> dict:
    return {"color": OKABE_ITO[i % len(OKABE_ITO)], "linestyle": LINE_STYLES[i % len(LINE_STYLES)]}


def roc_figure(curves: Sequence[RocCurve], base: str | os.PathLike, title: str = "") -> list[Path]:
    """ROC curves of all models on one square plot; legend "name: AUROC 0.933 (0.893-0.973)"."""
    fig, ax = plt.subplots(figsize=(6.0, 6.6 + 0.2 * len(curves)), layout="constrained")
    ax.plot([0, 1], [0, 1], color="#999999", linewidth=0.8, linestyle=(0, (2, 2)), label="chance")
    for i, c in enumerate(curves):
        fpr, tpr = roc_points(c.truth, c.score)
        label = f"{c.name}: AUROC {c.auc:.3f}"
        if c.low is not None and c.high is not None:
            label += f" ({c.low:.3f}-{c.high:.3f})"
        ax.step(fpr, tpr, where="post", linewidth=2.0, label=label, **_style(i))
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_aspect("equal")
    ax.set_xlabel("1 - Specificity (false-positive rate)", fontsize=11)
    ax.set_ylabel("Sensitivity (true-positive rate)", fontsize=11)
    ax.grid(True, color="#dddddd", linewidth=0.6)
    if title:
        ax.set_title(title, fontsize=12)
    # below the axes, so the legend never hides a curve
    fig.legend(
        loc="outside lower center",
        fontsize=9,
        frameon=False,
        title="model: AUROC (95% CI)",
        title_fontsize=9,
    )
    return _save(fig, base)


def delong_figure(
    names: Sequence[str],
    diff: np.ndarray,
    p: np.ndarray,
    base: str | os.PathLike,
    title: str = "",
) -> list[Path]:
    """Matrix of AUROC differences (row minus column) with DeLong p-values in each cell.

    Args:
        names: k model names.
        diff: (k, k) AUROC(row) - AUROC(column); the diagonal is ignored.
        p: (k, k) two-sided DeLong p-values (symmetric).
        base: output path without suffix.
    """
    k = len(names)
    diff = np.asarray(diff, dtype=float)
    shown = diff.copy()
    np.fill_diagonal(shown, np.nan)
    limit = max(float(np.nanmax(np.abs(shown))) if k > 1 else 0.0, 0.05)
    size = max(4.0, 1.1 * k + 2.0)
    fig, ax = plt.subplots(figsize=(size + 1.2, size), layout="constrained")
    cmap = matplotlib.colormaps["PuOr_r"].with_extremes(bad="#f2f2f2")
    im = ax.imshow(np.ma.masked_invalid(shown), cmap=cmap, vmin=-limit, vmax=limit)
    for i in range(k):
        for j in range(k):
            if i == j:
                ax.text(j, i, "-", ha="center", va="center", fontsize=10)
                continue
            strong = abs(shown[i, j]) > 0.6 * limit
            star = "*" if p[i, j] < 0.05 else ""
            text = f"{shown[i, j]:+.3f}\np{_p_text(p[i, j])}{star}"
            ax.text(j, i, text, ha="center", va="center", fontsize=8.5,
                    color="white" if strong else "black",
                    fontweight="bold" if star else "normal")  # fmt: skip
    ax.set_xticks(range(k), names, rotation=35, ha="right", fontsize=9)
    ax.set_yticks(range(k), names, fontsize=9)
    ax.set_xlabel("model (column)", fontsize=10)
    ax.set_ylabel("model (row)", fontsize=10)
    bar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    bar.set_label("AUROC difference (row - column)", fontsize=9)
    ax.set_title(title or "DeLong test: AUROC difference and p-value (* p < 0.05)", fontsize=11)
    return _save(fig, base)


def _p_text(p: float) -> str:
    return "<0.001" if p < 0.001 else f"={p:.3f}"


def confusion_figure(
    panels: Sequence[tuple[str, int, int, int, int]],
    base: str | os.PathLike,
    title: str = "",
) -> list[Path]:
    """2x2 confusion matrices, one panel per entry ``(name, tp, fp, tn, fn)``.

    Rows are the truth (benign, malignant), columns the prediction; each cell shows the count
    and the row percentage. Greys, so it prints on any printer.
    """
    n = len(panels)
    cols = min(n, 3)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(
        rows, cols, figsize=(3.6 * cols, 3.4 * rows + 0.4), squeeze=False, layout="constrained"
    )
    for ax, (name, tp, fp, tn, fn) in zip(axes.ravel(), panels):
        m = np.array([[tn, fp], [fn, tp]], dtype=float)
        row_sum = np.maximum(m.sum(axis=1, keepdims=True), 1)
        frac = m / row_sum
        ax.imshow(frac, cmap="Greys", vmin=0, vmax=1)
        for i in range(2):
            for j in range(2):
                ax.text(j, i, f"{int(m[i, j])}\n({100 * frac[i, j]:.1f}%)", ha="center", va="center",
                        fontsize=11, color="white" if frac[i, j] > 0.55 else "black")  # fmt: skip
        ax.set_xticks([0, 1], ["benign", "malignant"])
        ax.set_yticks([0, 1], ["benign", "malignant"])
        ax.set_xlabel("predicted", fontsize=10)
        ax.set_ylabel("pathology (truth)", fontsize=10)
        ax.set_title(name, fontsize=10)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=12)
    return _save(fig, base)
