"""The one `Video` interface every reader implements.

Frames are uint8 arrays of shape (H, W, C) with C = 1 (grey) or 3 (RGB); `frames(indices)`
returns (N, H, W, C). Frame indices are 0-based. Readers decode lazily: opening a video
reads its header only, and `frames` decodes only the frames asked for.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from thyrovid.errors import VideoError


@dataclass(frozen=True)
class VideoInfo:
    """Metadata of a video. Never holds patient identifiers.

    Attributes:
        format: "dicom", "video" (AVI/MP4 via OpenCV) or "frames" (folder of images).
        n_frames: number of frames.
        height, width: frame size in pixels.
        channels: 1 (grey) or 3 (RGB) as delivered by `frame`.
        fps: frames per second, or None when the file does not say.
        pixel_spacing_mm: (row, column) spacing in mm, or None.
        region: imaging region (x0, y0, x1, y1) in pixels, x1/y1 exclusive, or None.
        extra: format-specific items (transfer_syntax, photometric, manufacturer, ...).
    """

    format: str
    n_frames: int
    height: int
    width: int
    channels: int
    fps: float | None = None
    pixel_spacing_mm: tuple[float, float] | None = None
    region: tuple[int, int, int, int] | None = None
    extra: dict = field(default_factory=dict)


class Video(ABC):
    """A lazily decoded video. Use as a context manager or call `close()`."""

    path: str
    info: VideoInfo

    def __len__(self) -> int:
        return self.info.n_frames

    def _check_index(self, i: int) -> int:
        n = self.info.n_frames
        if not isinstance(i, (int, np.integer)) or i < 0 or i >= n:
            raise VideoError(f"{self.path}: frame index {i} out of range (video has {n} frames)")
        return int(i)

    def frame(self, i: int) -> np.ndarray:
        """Decode frame `i` -> (H, W, C) uint8."""
        return self.frames([i])[0]

    def frames(self, indices: Sequence[int]) -> np.ndarray:
        """Decode the frames at `indices` (any order, repeats allowed) -> (N, H, W, C) uint8.

        Each distinct frame is decoded once, in stream order, one decoded frame alive at a time.
        """
        self._check_open()
        wanted = [self._check_index(i) for i in indices]
        info = self.info
        out = np.empty((len(wanted), info.height, info.width, info.channels), np.uint8)
        slots: dict[int, list[int]] = {}
        for k, i in enumerate(wanted):
            slots.setdefault(i, []).append(k)
        for i, frame in self._decode_sorted(sorted(slots)):
            out[slots[i]] = frame
        return out

    def _decode_sorted(self, indices: list[int]) -> Iterator[tuple[int, np.ndarray]]:
        """Yield (i, frame (H, W, C) uint8) for sorted, distinct `indices`."""
        for i in indices:
            yield i, self._read(i)

    @abstractmethod
    def _read(self, i: int) -> np.ndarray:
        """Decode one frame -> (H, W, C) uint8."""

    def _check_open(self) -> None:  # noqa: B027 - readers with a handle override it
        """Raise VideoError when the reader has been closed."""

    def close(self) -> None:  # noqa: B027 - optional for readers with nothing to release
        """Release file handles."""

    def __enter__(self) -> Video:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def to_gray(frames: np.ndarray) -> np.ndarray:
    """Convert (..., H, W, C) uint8 to (..., H, W) uint8 grey (ITU-R BT.601 luma).

    The one explicit grayscale step: ultrasound is grey, colour overlays stay RGB until here.
    """
    if frames.shape[-1] == 1:
        return frames[..., 0]
    rgb = frames[..., :3].astype(np.float32)
    y = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
    return np.clip(np.rint(y), 0, 255).astype(np.uint8)
