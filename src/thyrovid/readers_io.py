"""Reader-study input: readers.csv and the model's predictions and threshold.

readers.csv (reader, group, case, modality, truth, score, decision; see ARCHITECTURE.md) is
checked for a fully crossed design: every reader reads every case in both modalities. The model's
patient-level P(malignant) comes from RUN/predictions.csv, its threshold from RUN/metrics.json.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from thyrovid.errors import UserError


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
