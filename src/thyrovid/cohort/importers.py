"""Importers for annotation-tool exports: CVAT video XML and COCO JSON -> cohort rows.

Two layers:

- the parsers `read_cvat_xml` and `read_coco_json` read a whole export (every task / video it
  holds) into `Annotation`s: one drawn box each, with the video, the track, the label name and
  the annotator's attributes as the export has them;
- `cohort_rows` turns them into cohort rows (dicts with thyrovid.cohort.schema.COLUMNS keys,
  x1/y1 exclusive pixels, 0-based frames): the video found under a folder, the patient, nodule,
  centre and label taken from the annotator's attributes or a mapping CSV (`read_mapping`),
  and every box it cannot use named in one line (`ImportProblem`). `thyrovid import` is this.

`import_cvat_video` and `import_coco` are the one-video functions of earlier versions: the
caller gives the video, patient and centre. Write rows with `thyrovid.cohort.schema.write_cohort`.

Nodule ids are kept as the annotator wrote them: a track's (or COCO annotation's) attribute
``nodule_id`` (or ``nodule``). Without one, a video's only track is the nodule given by the
caller or the map (default: the patient id), and each of several tracks ``<that>-t<track id>``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath

from thyrovid.cohort.schema import parse_label
from thyrovid.errors import UserError

# attribute names read from an export (any case, blanks or hyphens inside: see _attr_key)
NODULE_KEYS = ("nodule_id", "nodule")
PATIENT_KEYS = ("patient_id", "patient")
CENTER_KEYS = ("center", "centre", "site", "hospital")
LABEL_KEYS = ("label", "pathology", "malignant")
MAP_COLUMNS = ("video", "patient_id", "nodule_id", "center", "label")


@dataclass
class Annotation:
    """One box drawn in an export.

    Attributes:
        export: the export file's name (for messages).
        video: the video as the export names it ("" when it names none).
        track: the track id (CVAT track, COCO track_id), else the category name.
        label_name: the track's label / the annotation's category name.
        attributes: the annotator's attributes (names as written, values as text).
        frame: the frame number as the export numbers it (see `cohort_rows`' frame_base).
        box: x0, y0, x1, y1 in pixels (x1/y1 exclusive).
    """

    export: str
    video: str
    track: str
    label_name: str
    attributes: dict[str, str]
    frame: int
    box: tuple[float, float, float, float]

    def where(self) -> str:
        video = f"video {self.video}, " if self.video else ""
        return f"{self.export}: {video}track {self.track}"


@dataclass
class ImportProblem:
    """Boxes of one export that were not imported, and why (one line per track and reason)."""

    where: str
    why: str
    boxes: int = 1

    def __str__(self) -> str:
        return f"{self.where}: {self.why}; {self.boxes} box(es) skipped"


@dataclass
class Problems:
    """ImportProblems collected once per (where, why), counting the boxes."""

    items: dict[tuple[str, str], ImportProblem] = field(default_factory=dict)

    def add(self, where: str, why: str) -> None:
        key = (where, why)
        if key in self.items:
            self.items[key].boxes += 1
        else:
            self.items[key] = ImportProblem(where, why)

    def lines(self) -> list[str]:
        return [str(p) for p in self.items.values()]


def _attr_key(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", str(name).strip().lower())


def _attr(attributes: Mapping[str, str], keys: Iterable[str]) -> str:
    """The first non-empty attribute among `keys` (names compared as _attr_key)."""
    norm = {_attr_key(k): str(v).strip() for k, v in attributes.items() if v is not None}
    for key in keys:
        if norm.get(key):
            return norm[key]
    return ""


def _plain(value) -> str:
    """An attribute value as text: JSON true/false as CVAT writes them in XML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# ------------------------------------------------------------------------------- CVAT XML


def read_cvat_xml(path: str | os.PathLike, keyframes_only: bool = True) -> list[Annotation]:
    """Every drawn box of a "CVAT for video 1.1" XML export: one task, or a project's tasks.

    Each ``<track>`` is one nodule; each ``<box>`` with ``outside="0"`` (and ``keyframe="1"``
    when `keyframes_only`: the boxes the clinician drew, not CVAT's interpolations) is one key
    frame. CVAT numbers frames within the task; ``start_frame`` and ``frame_filter``
    (``step=K``) of the task map them back to video frames: start_frame + frame * K. The video
    is the task's ``<source>`` (the uploaded file), else its ``<name>``. In a project export a
    track names its task with ``task_id``. Attributes are the ``<attribute>`` children of the
    track and of its boxes (a box's own win).
    """
    import xml.etree.ElementTree as ET

    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise UserError(f"{path}: not a readable CVAT XML file ({exc})") from None
    tracks = root.findall("track")
    if not tracks:
        raise UserError(f"{path}: no <track> elements (is it a 'CVAT for video 1.1' export?)")
    tasks = {}
    for task in root.findall(".//meta/task") + root.findall(".//meta/project/tasks/task"):
        step_text = task.findtext("frame_filter", "") or ""
        step = re.search(r"step\s*=\s*(\d+)", step_text)
        tasks[(task.findtext("id") or "").strip()] = (
            (task.findtext("source") or task.findtext("name") or "").strip(),
            int((task.findtext("start_frame") or "0").strip() or 0),
            int(step.group(1)) if step else 1,
        )
    out = []
    for track in tracks:
        tid = track.get("id", str(len(out)))
        task = tasks.get(track.get("task_id", "").strip())
        if task is None:
            task = next(iter(tasks.values())) if len(tasks) == 1 else ("", 0, 1)
        video, start, step = task
        common = {a.get("name", ""): (a.text or "") for a in track.findall("attribute")}
        for box in track.findall("box"):
            if box.get("outside", "0") == "1":
                continue
            if keyframes_only and box.get("keyframe", "1") != "1":
                continue
            attrs = {
                **common,
                **{a.get("name", ""): (a.text or "") for a in box.findall("attribute")},
            }
            try:
                frame = start + int(box.get("frame")) * step
                coords = tuple(float(box.get(k)) for k in ("xtl", "ytl", "xbr", "ybr"))
            except (TypeError, ValueError):
                raise UserError(
                    f"{path}: track {tid}: a <box> without numeric frame/xtl/ytl/xbr/ybr"
                ) from None
            out.append(
                Annotation(path.name, video, tid, track.get("label", ""), attrs, frame, coords)
            )
    return out


# ------------------------------------------------------------------------------- COCO JSON


def _coco_frame(image: Mapping) -> int:
    for key in ("frame_id", "frame"):
        if key in image:
            return int(image[key])
    digits = re.findall(r"\d+", PurePosixPath(str(image.get("file_name", ""))).stem)
    if not digits:
        raise UserError(f"COCO image {image.get('id')}: no frame number in its file_name")
    return int(digits[-1])


def _coco_video(image: Mapping, videos: Mapping) -> str:
    """The video of a COCO image: its video_id's entry, its `video` field, else the folder of
    its file_name ("P03/frame_000012.png" -> "P03"); "" when none."""
    if image.get("video_id") is not None and image["video_id"] in videos:
        v = videos[image["video_id"]]
        return str(v.get("name") or v.get("file_name") or v.get("id"))
    if image.get("video"):
        return str(image["video"])
    parent = str(PureWindowsPath(str(image.get("file_name", ""))).parent).replace("\\", "/")
    return "" if parent in (".", "") else parent


def _is_keyframe(ann: Mapping) -> bool:
    """False only for a box CVAT marks as interpolated (attributes.keyframe false)."""
    value = (ann.get("attributes") or {}).get("keyframe", True)
    return str(value).strip().lower() not in ("false", "0", "")


def read_coco_json(path: str | os.PathLike, keyframes_only: bool = True) -> list[Annotation]:
    """Every box of a COCO JSON export, of one video or several.

    The frame of an image is its ``frame_id`` (or ``frame``) field, else the last number in its
    ``file_name`` (CVAT exports ``frame_000123.PNG``); its video is its ``video_id``'s entry in
    ``videos`` (name or file_name), else its ``video`` field, else the folder of its
    ``file_name``. ``bbox`` is ``[x, y, width, height]`` -> x0=x, y0=y, x1=x+width,
    y1=y+height. The track of an annotation is its ``track_id`` (top level or in
    ``attributes``), else its category. CVAT's COCO export of a video track has a box on every
    frame with a ``keyframe`` attribute; when `keyframes_only`, those marked false (CVAT's
    interpolations) are dropped. Attributes: the annotation's ``attributes``.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        images = {img["id"]: img for img in data["images"]}
        videos = {v["id"]: v for v in data.get("videos") or []}
        categories = {c["id"]: c.get("name", str(c["id"])) for c in data.get("categories", [])}
        annotations = list(data["annotations"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        what = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise UserError(
            f"{path}: not a COCO JSON box export ({type(exc).__name__}: {what})"
        ) from None
    out = []
    for ann in annotations:
        if keyframes_only and not _is_keyframe(ann):
            continue
        attrs = {str(k): _plain(v) for k, v in (ann.get("attributes") or {}).items()}
        name = categories.get(ann.get("category_id"), "")
        tid = ann.get("track_id", (ann.get("attributes") or {}).get("track_id"))
        image = images.get(ann.get("image_id"))
        try:
            if image is None:
                raise ValueError(f"image_id {ann.get('image_id')} is no image of the file")
            x, y, w, h = (float(v) for v in ann["bbox"])
        except (KeyError, TypeError, ValueError) as exc:
            raise UserError(f"{path}: annotation {ann.get('id')}: no usable bbox ({exc})") from None
        out.append(
            Annotation(
                path.name,
                _coco_video(image, videos),
                str(tid) if tid is not None else name,
                name,
                attrs,
                _coco_frame(image),
                (x, y, x + w, y + h),
            )
        )
    return out


# --------------------------------------------------------------------------- to cohort rows


def read_mapping(path: str | os.PathLike) -> list[dict[str, str]]:
    """The mapping CSV of `thyrovid import`: one row per video (columns MAP_COLUMNS).

    ``video`` (required): the video as the export names it, or its file under --videos (its
    name, or the name without extension); ``patient_id``, ``nodule_id``, ``center``, ``label``:
    optional, used where the export's attributes give none. Comma, semicolon or tab separated;
    headers ignore case and blanks.
    """
    from thyrovid.csv_input import normalise_column, read_table

    df = read_table(path, "mapping file")[0]
    df.columns = [normalise_column(c) for c in df.columns]
    aliases = {"centre": "center", "patient": "patient_id", "nodule": "nodule_id"}
    df = df.rename(columns={k: v for k, v in aliases.items() if k in df.columns})
    if "video" not in df.columns:
        raise UserError(f"{path}: no column 'video' (columns: {', '.join(df.columns)})")
    keep = [c for c in MAP_COLUMNS if c in df.columns]
    return [{c: str(r[c]).strip() for c in keep} for r in df.to_dict("records")]


def _keys(name: str) -> list[str]:
    """The names a video is matched by: as written, its file name, its file name's stem."""
    p = PurePosixPath(str(name).replace("\\", "/"))
    return list(dict.fromkeys([str(p), p.name, p.stem]))


class _Index:
    """Names -> values; a name shared by two different values is ambiguous (None)."""

    def __init__(self) -> None:
        self.map: dict[str, object] = {}

    def add(self, names: Iterable[str], value) -> None:
        for n in names:
            if n in self.map and self.map[n] is not value and self.map[n] != value:
                self.map[n] = None
            else:
                self.map.setdefault(n, value)

    def find(self, names: Iterable[str]):
        """(value, ambiguous): the first name found decides."""
        for n in names:
            if n in self.map:
                return self.map[n], self.map[n] is None
        return None, False


def video_index(videos_dir: str | os.PathLike) -> _Index:
    """The files under `videos_dir` (any depth), by relative path, name and stem.

    A frame folder (numbered PNG/JPEG frames) counts as one video, by its folder name."""
    root = Path(videos_dir)
    if not root.is_dir():
        raise UserError(f"--videos {root}: not a folder")
    index = _Index()
    frame_exts = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_file() and p.suffix.lower() not in frame_exts and not p.name.startswith("."):
            index.add(_keys(rel), p)
        elif p.is_dir() and any(c.suffix.lower() in frame_exts for c in p.iterdir()):
            index.add(list(dict.fromkeys([rel, p.name])), p)
    return index


def _choose(what: str, export_value: str, map_value: str, parse=str) -> str:
    """The export's value, else the map's; both given and different -> ValueError."""
    if export_value and map_value and parse(export_value) != parse(map_value):
        raise ValueError(f"{what} {export_value} in the export but {map_value} in the map")
    return export_value or map_value


def cohort_rows(
    annotations: Iterable[Annotation],
    videos_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    mapping: list[dict[str, str]] | None = None,
    frame_base: int = 0,
    video: str | None = None,
) -> tuple[list[dict], list[str]]:
    """Cohort rows of an export's boxes, and one line per track and reason for those skipped.

    Args:
        annotations: from `read_cvat_xml` / `read_coco_json`.
        videos_dir: the folder holding the videos; an export's video name is matched to a file
            under it by relative path, file name, or file name without extension (so a CVAT task
            made from P03.mp4 finds P03.dcm).
        out_dir: the folder of the cohort.csv to write (video paths are relative to it).
        mapping: `read_mapping` rows: patient_id, nodule_id, center, label per video, used
            where the export's attributes (patient_id, nodule_id, center, label) give none; an
            attribute and a map entry that disagree skip the box.
        frame_base: 1 when the export numbers frames from 1; rows are 0-based.
        video: the video of the boxes whose export names none.

    Returns:
        (rows sorted by video, nodule, frame; problem lines).
    """
    files = video_index(videos_dir)
    maps = _Index()
    for row in mapping or []:
        maps.add(_keys(row["video"]), row)
    problems = Problems()
    annotations = list(annotations)
    tracks: dict[str, set[str]] = {}
    for a in annotations:
        if not _attr(a.attributes, NODULE_KEYS):
            tracks.setdefault(a.video or video or "", set()).add(a.track)
    rows = []
    out_dir = Path(out_dir).resolve()
    for a in annotations:
        name = a.video or video or ""
        try:
            if not name:
                raise ValueError("the export names no video (give --video)")
            path, ambiguous = files.find(_keys(name))
            if ambiguous:
                raise ValueError(f"two files under --videos match {name}: name it exactly")
            if path is None:
                raise ValueError(f"no video {name} under --videos")
            rel = Path(path).resolve().relative_to(Path(videos_dir).resolve()).as_posix()
            entry, ambiguous = maps.find([*_keys(name), *_keys(rel)])
            if ambiguous:
                raise ValueError(f"two rows of the map match video {name}")
            entry = entry or {}
            patient = _choose(
                "patient_id", _attr(a.attributes, PATIENT_KEYS), entry.get("patient_id", "")
            )
            center = _choose("center", _attr(a.attributes, CENTER_KEYS), entry.get("center", ""))
            if not patient or not center:
                missing = " and ".join(
                    w for w, v in (("patient_id", patient), ("center", center)) if not v
                )
                raise ValueError(f"no {missing} (an attribute of the track or a row of --map)")
            label_text = _attr(a.attributes, LABEL_KEYS)
            if not label_text:
                try:
                    label_text = str(parse_label(a.label_name))
                except ValueError:
                    label_text = ""
            label_text = _choose("label", label_text, entry.get("label", ""), _label)
            if not label_text:
                raise ValueError(
                    f"label {a.label_name!s} is not benign/malignant and no label attribute or "
                    "map label gives it"
                )
            label = _label(label_text)
            nodule = _attr(a.attributes, NODULE_KEYS)
            if not nodule:
                base = entry.get("nodule_id") or patient
                nodule = base if len(tracks.get(name, ())) == 1 else _suffixed(base, a.track)
            x0, y0, x1, y1 = a.box
        except ValueError as exc:
            problems.add(a.where(), str(exc))
            continue
        frame = a.frame - frame_base
        if frame < 0:
            problems.add(a.where(), f"frame {a.frame} is not a {frame_base}-based frame index")
            continue
        if x1 <= x0 or y1 <= y0 or min(x0, y0) < 0:
            problems.add(
                a.where(),
                f"frame {a.frame}: box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) is empty or "
                "starts outside the frame",
            )
            continue
        rows.append(
            {
                "patient_id": patient,
                "nodule_id": nodule,
                "video": Path(os.path.relpath(Path(path).resolve(), out_dir)).as_posix(),
                "center": center,
                "label": label,
                "frame": frame,
                "x0": x0,
                "y0": y0,
                "x1": x1,
                "y1": y1,
                "split": "",
            }
        )
    rows.sort(key=lambda r: (r["video"], r["nodule_id"], r["frame"]))
    return rows, problems.lines()


def _suffixed(base: str, track: str) -> str:
    """The id of one of several unnamed tracks: <base>-t<track id> (or -<category>)."""
    return f"{base}-t{track}" if str(track).isdigit() else f"{base}-{track}"


def _label(text: str) -> int:
    try:
        return parse_label(text)
    except ValueError:
        raise ValueError(f"label {text} is not 0/1 or benign/malignant") from None


# ------------------------------------------------------------------- one video at a time


def _one_video_rows(annotations, video, patient_id, center, label, nodule_id, source) -> list[dict]:
    tracks = {a.track for a in annotations if not _attr(a.attributes, NODULE_KEYS)}
    base = nodule_id or patient_id
    rows = []
    for a in annotations:
        try:
            track_label = parse_label(_attr(a.attributes, LABEL_KEYS) or a.label_name)
        except ValueError:
            if label is None:
                raise UserError(
                    f"{source}: annotation label {a.label_name!r} is not benign/malignant: "
                    "pass label=0/1"
                ) from None
            track_label = parse_label(str(label))
        nid = _attr(a.attributes, NODULE_KEYS) or (
            base if len(tracks) == 1 else _suffixed(base, a.track)
        )
        x0, y0, x1, y1 = a.box
        rows.append(
            {"patient_id": patient_id, "video": video, "center": center, "nodule_id": nid,
             "label": track_label, "frame": a.frame, "x0": x0, "y0": y0, "x1": x1, "y1": y1,
             "split": ""}
        )  # fmt: skip
    return sorted(rows, key=lambda r: (r["nodule_id"], r["frame"]))


def import_cvat_video(
    xml_path: str | os.PathLike,
    video: str,
    patient_id: str,
    center: str,
    label: int | str | None = None,
    nodule_id: str | None = None,
    keyframes_only: bool = True,
) -> list[dict]:
    """Cohort rows from a "CVAT for video 1.1" XML export of one video (`read_cvat_xml`).

    Args:
        xml_path: the CVAT XML file.
        video: the video path as it should appear in cohort.csv (relative to the CSV).
        patient_id, center: written on every row.
        label: 0/1/benign/malignant, used when a track's label is not itself benign/malignant.
        nodule_id: nodule id of an unnamed single track (default patient_id); a track's
            ``nodule_id`` attribute is kept as written; several unnamed tracks are
            ``<nodule_id or patient_id>-t<track id>``.
        keyframes_only: keep only boxes marked keyframe="1".

    Returns:
        Cohort rows (dicts) sorted by nodule then frame; boxes x1/y1 exclusive in pixels.
    """
    anns = read_cvat_xml(xml_path, keyframes_only)
    return _one_video_rows(anns, video, patient_id, center, label, nodule_id, xml_path)


def import_coco(
    json_path: str | os.PathLike,
    video: str,
    patient_id: str,
    center: str,
    label: int | str | None = None,
    nodule_id: str | None = None,
    keyframes_only: bool = True,
) -> list[dict]:
    """Cohort rows from a COCO JSON box export of the frames of one video (`read_coco_json`).

    A category named benign/malignant gives the label, else `label` is used. Args and Returns:
    as `import_cvat_video`.
    """
    anns = read_coco_json(json_path, keyframes_only)
    return _one_video_rows(anns, video, patient_id, center, label, nodule_id, json_path)
