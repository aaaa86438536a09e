"""Importers for annotation-tool exports: CVAT video XML and COCO JSON -> cohort rows.

Each importer reads the boxes drawn on one video and returns cohort rows (dicts with
thyrovid.cohort.schema.COLUMNS keys, x1/y1 exclusive pixels, 0-based frames); write them with
`thyrovid.cohort.schema.write_cohort`. Both are re-exported from `thyrovid.cohort.schema`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from thyrovid.cohort.schema import parse_label
from thyrovid.errors import UserError


def _track_label(name: str, default) -> int:
    try:
        return parse_label(name)
    except ValueError:
        if default is None:
            raise UserError(
                f"annotation label {name!r} is not benign/malignant: pass label=0/1"
            ) from None
        return parse_label(str(default))


def import_cvat_video(
    xml_path: str | os.PathLike,
    video: str,
    patient_id: str,
    center: str,
    label: int | str | None = None,
    nodule_id: str | None = None,
    keyframes_only: bool = True,
) -> list[dict]:
    """Cohort rows from a "CVAT for video 1.1" XML export of one video.

    Each ``<track>`` is one nodule; each ``<box>`` with ``outside="0"`` (and ``keyframe="1"``
    when `keyframes_only`, i.e. the boxes the clinician drew, not CVAT's interpolations) is
    one key frame. CVAT numbers frames within the task; ``start_frame`` and ``frame_filter``
    (``step=K``) from ``<meta>`` map them back to video frames: start_frame + frame * K.

    Args:
        xml_path: the CVAT XML file.
        video: the video path as it should appear in cohort.csv (relative to the CSV).
        patient_id, center: written on every row.
        label: 0/1/benign/malignant, used when a track's label is not itself benign/malignant.
        nodule_id: nodule id for a single track (default patient_id); with several tracks
            nodule ids are ``<nodule_id or patient_id>-t<track id>``.
        keyframes_only: keep only boxes marked keyframe="1".

    Returns:
        Cohort rows (dicts) sorted by nodule then frame; boxes x1/y1 exclusive in pixels.
    """
    import xml.etree.ElementTree as ET

    try:
        root = ET.parse(xml_path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise UserError(f"{xml_path}: not a readable CVAT XML file ({exc})") from None
    start = int(root.findtext(".//meta/task/start_frame", "0") or 0)
    step_text = root.findtext(".//meta/task/frame_filter", "") or ""
    step = int(re.search(r"step\s*=\s*(\d+)", step_text).group(1)) if "step" in step_text else 1
    tracks = root.findall("track")
    if not tracks:
        raise UserError(f"{xml_path}: no <track> elements (is it a 'CVAT for video 1.1' export?)")
    base = nodule_id or patient_id
    rows = []
    for track in tracks:
        tid = track.get("id", str(len(rows)))
        track_label = _track_label(track.get("label", ""), label)
        nid = base if len(tracks) == 1 else f"{base}-t{tid}"
        for box in track.findall("box"):
            if box.get("outside", "0") == "1":
                continue
            if keyframes_only and box.get("keyframe", "1") != "1":
                continue
            rows.append(
                {
                    "patient_id": patient_id,
                    "video": video,
                    "center": center,
                    "nodule_id": nid,
                    "label": track_label,
                    "frame": start + int(box.get("frame")) * step,
                    "x0": float(box.get("xtl")),
                    "y0": float(box.get("ytl")),
                    "x1": float(box.get("xbr")),
                    "y1": float(box.get("ybr")),
                    "split": "",
                }
            )
    return sorted(rows, key=lambda r: (r["nodule_id"], r["frame"]))


def _coco_frame(image: Mapping) -> int:
    for key in ("frame_id", "frame"):
        if key in image:
            return int(image[key])
    digits = re.findall(r"\d+", Path(str(image.get("file_name", ""))).stem)
    if not digits:
        raise UserError(f"COCO image {image.get('id')!r}: no frame number in its file_name")
    return int(digits[-1])


def _is_keyframe(ann: Mapping) -> bool:
    """False only for a box CVAT marks as interpolated (attributes.keyframe false)."""
    value = (ann.get("attributes") or {}).get("keyframe", True)
    return str(value).strip().lower() not in ("false", "0", "")


def import_coco(
    json_path: str | os.PathLike,
    video: str,
    patient_id: str,
    center: str,
    label: int | str | None = None,
    nodule_id: str | None = None,
    keyframes_only: bool = True,
) -> list[dict]:
    """Cohort rows from a COCO JSON box export of the frames of one video.

    The frame index of an image is its ``frame_id`` (or ``frame``) field when present, else the
    last number in its ``file_name`` (CVAT exports ``frame_000123.PNG``). ``bbox`` is COCO's
    ``[x, y, width, height]`` -> x0=x, y0=y, x1=x+width, y1=y+height. Annotations with a
    ``track_id`` (top level or in ``attributes``) are grouped into nodules by it; otherwise by
    category. A category named benign/malignant gives the label, else `label` is used.
    CVAT's COCO export of a video track has a box on every frame, each with a ``keyframe``
    attribute; when `keyframes_only`, boxes whose ``keyframe`` is false (CVAT's
    interpolations) are dropped, as `import_cvat_video` does. Boxes without it are all kept.

    Args and Returns: as `import_cvat_video`.
    """
    import json

    try:
        data = json.loads(Path(json_path).read_text(encoding="utf-8"))
        images = {img["id"]: img for img in data["images"]}
        categories = {c["id"]: c.get("name", str(c["id"])) for c in data.get("categories", [])}
        annotations = [a for a in data["annotations"] if not keyframes_only or _is_keyframe(a)]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{json_path}: not a COCO JSON box export ({exc!r})") from None

    def group(ann):
        tid = ann.get("track_id", (ann.get("attributes") or {}).get("track_id"))
        return f"t{tid}" if tid is not None else categories.get(ann.get("category_id"), "")

    groups = sorted({group(a) for a in annotations})
    base = nodule_id or patient_id
    rows = []
    for ann in annotations:
        x, y, w, h = (float(v) for v in ann["bbox"])
        name = categories.get(ann.get("category_id"), "")
        nid = base if len(groups) == 1 else f"{base}-{group(ann)}"
        rows.append(
            {
                "patient_id": patient_id,
                "video": video,
                "center": center,
                "nodule_id": nid,
                "label": _track_label(name, label),
                "frame": _coco_frame(images[ann["image_id"]]),
                "x0": x,
                "y0": y,
                "x1": x + w,
                "y1": y + h,
                "split": "",
            }
        )
    return sorted(rows, key=lambda r: (r["nodule_id"], r["frame"]))
