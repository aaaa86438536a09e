"""`thyrovid probe VIDEO [--json]`: print a video's metadata, never patient identifiers.

Fields: format, frames, height, width, channels, fps, pixel_spacing_mm (row, column),
transfer_syntax, photometric, ultrasound_region (x0, y0, x1, y1; x1/y1 exclusive; from
SequenceOfUltrasoundRegions), manufacturer, scan_sector (x0, y0, x1, y1 of the scan sector and
where it came from: "pixels", estimated from 16 spread frames as what changes over time, see
`thyrovid.io.sector`; "dicom", the header's rectangle only, for a still image).
With --header-only no frame is decoded and scan_sector is left out (a frame folder decodes its
first image, a video file its first frame).
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
    "scan_sector",
)


def probe(path, sector: bool = True) -> dict:
    """Metadata of the video at `path` as a dict with the keys in FIELDS (None when unknown).

    Raises:
        VideoError: the file cannot be opened (one line naming the file and the cause).
    """
    from thyrovid.errors import UserError
    from thyrovid.io.sector import video_sector

    scan = None
    with open_video(path) as video:
        info = video.info
        if sector:
            try:
                found = video_sector(video)
                scan = (found.box, found.source) if found is not None else None
            except UserError as exc:  # a sampled frame does not decode: say so, go on
                scan = str(exc).removeprefix(f"{path}: ")
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
        "scan_sector": None
        if scan is None
        else {"note": scan}
        if isinstance(scan, str)
        else {"box": list(scan[0]), "source": scan[1]},
    }


def format_text(meta: dict) -> str:
    """One 'field: value' line per field, '-' for unknown values."""
    lines = [f"{meta['path']}"]
    for key in FIELDS:
        value = meta[key]
        if value is None:
            text = "-"
        elif isinstance(value, dict):
            text = value.get("note") or f"{' '.join(map(str, value['box']))} ({value['source']})"
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
    parser.add_argument(
        "--header-only",
        action="store_true",
        help="read the header only: no frame decoded, no scan sector estimated",
    )


def run(args: argparse.Namespace) -> int:
    meta = probe(args.video, sector=not args.header_only)
    print(json.dumps(meta) if args.json else format_text(meta))
    return 0
