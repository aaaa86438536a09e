"""AVI / MP4 / MOV / MKV files through OpenCV's VideoCapture (FFmpeg backend).

Frames are decoded in stream order: the wanted indices are sorted, each distinct frame is
decoded once, and the reader seeks (CAP_PROP_POS_FRAMES) only when the next wanted frame is
not close ahead of the current position; short gaps are skipped with `grab()` (no colour
conversion), which is cheaper than a seek that restarts decoding from a key frame.
"""

from __future__ import annotations

import os

import cv2
import numpy as np

from thyrovid.errors import VideoError
from thyrovid.io.base import Video, VideoInfo

# FFmpeg's own log lines ("moov atom not found") would break the one-line error rule; read
# when OpenCV first loads its FFmpeg backend.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

# Skip forward by grabbing when the next wanted frame is at most this many frames ahead.
_MAX_GRAB_GAP = 16


def _capture(path: str) -> cv2.VideoCapture:
    """cv2.VideoCapture with OpenCV's warnings silenced while opening (errors become VideoError)."""
    old = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        return cv2.VideoCapture(path, cv2.CAP_FFMPEG)
    finally:
        cv2.utils.logging.setLogLevel(old)


class VideoFile(Video):
    """A video file read lazily with OpenCV. Frames come out as (H, W, 3) uint8 RGB.

    Args:
        path: an AVI, MP4, MOV or MKV file.

    Raises:
        VideoError: the file cannot be opened, has no frames, or a frame cannot be decoded.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = str(path)
        self._cap = None
        if os.path.getsize(self.path) == 0:
            raise VideoError(f"{self.path}: empty video (the file is empty)")
        self._cap = _capture(self.path)
        if not self._cap.isOpened():
            self._cap.release()
            raise VideoError(
                f"{self.path}: cannot open video (corrupt, truncated or unsupported codec)"
            )
        n = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        ok, first = self._cap.read()
        if n <= 0 or not ok or first is None:
            self._cap.release()
            raise VideoError(f"{self.path}: empty video (no decodable frames)")
        self._pos = 1  # index of the frame the next read() returns
        self._first = first
        fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        fourcc = int(self._cap.get(cv2.CAP_PROP_FOURCC) or 0)
        codec = "".join(chr((fourcc >> 8 * k) & 0xFF) for k in range(4)).strip("\0 ") or None
        self.info = VideoInfo(
            format="video",
            n_frames=n,
            height=first.shape[0],
            width=first.shape[1],
            channels=3,
            fps=fps if fps > 0 else None,
            extra={"codec": codec, "container": os.path.splitext(self.path)[1].lstrip(".").lower()},
        )

    def _check_open(self) -> None:
        if self._cap is None:
            raise VideoError(f"{self.path}: video is closed")

    def _read(self, i: int) -> np.ndarray:
        if i == 0 and self._first is not None:
            return cv2.cvtColor(self._first, cv2.COLOR_BGR2RGB)
        if not (0 <= i - self._pos <= _MAX_GRAB_GAP):
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, i)
            self._pos = i
        while self._pos < i:
            if not self._cap.grab():
                self._fail(i)
            self._pos += 1
        ok, frame = self._cap.read()
        if not ok or frame is None:
            self._fail(i)
        self._pos = i + 1
        if frame.shape[:2] != (self.info.height, self.info.width):
            raise VideoError(
                f"{self.path}: frame {i} has size {frame.shape[1]}x{frame.shape[0]}, not the video's"
            )
        return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)

    def _fail(self, i: int):
        self._pos = -(_MAX_GRAB_GAP + 2)  # unknown position: seek next time
        raise VideoError(
            f"{self.path}: cannot decode frame {i} of {self.info.n_frames} (truncated file or wrong frame count)"
        )

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
            self._first = None
