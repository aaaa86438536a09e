"""Reader-study input: readers.csv and the model's predictions and threshold.

readers.csv (reader, group, case, modality, truth, score, decision; see README.md) is
checked for a fully crossed design: every reader reads every case in both modalities. The model's
patient-level P(malignant) comes from RUN/predictions.csv (its threshold: `thyrovid.runs`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from thyrovid.csv_input import (
    BINARY_HELP,
    binary,
    normalise_column,
    read_predictions,
    read_user_csv,
    to_number,
)
from thyrovid.errors import UserError

# Other names a user's table may give a column (compared case-insensitively, spaces as "_").
ALIASES = {
    "reader": ("reader_id", "radiologist", "observer"),
    "case": ("case_id", "patient_id", "nodule_id"),
    "modality": ("mode", "condition", "session"),
    "truth": ("label", "ground_truth", "malignant"),
    "score": ("rating", "probability", "prob"),
}


def _rename_columns(path: Path, df: pd.DataFrame, score_col: str) -> pd.DataFrame:
    """Map the user's headers onto reader, group, case, modality, truth, score, decision."""
    keys = {}
    for col in df.columns:
        keys.setdefault(normalise_column(col), col)
    want = {
        "reader": "reader", "group": "group", "case": "case", "modality": "modality",
        "truth": "truth", score_col: "score", "decision": "decision",
    }  # fmt: skip
    rename, missing = {}, []
    for name, target in want.items():
        options = [name, *(ALIASES.get(target, ()) if name == target else ())]
        found = next(
            (keys[normalise_column(o)] for o in options if normalise_column(o) in keys), None
        )
        if found is not None and found not in rename:
            rename[found] = target
        elif target not in ("group", "decision"):
            missing.append(name)
    if missing:
        need = ["reader", "case", "modality", "truth", score_col]
        raise UserError(
            f"{path}: missing column(s) {missing}; need {need} "
            f"(+ group, decision, optional); found columns {', '.join(map(str, df.columns))}"
        )
    return df[list(rename)].rename(columns=rename)


def _row_error(path: Path, idx, df: pd.DataFrame, cause: str) -> UserError:
    who = f"reader {df.at[idx, 'reader']!s}, case {df.at[idx, 'case']!s}"
    return UserError(f"{path}: line {idx + 2} ({who}): {cause}")


def _binary_column(path: Path, df: pd.DataFrame, col: str) -> pd.Series:
    mapped, bad = binary(df[col])
    if bad.size:
        i = df.index[bad[0]]
        raw = df.at[i, col]
        what = "is empty" if raw == "" else f"{raw!r} is not 0 or 1"
        raise _row_error(path, i, df, f"{col} {what} ({BINARY_HELP}); {bad.size} such row(s)")
    return mapped


def load_readers(readers_csv, score_col: str = "score") -> tuple[pd.DataFrame, str, str]:
    """Read and validate readers.csv.

    Comma, semicolon or tab separated; headers are matched case-insensitively, with a few
    aliases (case_id/patient_id for case, label for truth, rating for score); ids stay
    strings ("007" is not "7"); truth and decision take 1/0, malignant/benign, yes/no.

    Returns:
        (frame with columns reader, group, case, modality, truth (int 0/1), score (float),
        decision (int 0/1 or absent), reference modality, test modality).

    Raises:
        UserError: one line naming the file, line, reader or case at fault.
    """
    path = Path(readers_csv)
    raw, sep = read_user_csv(path, "readers.csv")
    df = _rename_columns(path, raw, score_col)
    if df.empty:
        raise UserError(f"{path}: no data rows")
    for col in ("reader", "case", "modality"):
        empty = df[col] == ""
        if empty.any():
            raise UserError(
                f"{path}: line {df.index[empty.to_numpy()][0] + 2}: empty {col} "
                f"({int(empty.sum())} such row(s))"
            )
    df["truth"] = _binary_column(path, df, "truth")
    score = to_number(df["score"], sep)
    bad = np.flatnonzero(~np.isfinite(score.to_numpy()))
    if bad.size:
        i = df.index[bad[0]]
        raw_score = df.at[i, "score"]
        what = "is empty" if raw_score == "" else f"{raw_score!r} is not a number"
        raise _row_error(path, i, df, f"{score_col} {what}; {bad.size} such row(s)")
    df["score"] = score
    if "decision" in df.columns:
        df["decision"] = _binary_column(path, df, "decision")
    if "group" not in df.columns:
        df["group"] = ""
    _check_design(path, df)
    df = df.reset_index(drop=True)
    mods = list(pd.unique(df["modality"]))
    ref, test = _reference_first(mods)
    keep = ["reader", "group", "case", "modality", "truth", "score"]
    return df[keep + (["decision"] if "decision" in df.columns else [])], ref, test


# (reference, test) modality names recognised whatever their case; otherwise file order.
REFERENCE_TEST = (
    ("unaided", "aided"),
    ("unassisted", "assisted"),
    ("without ai", "with ai"),
    ("without", "with"),
)


def _reference_first(mods: list) -> tuple[str, str]:
    """The two modalities as (reference, test): "unaided" before "aided" in any case."""
    low = [normalise_column(m).replace("_", " ") for m in mods]
    for ref, test in REFERENCE_TEST:
        if low == [test, ref]:
            return mods[1], mods[0]
    return mods[0], mods[1]


def _check_design(path: Path, df: pd.DataFrame) -> None:
    """Two modalities, one truth per case, one group per reader, a fully crossed design."""
    mods = list(pd.unique(df["modality"]))
    if len(mods) != 2:
        raise UserError(
            f"{path}: found {len(mods)} modality label(s) {mods}; a reader study needs exactly "
            "two (e.g. unaided and aided) to compare"
            + ("; keep the rows of the two to compare" if len(mods) > 2 else "")
        )
    key = ["reader", "case", "modality"]
    dup = df.duplicated(key)
    if dup.any():
        i = df.index[dup.to_numpy()][0]
        first = df.index[(df[key] == df.loc[i, key]).all(axis=1).to_numpy()][0]
        raise _row_error(
            path,
            i,
            df,
            f"a second reading in modality {df.at[i, 'modality']!r} (first on line {first + 2}); "
            f"{int(dup.sum())} repeated reading(s) in all",
        )
    truths = df.groupby("case")["truth"].nunique()
    if (truths > 1).any():
        case = truths.index[truths > 1][0]
        lines = df.index[(df["case"] == case).to_numpy()]
        raise UserError(
            f"{path}: case {case} has two different truths (0 and 1) on lines "
            f"{', '.join(str(i + 2) for i in lines[:6])}; {int((truths > 1).sum())} such case(s)"
        )
    groups = df.groupby("reader")["group"].unique()
    two = groups[groups.map(len) > 1]
    if len(two):
        raise UserError(
            f"{path}: reader {two.index[0]} is in two groups "
            f"({', '.join(repr(g) for g in two.iloc[0])}); give each reader one group"
        )
    _check_crossed(path, df, mods)
    n_pos = int(df.drop_duplicates("case")["truth"].sum())
    n_neg = int(df["case"].nunique()) - n_pos
    if min(n_pos, n_neg) < 2:
        raise UserError(
            f"{path}: {n_pos} malignant and {n_neg} benign case(s); AUROC with a DeLong CI "
            "needs at least 2 of each"
        )


def _check_crossed(path: Path, df: pd.DataFrame, mods: list) -> None:
    """Every reader reads every case in both modalities; else name the first gap and count."""
    readers, cases = pd.unique(df["reader"]), pd.unique(df["case"])
    full = pd.MultiIndex.from_product([readers, mods, cases], names=["reader", "modality", "case"])
    have = pd.MultiIndex.from_frame(df[["reader", "modality", "case"]])
    gaps = full.difference(have, sort=False)
    if len(gaps):
        reader, mod, case = gaps[0]
        per = pd.Series([g[0] for g in gaps]).value_counts(sort=False)
        who = ", ".join(f"{r} {n}" for r, n in per.items())
        raise UserError(
            f"{path}: reader {reader} has no {mod!r} reading of case {case}; {len(gaps)} of "
            f"{len(full)} readings missing ({who}). The paired tests and the MRMC analysis "
            "need every reader to read every case in both modalities (a fully crossed design); "
            "remove the incomplete cases or readers"
        )


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
    rows = read_predictions(path, split, "patient")
    prob = rows["prob"]
    absent = [c for c in cases if c not in prob.index]
    if absent:
        raise UserError(
            f"{path}: no patient-level {split!r} prediction for case {absent[0]} "
            f"({len(absent)} of {len(cases)} cases missing)"
        )
    if truth is not None:
        label = rows.loc[list(cases), "label"].to_numpy()
        wrong = np.flatnonzero(label != np.asarray(truth))
        if wrong.size:
            case = cases.iloc[wrong[0]]
            raise UserError(
                f"{path}: case {case} has label {label[wrong[0]]} here but a "
                "different truth in readers.csv"
            )
    return prob.loc[list(cases)]
