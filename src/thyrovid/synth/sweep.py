"""The sonographer's sweep: the probe pose in every frame of a cine clip.

A sweep moves the imaging plane through the nodule along the elevational axis (z, mm), at an
uneven hand speed, sometimes going back and forth, with small lateral and axial hand jitter.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Sweep:
    """Probe pose per frame.

    Attributes:
        z: (T,) float elevational position of the image plane, mm (0 = nodule centre).
        dx: (T,) int lateral hand jitter, pixels (tissue moves right when positive).
        dy: (T,) int axial jitter (probe pressure), pixels.
        kind: "linear" or "back_and_forth".
    """

    z: np.ndarray
    dx: np.ndarray
    dy: np.ndarray
    kind: str


def _smooth_noise(rng: np.random.Generator, n: int, sigma_frames: float) -> np.ndarray:
    """Zero-mean smooth noise with unit standard deviation, (n,)."""
    half = int(3 * sigma_frames) + 1
    kernel = np.exp(-0.5 * (np.arange(-half, half + 1) / sigma_frames) ** 2)
    x = np.convolve(rng.standard_normal(n + 2 * half), kernel / kernel.sum(), mode="valid")
    return (x - x.mean()) / (x.std() + 1e-9)


def make_sweep(
    rng: np.random.Generator, n_frames: int, half_length_mm: float, spacing_mm: float
) -> Sweep:
    """Draw a sweep of `n_frames` across [-half_length, +half_length] mm of elevation.

    Args:
        rng: the video's generator.
        n_frames: T.
        half_length_mm: the plane starts/ends about this far from the nodule centre.
        spacing_mm: pixel spacing, to turn hand jitter (mm) into whole pixels.
    """
    # uneven hand speed: progress is the cumulative sum of a positive, smoothly varying speed
    speed = np.exp(0.35 * _smooth_noise(rng, n_frames, 6.0))
    progress = np.concatenate([[0.0], np.cumsum(speed[:-1])])
    progress /= progress[-1]
    start = -half_length_mm * rng.uniform(0.9, 1.1)
    end = half_length_mm * rng.uniform(0.9, 1.1)
    if rng.random() < 0.3:
        # back and forth: across, then part of the way back
        turn = rng.uniform(0.6, 0.75)
        back = end - (end - start) * rng.uniform(0.3, 0.6)
        z = np.where(
            progress < turn,
            start + (end - start) * progress / turn,
            end + (back - end) * (progress - turn) / (1 - turn),
        )
        kind = "back_and_forth"
    else:
        z = start + (end - start) * progress
        kind = "linear"
    if rng.random() < 0.5:
        z = -z
    z = z + 0.08 * _smooth_noise(rng, n_frames, 2.0)  # tremor in elevation
    jitter_mm = rng.uniform(0.15, 0.5)
    dx = np.rint(jitter_mm * _smooth_noise(rng, n_frames, 5.0) / spacing_mm).astype(int)
    dy = np.rint(0.12 * _smooth_noise(rng, n_frames, 8.0) / spacing_mm).astype(int)
    return Sweep(z=z, dx=dx, dy=dy, kind=kind)
