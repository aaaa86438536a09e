"""Annotate mode (`thyrovid serve RUN --root VIDEOS --annotate COHORT_CSV`): boxes -> cohort.csv.

A save holds one nodule of one video: patient, nodule, centre, label (and optionally split),
and its 1-10 key frames with their boxes. It becomes one cohort.csv row per key frame, in the
contract of `thyrovid.cohort.schema` (video relative to the CSV's folder, 0-based frames, boxes
in pixels, x1/y1 exclusive). Saving the same video and nodule again replaces that nodule's rows
(the page reloads them to continue); other rows are kept as they are. The file is changed
through `thyrovid.serve.tables.LockedTable`: locked and rewritten atomically, so two tabs
saving at once lose nothing and tear nothing.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from thyrovid.cohort.schema import COLUMNS, SPLITS, box_problem, format_number, parse_label
from thyrovid.errors import UserError
from thyrovid.serve.tables import LockedTable

MAX_KEY_FRAMES = 10


def text_field(body: dict, name: str, required: bool = True) -> str:
    """A text field of a JSON body, stripped; missing or empty -> UserError naming it."""
    value = body.get(name, "")
    if value is None:
        value = ""
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise UserError(f"{name}: expected text, got {type(value).__name__}")
    value = str(value).strip()
    if required and not value:
        raise UserError(f"{name}: required (empty)")
    if any(c in value for c in "\r\n"):
        raise UserError(f"{name}: one line, no line break")
    return value


def key_frames(body: dict, info: dict, field: str = "keyframes") -> list[tuple[int, tuple]]:
    """The `keyframes` list of a JSON body -> [(0-based frame, box)], checked against the video.

    Each item is {"frame": int, "box": [x0, y0, x1, y1]} (pixels, x1/y1 exclusive); 1 to
    MAX_KEY_FRAMES items, distinct frames, each box inside the frame.
    """
    items = body.get(field)
    if not isinstance(items, list) or not items:
        raise UserError(f"{field}: draw a box on at least one key frame")
    if len(items) > MAX_KEY_FRAMES:
        raise UserError(f"{field}: {len(items)} key frames; at most {MAX_KEY_FRAMES}")
    out, seen = [], set()
    n = info["n_frames"]
    for i, item in enumerate(items):
        where = f"{field}[{i}]"
        if not isinstance(item, dict):
            raise UserError(f"{where}: expected {{frame, box}}")
        frame = item.get("frame")
        if isinstance(frame, bool) or not isinstance(frame, (int, float)):
            raise UserError(f"{where}.frame: expected a 0-based frame index, got {frame!r}")
        if not float(frame).is_integer() or not 0 <= frame < n:
            raise UserError(
                f"{where}.frame: {frame!r} out of range (the video has {n} frames, 0-based)"
            )
        frame = int(frame)
        if frame in seen:
            raise UserError(f"{where}.frame: key frame {frame} (0-based) given twice")
        seen.add(frame)
        box = item.get("box")
        if not (
            isinstance(box, list)
            and len(box) == 4
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in box)
            and all(math.isfinite(v) for v in box)
        ):
            raise UserError(f"{where}.box: expected [x0, y0, x1, y1] in pixels, got {box!r}")
        box = tuple(float(v) for v in box)
        if box[2] <= box[0] or box[3] <= box[1]:
            raise UserError(f"{where}.box: need x1 > x0 and y1 > y0 (x1/y1 exclusive)")
        why = box_problem(box, info["width"], info["height"])
        if why:
            raise UserError(f"{where}.box: {why}")
        out.append((frame, box))
    return out


class Annotator:
    """Writes the page's boxes into one cohort.csv.

    Args:
        cohort_csv: the file to append to (created with the contract's header when missing).
    """

    def __init__(self, cohort_csv):
        self.table = LockedTable(cohort_csv, COLUMNS)
        self.folder = self.table.path.parent

    def video_cell(self, path: Path) -> str:
        """The cohort.csv `video` cell of a video: relative to the CSV's folder, '/' separated."""
        return Path(os.path.relpath(Path(path).resolve(), self.folder)).as_posix()

    def saved(self, path: Path) -> list[dict]:
        """The rows of this video already in cohort.csv (to continue where a tab left off)."""
        cell = self.video_cell(path)
        return [_public(r) for r in self.table.rows() if _same_video(r.get("video", ""), cell)]

    def save(self, entry, body: dict) -> dict:
        """Validate one nodule's annotation and write its rows; returns what was written."""
        if entry.source != "root":
            raise UserError(
                "video: an uploaded video cannot go into cohort.csv (its file is temporary); "
                "open it from the --root folder"
            )
        patient = text_field(body, "patient_id")
        nodule = text_field(body, "nodule_id", required=False) or patient
        center = text_field(body, "center")
        label_text = text_field(body, "label")
        try:
            label = parse_label(label_text)
        except ValueError:
            raise UserError(f"label: {label_text!r} is not benign/malignant or 0/1") from None
        split = text_field(body, "split", required=False).lower()
        if split and split not in SPLITS:
            raise UserError(f"split: {split!r} is not one of {'/'.join(SPLITS)} (or empty)")
        pairs = key_frames(body, entry.info)
        cell = self.video_cell(entry.path)
        new = [
            {
                "patient_id": patient,
                "nodule_id": nodule,
                "video": cell,
                "center": center,
                "label": str(label),
                "frame": str(frame),
                **{k: format_number(v) for k, v in zip(("x0", "y0", "x1", "y1"), box)},
                "split": split,
            }  # fmt: skip
            for frame, box in sorted(pairs)
        ]

        def edit(rows: list[dict]) -> list[dict]:
            for r in rows:  # the contract: one label per nodule, one split per patient
                if r.get("patient_id") != patient:
                    continue
                same_nodule = (r.get("nodule_id") or r.get("patient_id")) == nodule
                if same_nodule and not _same_video(r.get("video", ""), cell):
                    try:
                        other = parse_label(r.get("label", ""))
                    except ValueError:
                        other = label
                    if other != label:
                        raise UserError(
                            f"label: nodule {nodule} of patient {patient} is already "
                            f"{'malignant' if other else 'benign'} in cohort.csv"
                        )
                if split and r.get("split") and r["split"].lower() != split:
                    raise UserError(
                        f"split: patient {patient} is already in split {r['split']!r} in cohort.csv"
                    )
            kept = [
                r
                for r in rows
                if not (
                    _same_video(r.get("video", ""), cell)
                    and r.get("patient_id") == patient
                    and (r.get("nodule_id") or r.get("patient_id")) == nodule
                )
            ]
            return kept + new

        rows = self.table.change(edit)
        return {"written": [_public(r) for r in new], "rows_in_file": len(rows)}


def _same_video(a: str, b: str) -> bool:
    return a.replace("\\", "/") == b.replace("\\", "/")


def _public(row: dict) -> dict:
    """A cohort row as the page shows it (numbers as numbers)."""
    out = {k: row.get(k, "") for k in COLUMNS}
    for k in ("frame", "x0", "y0", "x1", "y1"):
        try:
            out[k] = float(out[k])
            out[k] = int(out[k]) if out[k].is_integer() else out[k]
        except (TypeError, ValueError):
            pass
    return out
