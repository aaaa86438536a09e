"""A folder of numbered PNG/JPEG frames read as one video.

Files are ordered by the last number in their names (natural order: frame2 before frame10);
names without a number are ignored. Frame i is the i-th file in that order, decoded on demand.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import cv2
import numpy as np

from thyrovid.errors import VideoError
from thyrovid.io.base import Video, VideoInfo, to_gray

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}
_NUMBER = re.compile(r"(\d+)(?!.*\d)")


def numbered_images(folder: Path) -> list[Path]:
    """PNG/JPEG files in `folder` with a number in their name, in numeric order."""
    found = []
    for p in folder.iterdir():
        if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file():
            m = _NUMBER.search(p.stem)
            if m:
                found.append((int(m.group(1)), p.name, p))
    return [p for _, _, p in sorted(found)]


def read_image(path: Path) -> np.ndarray:
    """One image file -> (H, W, 1) grey or (H, W, 3) RGB uint8 (alpha dropped, 16-bit -> 8-bit)."""
    data = np.fromfile(path, np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None:
        raise VideoError(f"{path}: cannot decode image (corrupt or not PNG/JPEG)")
    if img.dtype == np.uint16:
        img = np.rint(img.astype(np.float32) * (255.0 / 65535.0)).astype(np.uint8)
    elif img.dtype != np.uint8:
        raise VideoError(f"{path}: unsupported image type {img.dtype}")
    if img.ndim == 2:
        return img[..., None]
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


class FrameFolder(Video):
    """Numbered PNG/JPEG frames in a folder, decoded on demand.

    Channels (1 or 3) and size come from the first frame; every frame must match them.

    Args:
        folder: the folder.

    Raises:
        VideoError: no numbered images, or a frame that cannot be decoded or does not match.
    """

    def __init__(self, folder: str | os.PathLike):
        self.path = str(folder)
        self._files = numbered_images(Path(folder))
        if not self._files:
            raise VideoError(
                f"{self.path}: empty video (no numbered PNG/JPEG frames in the folder)"
            )
        first = read_image(self._files[0])
        self.info = VideoInfo(
            format="frames",
            n_frames=len(self._files),
            height=first.shape[0],
            width=first.shape[1],
            channels=first.shape[2],
            extra={"first_file": self._files[0].name, "last_file": self._files[-1].name},
        )

    def _read(self, i: int) -> np.ndarray:
        path = self._files[i]
        img = read_image(path)
        if img.shape[:2] != (self.info.height, self.info.width):
            raise VideoError(
                f"{path}: frame size {img.shape[1]}x{img.shape[0]} differs from the first frame's "
                f"{self.info.width}x{self.info.height}"
            )
        if img.shape[2] != self.info.channels:
            # Mixed grey/colour frames: deliver the first frame's layout.
            img = to_gray(img)[..., None] if self.info.channels == 1 else np.repeat(img, 3, axis=2)
        return img
