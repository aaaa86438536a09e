"""The neck around the nodule on a transverse view: skin, fat, strap muscles, thyroid lobe
with its capsule, carotid artery, trachea and deep tissue.

Maps are echo amplitudes relative to thyroid parenchyma (1.0) on the image grid, plus an
attenuation map (per pixel, natural-log units) whose depth integral gives acoustic shadows
(positive) and posterior enhancement (negative, below fluid).
"""

from __future__ import annotations

import cv2
import numpy as np

from thyrovid.synth.volume import NoduleGeometry


def smooth_texture(
    rng: np.random.Generator, shape: tuple[int, int], sigma_px: tuple[float, float]
) -> np.ndarray:
    """Zero-mean, unit-std random texture blurred by (sigma_y, sigma_x) pixels, float32."""
    noise = rng.standard_normal(shape, dtype=np.float32)
    out = cv2.GaussianBlur(
        noise, (0, 0), sigmaX=max(sigma_px[1], 0.3), sigmaY=max(sigma_px[0], 0.3)
    )
    return (out - out.mean()) / (out.std() + 1e-6)


def _band(d: np.ndarray, width: float) -> np.ndarray:
    """1 inside a thin band |d| < width/2 with soft edges, float32."""
    return np.clip(1.0 - np.abs(d) / (0.5 * width + 1e-6), 0.0, 1.0).astype(np.float32)


def background(
    geom: NoduleGeometry, xs: np.ndarray, ys: np.ndarray, spacing: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Amplitude and attenuation maps of the static neck anatomy.

    Args:
        geom: the nodule's geometry (its lobe and carotid placement).
        xs: (W,) lateral positions of the columns, mm relative to the nodule centre.
        ys: (H,) depths of the rows below the skin, mm.
        spacing: pixel spacing, mm.
        rng: the video's generator (textures).

    Returns:
        amp (H, W) float32 (parenchyma = 1), mu (H, W) float32 attenuation per pixel.
    """
    x, y = np.meshgrid(xs.astype(np.float32), ys.astype(np.float32))
    shape = x.shape
    lx, half, ant, post = geom.lobe
    amp = np.full(shape, 0.5, np.float32)
    mu = np.zeros(shape, np.float32)
    # superficial layers: skin, fat with septa, strap muscles with fibre striations
    fat_tex = smooth_texture(rng, shape, (0.25 / spacing, 2.5 / spacing))
    fibre = smooth_texture(rng, shape, (0.12 / spacing, 4.0 / spacing))
    skin_d = 1.4 + 0.2 * np.sin(x / 7.0)
    fascia = 3.3 + 0.4 * np.sin(x / 11.0 + 1.0)
    amp = np.where(y < skin_d, 1.7, amp)
    fat = (y >= skin_d) & (y < fascia)
    amp = np.where(fat, 0.3 * (1 + 1.4 * np.clip(fat_tex, 0, None)), amp)
    # thyroid lobe: rounded anterior surface, tapering posterior surface
    u = (x - lx) / half
    # a superellipse, flatter in front (strap muscles) than behind
    yc, hh = 0.5 * (ant + post), 0.5 * (post - ant)
    v = (y - yc) / hh
    p = np.where(v < 0, 3.0, 2.2)
    level = np.abs(u) ** 2.4 + np.abs(v) ** p  # < 1 inside the lobe
    lobe = level < 1
    muscle = (y >= fascia) & (y < fascia + 4.5) & ~lobe  # strap muscles
    amp = np.where(muscle, 0.2 * (1 + 0.8 * np.clip(fibre, -1, None)), amp)
    deep_tex = smooth_texture(rng, shape, (0.6 / spacing, 1.5 / spacing))
    deep = (y >= fascia) & ~muscle & ~lobe
    amp = np.where(deep, 0.3 * (1 + 0.45 * deep_tex), amp)
    paren_tex = smooth_texture(rng, shape, (0.5 / spacing, 0.5 / spacing))
    amp = np.where(lobe, 1.0 + 0.1 * paren_tex, amp)
    # bright lines: skin surface, fascia, thyroid capsule
    capsule_d = (1 - level) * min(half, hh) / 2.6  # ~ distance to the boundary, mm
    amp += 1.4 * _band(y - 0.15, 0.3) + 0.9 * _band(y - fascia, 0.35)
    amp += 1.3 * _band(capsule_d, 0.35)
    # carotid: anechoic lumen, bright wall, posterior enhancement
    cx, cy, cr = geom.carotid
    d = np.hypot(x - cx, (y - cy) * 1.05)
    lumen = d < cr
    amp = np.where(lumen, 0.02, amp) + 1.3 * _band(d - cr - 0.3, 0.6)
    mu = np.where(lumen, -0.06 * spacing, mu)
    # trachea on the medial side: bright curved air interface, shadow and reverberations
    tx = lx - np.sign(cx - lx) * (half + 6.0)
    ty, tr = ant + 6.0, 9.0
    dt = np.hypot(x - tx, y - ty - tr)
    arc = (np.abs(x - tx) < 0.8 * tr) & (y < ty + tr)
    amp += np.where(arc, 3.0 * _band(dt - tr, 0.7), 0.0)
    air = arc & (dt < tr - 0.35)
    reverb = 1.0 + 4.0 * _band(np.mod(tr - dt, 2.2) - 1.1, 0.5) * np.exp(-(tr - dt) / 6.0)
    amp = np.where(air, 0.1 * reverb, amp)
    mu = np.where(air, 0.03 * spacing, mu)
    return amp.astype(np.float32), mu.astype(np.float32)
