"""`thyrovid probe VIDEO [--json]`: print a video's metadata, never patient identifiers.

Fields: format, frames, height, width, channels, fps, pixel_spacing_mm (row, column),
transfer_syntax, photometric, ultrasound_region (x0, y0, x1, y1; x1/y1 exclusive),
manufacturer. Only the header is read; no frame is decoded (a frame folder decodes its first
image, a video file its first frame).
"""

from __future__ import annotations

import argparse
import json

from thyrovid.io import open_video

FIELDS = (
    "format",
    "frames",
    "height",
    "width",
    "channels",
    "fps",
    "pixel_spacing_mm",
    "transfer_syntax",
    "photometric",
    "ultrasound_region",
    "manufacturer",
)


def probe(path) -> dict:
    """Metadata of the video at `path` as a dict with the keys in FIELDS (None when unknown).

    Raises:
        VideoError: the file cannot be opened (one line naming the file and the cause).
    """
    with open_video(path) as video:
        info = video.info
    extra = info.extra
    syntax = extra.get("transfer_syntax")
    if syntax and extra.get("transfer_syntax_name"):
        syntax = f"{syntax} ({extra['transfer_syntax_name']})"
    return {
        "path": str(path),
        "format": info.format,
        "frames": info.n_frames,
        "height": info.height,
        "width": info.width,
        "channels": info.channels,
        "fps": round(info.fps, 4) if info.fps else None,
        "pixel_spacing_mm": [round(v, 6) for v in info.pixel_spacing_mm]
        if info.pixel_spacing_mm
        else None,
        "transfer_syntax": syntax or extra.get("codec"),
        "photometric": extra.get("photometric"),
        "ultrasound_region": list(info.region) if info.region else None,
        "manufacturer": extra.get("manufacturer"),
    }


def format_text(meta: dict) -> str:
    """One 'field: value' line per field, '-' for unknown values."""
    lines = [f"{meta['path']}"]
    for key in FIELDS:
        value = meta[key]
        if value is None:
            text = "-"
        elif isinstance(value, list):
            text = " ".join(str(v) for v in value)
        else:
            text = str(value)
        lines.append(f"  {key + ':':<19}{text}")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "video", help="DICOM file, AVI/MP4/MOV/MKV file, or folder of numbered PNG/JPEG frames"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")


def run(args: argparse.Namespace) -> int:
    meta = probe(args.video)
    print(json.dumps(meta) if args.json else format_text(meta))
    return 0
