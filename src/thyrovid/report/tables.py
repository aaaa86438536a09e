"""Metric tables in the paper's layout (Tables 2 and 3): rows = metrics, columns = models.

A metric block is the dict ``thyrovid evaluate`` writes per split and level into metrics.json:
``block["auroc"]``, ``block["accuracy"]``, ... each ``{"value", "low", "high"}`` (low/high may be
None), plus ``n``, ``n_pos``, ``threshold``, ``brier``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from thyrovid.atomic import write_text_atomic

# (row label, metric key, show the CI). The paper prints F1 and kappa without a CI.
PAPER_ROWS: tuple[tuple[str, str, bool], ...] = (
    ("AUROC (95% CI)", "auroc", True),
    ("Accuracy (95% CI)", "accuracy", True),
    ("Sensitivity (95% CI)", "sensitivity", True),
    ("Specificity (95% CI)", "specificity", True),
    ("PPV (95% CI)", "ppv", True),
    ("NPV (95% CI)", "npv", True),
    ("F1", "f1", False),
    ("Kappa", "kappa", False),
)


def _number(x: float | None, digits: int) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "NA"
    return f"{x:.{digits}f}"


def format_ci(entry: Mapping | None, digits: int = 3, with_ci: bool = True) -> str:
    """Format ``{"value", "low", "high"}`` as the paper does: ``0.933 (0.893, 0.973)``.

    Missing values print as ``NA``; the interval is left out when it is undefined.
    """
    if entry is None:
        return "NA"
    text = _number(entry.get("value"), digits)
    low, high = entry.get("low"), entry.get("high")
    if with_ci and low is not None and high is not None:
        text += f" ({_number(low, digits)}, {_number(high, digits)})"
    return text


def paper_table(blocks: Mapping[str, Mapping], digits: int = 3) -> pd.DataFrame:
    """One column per model, one row per metric, cells formatted as in the paper.

    Args:
        blocks: model name -> metric block (see the module docstring); insertion order is kept.
        digits: decimals.

    Returns:
        DataFrame of str, index named "Metric" (the row labels of ``PAPER_ROWS``).
    """
    data = {
        name: [format_ci(block.get(key), digits, ci) for _, key, ci in PAPER_ROWS]
        for name, block in blocks.items()
    }
    table = pd.DataFrame(data, index=[label for label, _, _ in PAPER_ROWS])
    table.index.name = "Metric"
    return table


def long_table(blocks: Mapping[str, Mapping]) -> pd.DataFrame:
    """The same numbers unformatted: columns model, metric, value, low, high (float or NaN)."""
    rows = []
    for name, block in blocks.items():
        for _, key, _ in PAPER_ROWS:
            entry = block.get(key) or {}
            rows.append(
                {
                    "model": name,
                    "metric": key,
                    "value": entry.get("value"),
                    "low": entry.get("low"),
                    "high": entry.get("high"),
                }
            )
    return pd.DataFrame(rows, columns=["model", "metric", "value", "low", "high"])


def numeric_table(blocks: Mapping[str, Mapping]) -> pd.DataFrame:
    """The paper's rows as numbers: index metric (auroc, accuracy, ...), then per model the
    columns "<model>: value", "<model>: low", "<model>: high" (float; empty when undefined).

    This is compare's table.csv, for a spreadsheet or a script; the formatted strings are in
    table_display.csv and table.md (:func:`paper_table`).
    """
    data: dict[str, list] = {}
    for name, block in blocks.items():
        for part in ("value", "low", "high"):
            data[f"{name}: {part}"] = [
                _float((block.get(key) or {}).get(part)) for _, key, _ in PAPER_ROWS
            ]
    table = pd.DataFrame(data, index=[key for _, key, _ in PAPER_ROWS], dtype=float)
    table.index.name = "metric"
    return table


def _float(x) -> float:
    return math.nan if x is None else float(x)


def to_markdown(table: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table (index as the first column)."""

    def esc(x: object) -> str:
        return str(x).replace("|", "\\|")

    header = [table.index.name or ""] + [esc(c) for c in table.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    for idx, row in table.iterrows():
        lines.append("| " + " | ".join([esc(idx)] + [esc(v) for v in row]) + " |")
    return "\n".join(lines) + "\n"


def write_table(table: pd.DataFrame, base: str | os.PathLike, index: bool = True) -> list[Path]:
    """Write ``base``.csv and ``base``.md atomically; return both paths."""
    base = Path(base)
    csv_path = write_text_atomic(base.with_suffix(".csv"), table.to_csv(index=index))
    shown = table if index else table.set_index(table.columns[0])
    md_path = write_text_atomic(base.with_suffix(".md"), to_markdown(shown))
    return [csv_path, md_path]
