"""Convex-probe (curvilinear) phantom videos: a fan of moving speckle on black, burned-in text.

The default phantom is a linear probe's rectangle; this module writes the other kind a user's
archive holds, for the scan-sector code (`thyrovid.io.sector`, `extract --mask-outside-sector`):
an annular sector (apex above the frame, inner and outer arcs, straight sides), speckle that
moves as the probe sweeps, an anechoic spot that stays dark, and static text both outside the
fan's bounding rectangle and inside it, in the black wedges beside the fan's top. Separate from
`thyrovid synth` (whose output does not change); nothing here is random but the seeded noise.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from thyrovid.synth.dicomwriter import Layout, write_dicom
from thyrovid.synth.profiles import DEFAULT_CENTERS

TEXT_LEVEL = 230  # grey level of the burned-in text


def fan_mask(height: int, width: int, half_angle_deg: float = 32.0) -> np.ndarray:
    """(H, W) bool: the fan of a convex probe, apex above the frame's top centre."""
    cx, cy = width / 2.0, -0.25 * height
    r0, r1 = 0.40 * height, 1.20 * height
    yy, xx = np.mgrid[:height, :width].astype(np.float64)
    r = np.hypot(xx - cx, yy - cy)
    angle = np.degrees(np.arctan2(xx - cx, yy - cy))
    return (r >= r0) & (r <= r1) & (np.abs(angle) <= half_angle_deg) & (yy >= 0.06 * height)


def convex_frames(
    n_frames: int = 24, height: int = 160, width: int = 224, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A convex-probe cine loop.

    Returns:
        frames (T, H, W) uint8; fan (H, W) bool, the scan sector as written; text (H, W) bool,
        the burned-in text pixels (some inside the fan's bounding rectangle, none in the fan).
    """
    rng = np.random.default_rng(seed)
    fan = fan_mask(height, width)
    # A tall field of speckle, smoothed; each frame is a window moved down by 2 px (a sweep).
    field = rng.gamma(1.5, 40.0, size=(height + 2 * n_frames, width)).astype(np.float32)
    field = cv2.GaussianBlur(field, (0, 0), 1.0)
    yy, xx = np.mgrid[:height, :width]
    spot = (yy - 0.65 * height) ** 2 + (xx - 0.45 * width) ** 2 < (0.06 * height) ** 2
    text_img = np.zeros((height, width), np.uint8)
    ys, xs = np.nonzero(fan)
    top = int(ys.min())
    font, scale = cv2.FONT_HERSHEY_PLAIN, max(0.6, height / 260)
    # inside the fan's bounding rectangle, in the black wedges beside its top
    cv2.putText(text_img, "12MHz", (int(xs.min()) + 1, top + 12), font, scale, 255, 1)
    cv2.putText(text_img, "G+2", (int(xs.max()) - 30, top + 12), font, scale, 255, 1)
    # outside it: the banner and the depth
    cv2.putText(text_img, "PHANTOM C5", (2, 9), font, scale * 0.8, 255, 1)
    cv2.putText(text_img, "14cm", (width - 36, height - 4), font, scale * 0.8, 255, 1)
    text = (text_img > 0) & ~cv2.dilate(fan.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(
        bool
    )
    frames = np.zeros((n_frames, height, width), np.uint8)
    for t in range(n_frames):
        img = np.clip(field[2 * t : 2 * t + height], 0, 255)
        img[spot] = 4  # anechoic: dark in every frame
        frame = np.where(fan, img, 0).astype(np.uint8)
        frame[text] = TEXT_LEVEL
        frames[t] = frame
    return frames, fan, text


def write_convex_dicom(
    path: str | Path,
    n_frames: int = 24,
    height: int = 160,
    width: int = 224,
    seed: int = 0,
    regions: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Write a convex-probe phantom DICOM (JPEG Baseline, MONOCHROME2).

    Args:
        regions: write SequenceOfUltrasoundRegions with the fan's bounding rectangle.

    Returns:
        (fan, text) masks as `convex_frames` returns them.
    """
    frames, fan, text = convex_frames(n_frames, height, width, seed)
    ys, xs = np.nonzero(fan)
    layout = Layout(height, width, int(xs.min()), int(ys.min()), int(xs.max()) + 1,
                    int(ys.max()) + 1)  # fmt: skip
    write_dicom(
        Path(path), frames, layout, DEFAULT_CENTERS[0], seed=seed, patient_id="PHC0001",
        patient_name="PHANTOM^CONVEX", study_key=f"convex{seed}", series_key=f"convex{seed}",
        series_number=1, study_date="20240101", regions=regions, transducer="CURVED LINEAR",
    )  # fmt: skip
    return fan, text
