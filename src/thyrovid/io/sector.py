"""The scan sector: the part of a frame that holds the ultrasound image.

A convex (curvilinear) probe's frame is a fan on black, with burned-in text (patient banner,
probe, depth, gain) around it and often inside the fan's bounding rectangle; a linear probe's
is a rectangle. What lies outside the sector is not tissue and should not reach a network.

Where it comes from:
- SequenceOfUltrasoundRegions gives a rectangle (`VideoInfo.region`) when the file has one;
- the pixels give the fan itself: the image changes from frame to frame (speckle moves as the
  probe sweeps), the black wedges and the burned-in text do not. `estimate_sector` takes the
  pixels whose grey level varies over a sample of frames, closes the small gaps (an anechoic
  spot that stays dark for a few frames), keeps the largest connected piece, fills its holes,
  and intersects it with the header's rectangle when there is one.

A still image (one frame, or frames that never change) has no estimate: None.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Grey levels of standard deviation over the sampled frames above which a pixel "moves".
MOVING_STD = 2.0
# Fewer sampled frames than this: no estimate (the variance of 2 frames is too noisy).
MIN_FRAMES = 3


@dataclass(frozen=True)
class Sector:
    """A scan sector.

    Attributes:
        mask: (H, W) bool, True inside the sector, or None when only the rectangle is known.
        box: (x0, y0, x1, y1) bounding rectangle, x1/y1 exclusive.
        source: "pixels" (estimated, within the header's region when it has one) or "dicom"
            (SequenceOfUltrasoundRegions only).
    """

    mask: np.ndarray | None
    box: tuple[int, int, int, int]
    source: str

    @property
    def fraction(self) -> float | None:
        """Share of the frame inside the sector (None without a mask)."""
        return None if self.mask is None else float(self.mask.mean())

    def to_json(self) -> dict:
        frac = self.fraction
        return {
            "box": [int(v) for v in self.box],
            "source": self.source,
            "fraction_of_frame": None if frac is None else round(frac, 4),
        }


def _largest_component(mask: np.ndarray) -> np.ndarray:
    import cv2

    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n <= 1:
        return np.zeros_like(mask, dtype=bool)
    best = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return labels == best


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    """Holes of `mask` (background not connected to the border) filled."""
    import cv2

    h, w = mask.shape
    flood = np.zeros((h + 2, w + 2), np.uint8)
    flood[1:-1, 1:-1] = mask.astype(np.uint8)
    work = flood.copy()
    cv2.floodFill(work, None, (0, 0), 2)  # the border ring (zeros) is connected to (0, 0)
    return (work[1:-1, 1:-1] != 2) | mask


def estimate_sector(
    frames: np.ndarray, region: tuple[int, int, int, int] | None = None
) -> Sector | None:
    """Estimate the scan sector from sampled frames.

    Args:
        frames: (N, H, W) uint8 grey frames spread over the video (N >= MIN_FRAMES).
        region: the header's imaging rectangle (x0, y0, x1, y1), or None.

    Returns:
        Sector with source "pixels", or None for a still image (nothing varies) or too few
        frames; then the header's rectangle (if any) is all that is known.
    """
    import cv2

    frames = np.asarray(frames)
    if frames.ndim != 3 or frames.shape[0] < MIN_FRAMES:
        return None
    h, w = frames.shape[1:]
    std = frames.astype(np.float32).std(axis=0)
    moving = std > MOVING_STD
    if region is not None:
        x0, y0, x1, y1 = region
        inside = np.zeros_like(moving)
        inside[max(y0, 0) : y1, max(x0, 0) : x1] = True
        moving &= inside
    if moving.sum() < 0.01 * h * w:
        return None
    k = max(3, (min(h, w) // 60) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    # Opening first: thin flickering lines (JPEG ringing around text) are not tissue.
    mask = cv2.morphologyEx(moving.astype(np.uint8), cv2.MORPH_OPEN, kernel).astype(bool)
    mask = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_CLOSE, kernel).astype(bool)
    mask = _fill_holes(_largest_component(mask))
    if region is not None:
        mask &= inside
    if not mask.any():
        return None
    ys, xs = np.nonzero(mask)
    box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    return Sector(mask=mask, box=box, source="pixels")


def header_sector(region: tuple[int, int, int, int] | None) -> Sector | None:
    """The header's rectangle as a Sector without a mask (or None)."""
    return None if region is None else Sector(mask=None, box=tuple(region), source="dicom")


def sample_indices(n_frames: int, k: int = 16) -> list[int]:
    """Up to `k` frame indices spread evenly over a video of `n_frames` (ends included)."""
    if n_frames <= k:
        return list(range(n_frames))
    return sorted({int(round(v)) for v in np.linspace(0, n_frames - 1, k)})


def video_sector(video, k: int = 16) -> Sector | None:
    """The sector of an open `Video`: estimated from `k` spread frames, else the header's.

    Raises:
        VideoError: a sampled frame does not decode.
    """
    from thyrovid.io.base import to_gray

    info = video.info
    idx = sample_indices(info.n_frames, k)
    est = estimate_sector(to_gray(video.frames(idx)), info.region)
    return est or header_sector(info.region)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boolean masks."""
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0
