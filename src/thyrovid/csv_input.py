"""Reading a user's own CSV table: delimiter, encoding and 0/1 columns, with one-line errors.

Spreadsheets export "CSV" with commas, semicolons (where the decimal mark is a comma) or tabs,
often with a byte-order mark and CRLF line ends. ``read_user_csv`` takes all of these; every
value comes back as a stripped string, so ids keep their leading zeros ("007" is not "7") and
the caller decides what is a number.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd

from thyrovid.errors import UserError

DELIMITERS = (",", ";", "\t")
# Accepted spellings of a binary value (compared lower-cased and stripped).
POSITIVE = ("1", "1.0", "malignant", "positive", "yes", "true", "y")
NEGATIVE = ("0", "0.0", "benign", "negative", "no", "false", "n")


RAGGED = "\0ragged row: fields="  # see read_table(keep_ragged=True)
NUL_ROW = "\0row with a NUL byte"  # likewise


def normalise_column(name: str) -> str:
    """A header as matched: 'Patient ID' / ' patient-id ' / 'PATIENT_ID' -> 'patient_id'."""
    return re.sub(r"[\s\-]+", "_", str(name).strip().lower())


def sniff_delimiter(header: str) -> str:
    """The delimiter of a header line: comma, else the more frequent of semicolon and tab.

    A comma in the header wins: a semicolon file's header rarely holds one, a comma file's
    header may well hold a semicolon inside a quoted name.
    """
    if "," not in header and (";" in header or "\t" in header):
        return max((";", "\t"), key=header.count)
    return ","


def _clean_text(text: str) -> str:
    """Line ends as LF: CRLF -> LF; a file of lone CRs (old Mac) -> LF; any other lone CR (a
    stray one inside a line) is whitespace."""
    text = text.replace("\r\n", "\n")
    if "\r" in text:
        text = (
            text.replace("\r", "\n") if "\n" not in text.rstrip("\r") else text.replace("\r", " ")
        )
    return text


def read_table(
    path, what: str = "file", *, keep_ragged: bool = False, error: type[UserError] = UserError
) -> tuple[pd.DataFrame, str]:
    """The one reader for users' tables: every value a stripped string, nothing guessed.

    Comma, semicolon (spreadsheets where the decimal mark is a comma) or tab separated, UTF-8
    with or without a byte-order mark, LF, CRLF or CR line ends. Tolerated: a trailing
    separator on every line (a common export: the empty last column is dropped), a stray CR
    inside a line (whitespace). Rows whose every field is empty (trailing ",,,," lines of a
    spreadsheet) are dropped; the index keeps the original row numbers (file line = index + 2
    when no value spans lines). Ids keep their leading zeros ("007" is not "7").

    A bad row (more non-empty fields than the header: an unquoted separator in a value; a NUL
    byte) fails the file with one line naming it, or with `keep_ragged` stays in place with
    its first cell set to `RAGGED` + its field count (or `NUL_ROW`) and the other cells empty,
    so the caller can name its row and go on with the others.

    Returns:
        (frame of str, the delimiter).

    Raises:
        `error`: one line naming the file when it is missing, not UTF-8, not a readable CSV,
        has an empty or repeated column name (compared as `normalise_column` does), or (without
        `keep_ragged`) naming the first bad line.
    """
    path = Path(path)
    try:
        if not path.is_file():
            raise error(f"{path}: {what} not found")
        data = path.read_bytes()
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        raise error(
            f"{_show_path(path)}: {what} cannot be read ({exc.__class__.__name__})"
        ) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise error(
            f"{path}: not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line}); "
            f"save the {what} as 'CSV UTF-8'"
        ) from None
    text = _clean_text(text)
    header_line = text.split("\n", 1)[0]
    if "\0" in header_line:
        raise error(f"{path}: the header line holds a NUL byte; re-export the {what}")
    sep = sniff_delimiter(header_line)
    try:
        records = list(csv.reader(io.StringIO(text, newline=""), delimiter=sep, strict=False))
    except csv.Error as exc:
        raise error(f"{path}: not a readable CSV ({str(exc).splitlines()[0]})") from None
    if not records or not any(c.strip() for c in records[0]):
        raise error(f"{path}: not a readable CSV (no header line)")
    header = [c.strip() for c in records[0]]
    while header and not header[-1]:  # trailing separators on the header line
        header.pop()
    seen: dict[str, int] = {}
    for k, name in enumerate(header):
        if not name:
            raise error(
                f"{path}: column {k + 1} of the header has no name; name it or delete the column"
            )
        norm = normalise_column(name)
        if norm in seen:
            raise error(
                f"{path}: column {name!r} appears twice (columns {seen[norm] + 1} and {k + 1}); "
                "keep one"
            )
        seen[norm] = k
    n = len(header)
    rows, index = [], []
    for i, fields in enumerate(records[1:]):
        fields = [f.strip() for f in fields]
        if not any(fields):
            continue
        bad = None
        if any("\0" in f for f in fields):
            bad = NUL_ROW
        elif len(fields) > n and any(fields[n:]):
            bad = f"{RAGGED}{len(fields)}"
        if bad is not None:
            if not keep_ragged:
                why = (
                    "holds a NUL byte"
                    if bad == NUL_ROW
                    else (
                        f"has {len(fields)} fields but the header has {n} (a value with a separator "
                        "in it must be quoted)"
                    )
                )
                raise error(f"{path}: line {i + 2} {why}")
            fields = [bad] + [""] * (n - 1)
        rows.append((fields + [""] * n)[:n])
        index.append(i)
    df = pd.DataFrame(rows, columns=header, index=pd.Index(index, dtype=int), dtype=str)
    return df, sep


def _show_path(path: Path) -> str:
    return str(path).replace("\0", "\\0")


def read_user_csv(path, what: str = "CSV") -> tuple[pd.DataFrame, str]:
    """`read_table` with `UserError`: (frame of stripped strings, the delimiter)."""
    return read_table(path, what)


def to_number(values: pd.Series, sep: str) -> pd.Series:
    """Strings -> float (NaN where not a number); a decimal comma is read in ';' files."""
    if sep == ";":
        values = values.str.replace(",", ".", regex=False)
    return pd.to_numeric(values, errors="coerce").astype(float)


def binary(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """0/1 from strings such as 1/0, malignant/benign, yes/no, true/false, positive/negative.

    Returns:
        (int Series with -1 where unrecognised, positions of the unrecognised values).
    """
    low = values.astype(str).str.strip().str.lower()
    out = pd.Series(-1, index=values.index, dtype=int)
    out[low.isin(POSITIVE)] = 1
    out[low.isin(NEGATIVE)] = 0
    return out, np.flatnonzero((out < 0).to_numpy())


BINARY_HELP = "use 1/0, malignant/benign, yes/no or true/false"


PREDICTION_COLUMNS = ("level", "id", "split", "label", "prob")


def read_predictions(path, split: str, level: str = "patient") -> pd.DataFrame:
    """One split and level of a predictions.csv (level, id, split, label, prob), checked.

    label takes 0/1 or benign/malignant; prob must be a probability in [0, 1] (a 0-100 or
    logit score would make the threshold meaningless).

    Returns:
        frame indexed by id (str) with label (int 0/1) and prob (float).

    Raises:
        UserError: missing file or column, no rows, a repeated id, a bad label or prob, each
        one line naming the file and line.
    """
    path = Path(path)
    df, sep = read_user_csv(path, "predictions.csv")
    missing = [c for c in PREDICTION_COLUMNS if c not in df.columns]
    if missing:
        raise UserError(
            f"{path}: missing column(s) {', '.join(missing)}; need {', '.join(PREDICTION_COLUMNS)}"
            f" (found {', '.join(df.columns)})"
        )
    rows = df[(df["split"] == split) & (df["level"] == level)]
    if rows.empty:
        have = ", ".join(sorted(set(df.loc[df["level"] == level, "split"]))) or "none"
        raise UserError(
            f"{path}: no {level}-level rows in split {split!r} ({level}-level splits: {have})"
        )
    dup = rows["id"].duplicated()
    if dup.any():
        i = rows.index[dup.to_numpy()][0]
        raise UserError(
            f"{path}: line {i + 2}: id {rows.at[i, 'id']!r} occurs twice at {level} level in "
            f"split {split!r}"
        )
    label, bad = binary(rows["label"])
    if bad.size:
        i = rows.index[bad[0]]
        raise UserError(
            f"{path}: line {i + 2} (id {rows.at[i, 'id']}): label {rows.at[i, 'label']!r} is not "
            f"0 or 1 ({BINARY_HELP}); {bad.size} such row(s)"
        )
    prob = to_number(rows["prob"], sep)
    bad = np.flatnonzero(~((prob >= 0) & (prob <= 1)).to_numpy())
    if bad.size:
        i = rows.index[bad[0]]
        raise UserError(
            f"{path}: line {i + 2} (id {rows.at[i, 'id']}): prob {rows.at[i, 'prob']!r} is not a "
            f"probability in [0, 1]; {bad.size} such row(s)"
        )
    return pd.DataFrame({"label": label.to_numpy(), "prob": prob.to_numpy()}, index=rows["id"])
