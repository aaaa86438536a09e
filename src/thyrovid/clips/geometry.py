"""The geometry of one clip: its window of frames around the key frame and its box.

Conventions:
- Window: the key frame sits at window index frames // 2; near the ends of the video the
  window is shifted to stay inside it. A video shorter than the window contributes all its
  frames, padded by repeating the first frame (pad_before = (frames - n) // 2 times) and the
  last frame.
- Box: expanded about its centre (aspect kept), rounded to whole pixels, clamped to the
  ultrasound region or the frame. The crop is resized to size x size without keeping its
  aspect ratio (the paper resizes to 224 x 224): cv2.INTER_AREA when shrinking, INTER_LINEAR
  when enlarging.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

CHUNK = 64  # frames decoded per frames() call: bounds memory on long, high-resolution videos


def expand_box(box: Sequence[float], expand: float, bounds: Sequence[int]):
    """Expand `box` (x0, y0, x1, y1) `expand`x about its centre, round, clamp to `bounds`.

    Returns:
        (x0, y0, x1, y1) ints, x1/y1 exclusive, or None when nothing of it is inside `bounds`.
    """
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    hw, hh = (x1 - x0) * expand / 2, (y1 - y0) * expand / 2
    bx0, by0, bx1, by1 = bounds
    out = (
        max(bx0, math.floor(cx - hw + 0.5)),
        max(by0, math.floor(cy - hh + 0.5)),
        min(bx1, math.floor(cx + hw + 0.5)),
        min(by1, math.floor(cy + hh + 0.5)),
    )
    return out if out[2] > out[0] and out[3] > out[1] else None


def clip_window(key_frame: int, n_video: int, frames: int) -> tuple[int, int, int]:
    """The window of `frames` frames around `key_frame` -> (first_frame, n_real, pad_before)."""
    if n_video >= frames:
        first = min(max(key_frame - frames // 2, 0), n_video - frames)
        return first, frames, 0
    return 0, n_video, (frames - n_video) // 2


def padding_note(n_frames: int, frames: int, clips: str = "its clip(s)") -> str:
    """Why a video shorter than the clip is padded, for a warning line naming the video."""
    what = "is a single frame (a still image)" if n_frames == 1 else f"has {n_frames} frames"
    return f"{what}, fewer than the {frames} of a clip: {clips} repeat its first and last frames"


def window_indices(first: int, n_real: int, pad_before: int, frames: int) -> list[int]:
    """Video frame index of each of the `frames` window positions (edges repeated)."""
    return [first + min(max(i - pad_before, 0), n_real - 1) for i in range(frames)]


def resize_crop(crop: np.ndarray, size: int) -> np.ndarray:
    """(h, w) uint8 -> (size, size) uint8; INTER_AREA when shrinking, else INTER_LINEAR."""
    import cv2

    h, w = crop.shape
    if (h, w) == (size, size):
        return np.ascontiguousarray(crop)
    interp = cv2.INTER_AREA if h * w > size * size else cv2.INTER_LINEAR
    return cv2.resize(crop, (size, size), interpolation=interp)
