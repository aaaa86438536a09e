"""cohort.csv: the schema, reading, label normalisation and row validation.

A cohort.csv has one row per labelled key frame (columns in README.md, 'Your own data'). Row
numbers in every message are 1-based *data* rows: row 1 is the first row under the header, i.e.
line 2 of the file; messages say both ("row 3 (line 4)").

Labels: ``0``/``1`` (also written ``0.0``/``1.0``) or ``benign``/``malignant`` (case-insensitive,
surrounding blanks ignored); 1 = malignant. Nothing else is accepted, so a typo is an error
rather than a silent guess.

The file: UTF-8 (with or without a byte-order mark), any line ending, comma-separated, or
semicolon- or tab-separated when the header line has no comma (spreadsheets in many locales
save "CSV" with semicolons). Column names ignore case, surrounding blanks, and blanks or
hyphens inside (``Patient ID`` is ``patient_id``). A video path may use Windows backslashes.

Boxes are pixel coordinates ``x0, y0, x1, y1`` on the key frame (x right, y down, x1/y1
exclusive); decimals are allowed (annotation tools export them). Frames are 0-based.

Validation happens in two passes, both before any extraction:
`read_cohort` checks each row on its own and the rows against each other (label within a
nodule, split within a patient, missing files); `check_against_videos` opens each distinct video
once (header only) to check frame indices and boxes against its size. Importers for annotation
tool exports (`thyrovid.cohort.importers`: `import_cvat_video`, `import_coco`) return cohort rows;
`write_cohort` writes them.
"""

from __future__ import annotations

import csv
import difflib
import io
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from thyrovid.atomic import write_text_atomic
from thyrovid.cohort.boxes import box_problem
from thyrovid.csv_input import NUL_ROW, RAGGED, normalise_column, read_table
from thyrovid.errors import CohortError

# The columns of cohort.csv in the order of the README's "Your own data".
COLUMNS = ("patient_id", "nodule_id", "video", "center", "label", "frame", "x0", "y0", "x1", "y1",
           "split")  # fmt: skip
OPTIONAL = ("nodule_id", "split")
REQUIRED = tuple(c for c in COLUMNS if c not in OPTIONAL)
SPLITS = ("train", "val", "test", "external")
_LABELS = {"0": 0, "1": 1, "benign": 0, "malignant": 1}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one cohort row (row 0 = the file as a whole)."""

    row: int
    message: str
    source: str = "cohort.csv"

    def __post_init__(self) -> None:
        object.__setattr__(self, "row", int(self.row))  # numpy ints from pandas indexes

    def __str__(self) -> str:
        if self.row <= 0:
            return f"{self.source}: {self.message}"
        return f"{self.source} row {self.row} (line {self.row + 1}): {self.message}"


@dataclass
class Cohort:
    """A read cohort.

    Attributes:
        rows: one row per valid key frame, index = 1-based data row number. Columns: COLUMNS
            with label int 0/1, frame int, x0..y1 float, split "" when not given, nodule_id
            filled (defaults to patient_id), `video_path` (resolved absolute path), plus the
            extra columns of the file as strings.
        extras: names of the extra columns, in file order.
        problems: the rows that were dropped and why.
        path: the cohort.csv path.
    """

    rows: pd.DataFrame
    extras: list[str]
    problems: list[Problem] = field(default_factory=list)
    path: Path = Path("cohort.csv")

    def drop(self, problems: Iterable[Problem], strict: bool = False) -> None:
        """Record `problems` and drop their rows (raise CohortError on the first if strict)."""
        problems = list(problems)
        if strict and problems:
            raise CohortError(str(problems[0]))
        self.problems.extend(problems)
        bad = {p.row for p in problems}
        self.rows = self.rows[~self.rows.index.isin(bad)]


def parse_label(text: str) -> int:
    """'0'/'1' (or '0.0'/'1.0')/'benign'/'malignant' (any case) -> 0/1; ValueError otherwise."""
    key = str(text).strip().lower()
    if key not in _LABELS:
        try:
            value = float(key)
        except ValueError:
            value = None
        if value not in (0.0, 1.0):
            raise ValueError(f"label {text!r} is not 0/1 or benign/malignant")
        return int(value)
    return _LABELS[key]


def _float(text: str) -> float:
    """float(), also of a decimal comma ('12,5': semicolon-separated files from spreadsheets)."""
    text = str(text).strip()
    if text.count(",") == 1 and "." not in text:
        text = text.replace(",", ".")
    return float(text)


def _parse_frame(text: str, base: int = 0) -> int:
    """A frame cell as a 0-based index; `base` 1: the cell numbers frames from 1 (a viewer's)."""
    what = f"frame {text!r} is not a {base}-based frame index" + (
        " (--frame-base 1: frames numbered from 1)" if base else ""
    )
    try:
        value = _float(text)  # "12" and "12.0" both fine; "12.5" is not a frame
    except ValueError:
        raise ValueError(what) from None
    if not value.is_integer() or value < base:
        raise ValueError(what)
    return int(value) - base


def _parse_coord(name: str, text: str) -> float:
    try:
        value = _float(text)
    except ValueError:
        raise ValueError(f"{name} {text!r} is not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{name} {text!r} is not a finite number")
    return value


def _header(df: pd.DataFrame, source: str) -> tuple[dict[str, str], list[str]]:
    """Map normalised names to file names; unknown columns that look like typos are errors."""
    names = {c: normalise_column(c) for c in df.columns}
    known = set(COLUMNS)
    found = {norm: orig for orig, norm in names.items() if norm in known}
    missing = [c for c in REQUIRED if c not in found]
    extras = [orig for orig, norm in names.items() if norm not in known]
    if missing:
        hints = []
        for col in missing:
            close = difflib.get_close_matches(col, [names[e] for e in extras], n=1, cutoff=0.75)
            hints.append(f"{col} (unknown column {close[0]!r} looks like it)" if close else col)
        raise CohortError(f"{source}: missing required column(s): {', '.join(hints)}")
    return found, extras


def read_text_table(path: Path, what: str = "file", keep_ragged: bool = False) -> pd.DataFrame:
    """A user's table as stripped strings (`thyrovid.csv_input.read_table`), CohortError."""
    return read_table(path, what, keep_ragged=keep_ragged, error=CohortError)[0]


def read_cohort(path: str | os.PathLike, strict: bool = False, frame_base: int = 0) -> Cohort:
    """Read and validate cohort.csv without opening any video.

    Checks: required columns present (always fatal); numbers, labels and splits parse;
    x1 > x0 and y1 > y0 and no negative coordinate; the video file exists (relative paths are
    resolved against the CSV's folder); one label per nodule; one split per patient.

    Args:
        path: the cohort.csv.
        strict: raise CohortError on the first problem instead of dropping the row.
        frame_base: 0 (the contract) or 1 when the file numbers frames from 1, as viewers do;
            the frames read are converted to 0-based.

    Returns:
        A Cohort; its `problems` lists the rows dropped.
    """
    path = Path(path)
    raw = read_text_table(path, "cohort file", keep_ragged=True)
    source = path.name
    found, extras = _header(raw, source)
    raw.index = raw.index + 1  # row numbers of the file (empty rows were dropped, not renumbered)
    problems: list[Problem] = []
    records = {}
    first = raw.columns[0]
    videos: dict[str, tuple[str, bool]] = {}  # video -> (resolved path, exists): once per video
    for row, rec in zip(raw.index, raw.to_dict("records")):
        if rec[first] == NUL_ROW:
            msg = "holds a NUL byte (a damaged export); fix or delete the row"
            parsed, problem = None, Problem(row, msg, source)
        elif str(rec[first]).startswith(RAGGED):
            n = rec[first].removeprefix(RAGGED)
            msg = (
                f"has {n} fields but the header has {len(raw.columns)} (a value with a comma or "
                "separator in it must be quoted)"
            )
            parsed, problem = None, Problem(row, msg, source)
        else:
            parsed, problem = _parse_row(
                rec, found, extras, path.parent, row, source, videos, frame_base
            )
        if problem is not None:
            if strict:
                raise CohortError(str(problem))
            problems.append(problem)
        else:
            records[row] = parsed
    rows = pd.DataFrame.from_dict(records, orient="index")
    if rows.empty:
        rows = pd.DataFrame(columns=[*COLUMNS, "video_path", *extras])
    cohort = Cohort(rows=rows, extras=extras, problems=problems, path=path)
    cohort.drop(_consistency_problems(cohort.rows, source), strict=strict)
    cohort.problems.sort(key=lambda p: p.row)
    return cohort


def _parse_row(rec, found, extras, base: Path, row: int, source: str, videos=None, frame_base=0):
    """One row's values, or its Problem; `videos` caches each video's (path, exists)."""
    out = {}
    try:
        for col in ("patient_id", "video", "center"):
            out[col] = str(rec[found[col]]).strip()
            if not out[col]:
                raise ValueError(f"{col} is empty")
        nodule = str(rec[found["nodule_id"]]).strip() if "nodule_id" in found else ""
        out["nodule_id"] = nodule or out["patient_id"]
        out["label"] = parse_label(rec[found["label"]])
        out["frame"] = _parse_frame(rec[found["frame"]], frame_base)
        for col in ("x0", "y0", "x1", "y1"):
            out[col] = _parse_coord(col, rec[found[col]])
        split = str(rec[found["split"]]).strip().lower() if "split" in found else ""
        if split and split not in SPLITS:
            raise ValueError(f"split {split!r} is not one of {'/'.join(SPLITS)} (or empty)")
        out["split"] = split
    except ValueError as exc:
        return None, Problem(row, str(exc), source)
    if out["x1"] <= out["x0"] or out["y1"] <= out["y0"]:
        box = f"({out['x0']:g}, {out['y0']:g}, {out['x1']:g}, {out['y1']:g})"
        return None, Problem(row, f"box {box} has x1 <= x0 or y1 <= y0", source)
    if min(out["x0"], out["y0"]) < 0:
        return None, Problem(row, "box starts outside the frame (negative coordinate)", source)
    cached = videos.get(out["video"]) if videos is not None else None
    if cached is None:
        resolved = resolve_video(out["video"], base)
        cached = (resolved, os.path.exists(resolved))
        if videos is not None:
            videos[out["video"]] = cached
    out["video_path"] = cached[0]
    if not cached[1]:
        return None, Problem(row, f"video '{out['video']}' not found", source)
    for col in extras:
        out[col] = rec[col]
    return out, None


def resolve_video(video: str, base: Path) -> str:
    """The absolute path of `video` (relative to `base`); Windows backslashes work too."""
    path = Path(video)
    resolved = str(path if path.is_absolute() else (base / path).resolve())
    if "\\" in video and os.sep == "/" and not os.path.exists(resolved):
        return resolve_video(video.replace("\\", "/"), base)
    return resolved


def _consistency_problems(rows: pd.DataFrame, source: str) -> list[Problem]:
    """One label per nodule, one split per patient: every row of a conflicting group is bad."""
    problems = []
    if rows.empty:
        return problems
    # Only the groups in conflict are walked in Python (found by one vectorised groupby), so a
    # cohort of thousands of consistent patients costs milliseconds, not one loop step each.
    n_labels = rows.groupby(["patient_id", "nodule_id"], sort=False)["label"].transform("nunique")
    conflicted = rows[(n_labels > 1).to_numpy()]
    for (patient, nodule), grp in conflicted.groupby(["patient_id", "nodule_id"], sort=False):
        if grp["label"].nunique() > 1:
            first, label = grp.index[0], grp["label"].iloc[0]
            other = grp.index[grp["label"] != label][0]
            for row in grp.index[1:]:
                if grp.at[row, "label"] != label:
                    why = f"label {grp.at[row, 'label']} differs from label {label} in row {first}"
                else:
                    why = (
                        f"label {label} differs from label {grp.at[other, 'label']} in row {other}"
                    )
                msg = (
                    f"{why} for nodule {nodule!r} of patient {patient!r}; "
                    "all rows of this nodule skipped"
                )
                problems.append(Problem(int(row), msg, source))
            hint = (
                " (nodule_id is the patient id here: give each nodule its own nodule_id)"
                if nodule == patient
                else ""
            )
            problems.append(
                Problem(int(first), f"nodule {nodule!r} has conflicting labels{hint}", source)
            )
    given_split = rows["split"].where(rows["split"] != "")
    n_splits = given_split.groupby(rows["patient_id"], sort=False).transform("nunique")
    for patient, grp in rows[(n_splits > 1).to_numpy()].groupby("patient_id", sort=False):
        given = sorted(s for s in grp["split"].unique() if s)
        if len(given) > 1:
            for row in grp.index:
                msg = f"patient {patient!r} is in two splits ({', '.join(given)}); rows skipped"
                problems.append(Problem(int(row), msg, source))
    return sorted(problems, key=lambda p: p.row)


def check_against_videos(
    cohort: Cohort, headers: Mapping[str, object], strict: bool = False
) -> None:
    """Check frame indices and boxes against each video's header; drop bad rows.

    Args:
        cohort: from `read_cohort`.
        headers: video_path -> VideoInfo, or -> an error message (str) when it would not open.
        strict: raise CohortError on the first problem.
    """
    source = cohort.path.name
    problems = []
    for row, rec in zip(cohort.rows.index, cohort.rows.to_dict("records")):
        info = headers[rec["video_path"]]
        if isinstance(info, str):
            problems.append(Problem(row, info, source))
            continue
        if rec["frame"] >= info.n_frames:
            msg = f"frame {rec['frame']} is beyond the video ({info.n_frames} frames, 0-based)"
            problems.append(Problem(row, msg, source))
            continue
        box = (rec["x0"], rec["y0"], rec["x1"], rec["y1"])
        why = box_problem(box, info.width, info.height)
        if why:
            problems.append(Problem(row, why, source))
        if strict and problems:
            break
    cohort.drop(problems, strict=strict)


# ---------------------------------------------------------------- writing


def write_cohort(rows: Iterable[Mapping], path: str | os.PathLike) -> Path:
    """Write cohort rows (dicts with COLUMNS keys, extras allowed) to `path` atomically."""
    rows = list(rows)
    path = Path(path)
    extras = []
    for rec in rows:
        extras += [k for k in rec if k not in COLUMNS and k not in extras]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=[*COLUMNS, *extras], lineterminator="\n")
    writer.writeheader()
    for rec in rows:
        writer.writerow({k: format_number(v) for k, v in rec.items()})
    write_text_atomic(path, buf.getvalue())
    return path


def format_number(value) -> str:
    """A number as cohort/clips CSVs write it: 12.0 -> "12", 12.345 -> "12.35"."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, float):
        return f"{value:.2f}".rstrip("0").rstrip(".")
    return str(value)
