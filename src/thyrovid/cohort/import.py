"""`thyrovid import {cvat,coco} EXPORT... --videos DIR --out cohort.csv`: box exports -> cohort.csv.

The parsing and the mapping are in `thyrovid.cohort.importers` (this module's name is a Python
keyword: the CLI imports it with importlib, nothing else imports it).
"""

from __future__ import annotations

import sys
from pathlib import Path

from thyrovid.errors import UserError

MAP_HELP = (
    "a CSV with one row per video: video (as the export names it, or its file under --videos, "
    "with or without extension), patient_id, nodule_id, center, label (benign/malignant or 0/1); "
    "all but video optional. Used where the export's own attributes (patient_id, nodule_id, "
    "center, label on the track or box) give none; an attribute and the map that disagree skip "
    "the boxes, naming both"
)


def import_export(
    kind: str,
    exports: list[str | Path],
    videos: str | Path,
    out: str | Path,
    mapping: str | Path | None = None,
    frame_base: int = 0,
    video: str | None = None,
    all_boxes: bool = False,
) -> tuple[list[dict], list[str]]:
    """Read `exports` (kind cvat or coco), write `out` atomically; (rows, problem lines).

    The rows written are checked again with `thyrovid.cohort.schema.read_cohort` (as `extract`
    reads them); what it would skip is added to the problems.
    """
    from thyrovid.cohort.importers import cohort_rows, read_coco_json, read_cvat_xml, read_mapping
    from thyrovid.cohort.schema import read_cohort, write_cohort

    if kind not in ("cvat", "coco"):
        raise UserError(f"format must be cvat or coco, got {kind}")
    if frame_base not in (0, 1):
        raise UserError(f"--frame-base must be 0 or 1, got {frame_base}")
    reader = read_cvat_xml if kind == "cvat" else read_coco_json
    annotations = []
    for export in exports:
        if not Path(export).is_file():
            raise UserError(f"{export}: export file not found")
        annotations += reader(export, keyframes_only=not all_boxes)
    if not annotations:
        raise UserError(f"{', '.join(map(str, exports))}: no boxes in the export")
    rows_map = read_mapping(mapping) if mapping else None
    out = Path(out)
    rows, problems = cohort_rows(annotations, videos, out.parent, rows_map, frame_base, video)
    if not rows:
        raise UserError(
            f"no box could be imported ({len(problems)} problem(s)); the first: "
            f"{problems[0] if problems else 'none'}"
        )
    write_cohort(rows, out)
    problems += [f"{p} (extract would skip it)" for p in read_cohort(out).problems]
    return rows, problems


def add_arguments(parser) -> None:
    """The `thyrovid import` arguments."""
    parser.add_argument("format", choices=("cvat", "coco"),
                        help="cvat: 'CVAT for video 1.1' XML (a task or a project: every task); "
                        "coco: COCO JSON (one video or several: videos/video_id, or "
                        "P03/frame_000012.png file names)")  # fmt: skip
    parser.add_argument("exports", nargs="+", metavar="EXPORT", help="the export file(s)")
    parser.add_argument("--videos", required=True, metavar="DIR",
                        help="the folder holding the videos the export names (searched at any "
                        "depth; P03.mp4 in the export finds P03.dcm)")  # fmt: skip
    parser.add_argument("--out", required=True, metavar="COHORT_CSV",
                        help="cohort.csv to write (video paths relative to it)")  # fmt: skip
    parser.add_argument("--map", metavar="MAPPING_CSV", help=MAP_HELP)
    parser.add_argument(
        "--frame-base", type=int, choices=(0, 1), default=0,
        help="how the export numbers frames: 0 (default; CVAT's and thyrovid's numbering: the "
        "first frame is 0) or 1 (frame images numbered from 1); cohort.csv is always 0-based",
    )  # fmt: skip
    parser.add_argument("--video", metavar="NAME",
                        help="the video of boxes whose export names none (a COCO file of one "
                        "video with frame_000012.png names)")  # fmt: skip
    parser.add_argument("--all-boxes", action="store_true",
                        help="also CVAT's interpolated boxes (default: the key frames drawn)")  # fmt: skip


def run(args) -> int:
    """Import, print each skipped box group on stderr, then one summary line."""
    rows, problems = import_export(
        args.format, args.exports, args.videos, args.out, mapping=args.map,
        frame_base=args.frame_base, video=args.video, all_boxes=args.all_boxes,
    )  # fmt: skip
    for line in problems:
        print(f"skipped: {line}", file=sys.stderr)
    videos = {r["video"] for r in rows}
    nodules = {(r["patient_id"], r["nodule_id"]) for r in rows}
    patients = {r["patient_id"] for r in rows}
    print(
        f"wrote {args.out}: {len(rows)} key frame(s), {len(videos)} video(s), "
        f"{len(nodules)} nodule(s), {len(patients)} patient(s)"
        + (f"; {len(problems)} problem(s) above" if problems else "")
    )
    return 0
