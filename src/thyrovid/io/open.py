"""`open_video(path)`: pick the reader for a DICOM file, a video file or a folder of frames."""

from __future__ import annotations

import os
from pathlib import Path

from thyrovid.errors import VideoError
from thyrovid.io.base import Video

VIDEO_SUFFIXES = {".avi", ".mp4", ".mov", ".mkv", ".m4v", ".mpg", ".mpeg", ".wmv"}
DICOM_SUFFIXES = {".dcm", ".dicom", ".dic"}


def is_dicom(path: str | os.PathLike) -> bool:
    """True when `path` ends in .dcm/.dicom/.dic or has the 'DICM' marker at byte 128."""
    if Path(path).suffix.lower() in DICOM_SUFFIXES:
        return True
    try:
        with open(path, "rb") as fp:
            fp.seek(128)
            return fp.read(4) == b"DICM"
    except OSError:
        return False


def open_video(path: str | os.PathLike) -> Video:
    """Open `path` with the right lazy reader.

    Args:
        path: a DICOM file (.dcm, or any name with the 'DICM' marker), an AVI/MP4/MOV/MKV
            file, or a folder of numbered PNG/JPEG frames.

    Returns:
        A `Video`; use it as a context manager so the file is closed.

    Raises:
        VideoError: one line naming the file and the cause (missing, unknown format,
            truncated, not a DICOM, no pixel data, no decoder, empty video).
    """
    p = Path(path)
    if p.is_dir():
        from thyrovid.io.frames import FrameFolder

        return FrameFolder(p)
    if not p.exists():
        raise VideoError(f"{p}: no such file or folder")
    if not p.is_file():
        raise VideoError(f"{p}: not a regular file")
    if is_dicom(p):
        from thyrovid.io.dicom import DicomVideo

        return DicomVideo(p)
    if p.suffix.lower() in VIDEO_SUFFIXES:
        from thyrovid.io.videofile import VideoFile

        return VideoFile(p)
    raise VideoError(
        f"{p}: unrecognised video format (expected DICOM, {'/'.join(sorted(s[1:] for s in VIDEO_SUFFIXES))} "
        "or a folder of numbered PNG/JPEG frames)"
    )
