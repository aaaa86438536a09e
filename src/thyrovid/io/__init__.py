"""Lazy, frame-by-frame video readers behind one `Video` interface.

`open_video(path)` picks the reader: DICOM (.dcm or DICM magic), AVI/MP4 (OpenCV), or a
folder of numbered PNG/JPEG frames.
"""

from thyrovid.io.base import Video, VideoInfo, to_gray

__all__ = ["Video", "VideoInfo", "to_gray", "open_video"]


def open_video(path):
    """Open `path` with the right reader. Raises VideoError with one clear line."""
    from thyrovid.io.open import open_video as _open

    return _open(path)
