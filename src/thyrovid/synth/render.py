"""B-mode rendering of one cine clip: a slice of the 3D tissue at each probe position.

Per frame: echo amplitude map (neck + nodule cross-section at the plane's elevation, with
calcifications) x complex scatterers of that plane -> convolution with the point-spread function
(axial/lateral Gaussian, grain set by the probe frequency) -> envelope (Rayleigh speckle) ->
acoustic shadowing / enhancement (depth-integrated attenuation) -> time-gain compensation error,
electronic noise -> log compression to the center's dynamic range and gain -> uint8.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from thyrovid.synth.profiles import CenterProfile
from thyrovid.synth.sweep import Sweep
from thyrovid.synth.tissue import background, smooth_texture
from thyrovid.synth.volume import NoduleGeometry, ScattererField

MICRO_AMPLITUDE = 14.0  # coherent point reflector strength (parenchyma scatterer rms = 1)
ELEVATION_SIGMA_MM = 0.2  # elevational beam profile (Gaussian sigma) for point targets
VISIBLE = 0.3  # a focus is "visible" (in the mask) when its beam weight exceeds this


@dataclass
class RenderedVideo:
    """Frames and ground truth of one clip, all in imaging-region pixel coordinates.

    Attributes:
        frames: (T, H, W) uint8 B-mode images of the imaging region.
        calc: (T, H, W) bool, any calcification visible (micro, macro, rim).
        micro: (T, H, W) bool, microcalcification foci visible.
        boxes: (T, 4) int32 nodule bounding box x0, y0, x1, y1 (exclusive), -1 when not in plane.
        area: (T,) int32 nodule cross-section area in pixels.
    """

    frames: np.ndarray
    calc: np.ndarray
    micro: np.ndarray
    boxes: np.ndarray
    area: np.ndarray


def psf_sigma_px(profile: CenterProfile, spacing: float) -> tuple[float, float]:
    """(axial, lateral) PSF Gaussian sigma in pixels; speckle grain scales with 1/frequency."""
    f = 12.0 / profile.frequency_mhz
    ax = 0.30 * f / 2.355 / spacing
    lat = 0.55 * f / 2.355 / spacing
    return max(ax, 0.6), max(lat, 0.6)


class NoduleSlicer:
    """Cross-sections of one nodule on a fixed window of the image grid.

    Everything that does not depend on the elevation z (normalised coordinates, the angular
    terms of the margin harmonics, the echo texture) is computed once per video.

    Args:
        geom: the nodule.
        x, y: (h, w) mm coordinates of the window, relative to the nodule centre.
        tex: (h, w) float32 texture (zero mean, unit sd).
        spacing: pixel spacing, mm.
    """

    def __init__(
        self, geom: NoduleGeometry, x: np.ndarray, y: np.ndarray, tex: np.ndarray, spacing: float
    ):
        a, b, _ = geom.axes
        self.geom, self.x, self.y, self.spacing = geom, x, y, spacing
        self.u, self.v = (x / a).astype(np.float32), (y / b).astype(np.float32)
        self.uv2 = self.u**2 + self.v**2
        self.theta = np.arctan2(self.u, -self.v)  # 0 = towards the probe, clockwise positive
        self.harm = [
            (
                amp,
                np.cos(k * self.theta + ph).astype(np.float32),
                np.sin(k * self.theta + ph).astype(np.float32),
                tw,
            )
            for k, amp, ph, tw in geom.harmonics
        ]
        self.amp0 = (geom.level * (1.0 + 0.15 * tex)).astype(np.float32)
        if geom.rim:
            a0, a1 = geom.rim_arc
            arc = (self.theta > a0) & (self.theta < a1)
            for g in geom.rim_gaps:
                arc &= np.abs(self.theta - g) > 0.3
            self.rim_arc = arc

    def at(self, z: float):
        """The cross-section at elevation z mm.

        Returns:
            inside (h, w) float32 in [0, 1], amp (h, w) float32 echo amplitude inside the nodule,
            mu (h, w) float32 attenuation per pixel, calc (h, w) bool (macro + rim pixels).
        """
        g, sp = self.geom, self.spacing
        a, b, c = g.axes
        w = z / c
        r = np.sqrt(self.uv2 + np.float32(w * w))
        radius = np.ones_like(r)
        for amp_k, cos_k, sin_k, tw in self.harm:
            radius += np.float32(amp_k * np.cos(tw * w)) * cos_k
            radius -= np.float32(amp_k * np.sin(tw * w)) * sin_k
        d = radius - r  # > 0 inside
        inside = np.clip(d * np.float32(1 / g.edge) + np.float32(0.5), 0.0, 1.0)
        inside = inside * inside * (3 - 2 * inside)
        amp = self.amp0.copy()
        mu = np.zeros_like(r)
        for cx, cy, cz, cr in g.cysts:
            if abs(w - cz) >= cr:
                continue
            dc = np.sqrt((self.u - cx) ** 2 + (self.v - cy) ** 2 + np.float32((w - cz) ** 2))
            cyst = np.clip((cr - dc) * np.float32(25.0), 0.0, 1.0)
            amp += (0.03 - amp) * cyst
            mu -= np.float32(0.07 * sp) * cyst
        if g.halo:
            amp[(d > 0) & (d < g.halo)] = 0.2
        mu *= inside
        calc = np.zeros(r.shape, bool)
        if g.rim and abs(w) < 0.95:
            shell = self.rim_arc & (d > -0.5 / a) & (d < 0.6 / a)
            amp[shell] = 7.0
            mu[shell] = (1.3 if g.rim == 1 else 0.9) * sp
            calc |= shell
            inside = np.maximum(inside, shell)
        for mx, my, mz, rx, ry, rz, opacity in g.macro:
            t = (z - mz) / rz
            if abs(t) >= 1:
                continue
            s = np.sqrt(1 - t * t)
            e = ((self.x - mx) / (rx * s)) ** 2 + ((self.y - my) / (ry * s)) ** 2
            blob = e < 1
            front = np.clip(1.2 - (self.y[blob] - my) / (ry * s), 0.0, 2.0)  # bright leading edge
            amp[blob] = 4.0 + 4.0 * front
            mu[blob] = opacity / (2 * ry * s) * sp
            calc |= blob
        return inside, amp, mu, calc


def _add_micro(
    field: np.ndarray,
    mask: np.ndarray,
    geom: NoduleGeometry,
    z: float,
    col0: float,
    row0: float,
    spacing: float,
) -> None:
    """Add visible microcalcifications as coherent point reflectors (in place).

    col0/row0: pixel position of the nodule centre on `field`'s grid.
    """
    h, w = mask.shape
    for mx, my, mz, r in geom.micro:
        dz = max(0.0, abs(z - mz) - r)
        weight = float(np.exp(-(dz**2) / (2 * ELEVATION_SIGMA_MM**2)))
        if weight < 0.05:
            continue
        r_in = np.sqrt(max(r * r - (z - mz) ** 2, 0.0)) / spacing
        sig = max(0.45, r_in / 1.5)
        cx, cy = col0 + mx / spacing, row0 + my / spacing
        x0, y0 = int(np.floor(cx)) - 3, int(np.floor(cy)) - 3
        if x0 < 0 or y0 < 0 or x0 + 7 > w or y0 + 7 > h:
            continue
        gy, gx = np.mgrid[y0 : y0 + 7, x0 : x0 + 7]
        blob = np.exp(-((gx - cx) ** 2 + (gy - cy) ** 2) / (2 * sig * sig)).astype(np.float32)
        field[y0 : y0 + 7, x0 : x0 + 7, 0] += MICRO_AMPLITUDE * weight * blob
        if weight >= VISIBLE:
            mask[y0 : y0 + 7, x0 : x0 + 7] |= blob >= 0.3


def render_video(
    geom: NoduleGeometry,
    profile: CenterProfile,
    sweep: Sweep,
    region_hw: tuple[int, int],
    nodule_x_mm: float,
    field_seed: tuple[int, ...],
    rng: np.random.Generator,
) -> RenderedVideo:
    """Render all frames of one clip.

    Args:
        geom: the nodule.
        profile: the center's acquisition profile.
        sweep: the probe pose per frame.
        region_hw: (H, W) of the imaging region in pixels.
        nodule_x_mm: lateral position of the nodule centre relative to the image centre, mm.
        field_seed: seed of the nodule's scatterer field (shared by all clips of the nodule).
        rng: the video's generator (textures, electronic noise).
    """
    hr, wr = region_hw
    spacing = profile.depth_cm * 10.0 / hr
    pad = int(max(np.abs(sweep.dx).max(), np.abs(sweep.dy).max())) + 2
    hp, wp = hr + 2 * pad, wr + 2 * pad
    xs = (np.arange(wp) - pad - wr / 2 + 0.5) * spacing - nodule_x_mm
    ys = (np.arange(hp) - pad + 0.5) * spacing
    bg_amp, bg_mu = background(geom, xs, ys, spacing, rng)
    nod_tex = smooth_texture(rng, (hp, wp), (0.4 / spacing, 0.4 / spacing))
    # nodule window on the padded grid (rows/cols that can hold nodule or its shadow sources)
    a, b, _ = geom.axes
    col0 = (nodule_x_mm + wr / 2 * spacing) / spacing + pad - 0.5
    row0 = geom.depth / spacing + pad - 0.5
    c_lo, c_hi = max(0, int(col0 - 1.45 * a / spacing)), min(wp, int(col0 + 1.45 * a / spacing) + 2)
    r_lo, r_hi = max(0, int(row0 - 1.45 * b / spacing)), min(hp, int(row0 + 1.45 * b / spacing) + 2)
    wx, wy = np.meshgrid(xs[c_lo:c_hi], ys[r_lo:r_hi] - geom.depth)
    slicer = NoduleSlicer(
        geom, wx.astype(np.float32), wy.astype(np.float32), nod_tex[r_lo:r_hi, c_lo:c_hi], spacing
    )
    sig_ax, sig_lat = psf_sigma_px(profile, spacing)
    norm = 2.0 * np.sqrt(np.pi * sig_ax * sig_lat) / np.sqrt(2.0)
    field_src = ScattererField(field_seed, (hp, wp), z0=-60.0)
    # display chain along depth (rows of the region): TGC residual error and a focal-zone lift
    depth_cm = (np.arange(hr) + 0.5) * spacing / 10.0
    focus_cm = geom.depth / 10.0
    gain_db = profile.tgc_slope * (depth_cm - 2.0) + 2.0 * np.exp(
        -((depth_cm - focus_cm) ** 2) / 0.5
    )
    depth_gain2 = (10.0 ** (gain_db / 10.0)).astype(np.float32)[:, None]
    noise2 = ((0.025 * 10.0 ** (0.6 * depth_cm / 4.0)) ** 2).astype(np.float32)[:, None]
    top_db = 22.0 - profile.gain_db
    dr = profile.dynamic_range_db

    # static shadows / enhancement (carotid, trachea) once; the nodule's shadow per frame
    bg_amp = bg_amp * _transmission(bg_mu)
    noise_pool = rng.standard_normal((4, hr + 8, wr + 8, 2), dtype=np.float32)
    strip = (slice(r_lo, hp), slice(c_lo, c_hi))
    top = r_hi - r_lo
    log_scale = np.float32(20.0 / np.log(10.0) * 255.0 / dr / 2.0)  # on ln(env^2)
    offset = np.float32((top_db - dr) * 255.0 / dr)

    n = len(sweep.z)
    frames = np.empty((n, hr, wr), np.uint8)
    calc_m = np.zeros((n, hr, wr), bool)
    micro_m = np.zeros((n, hr, wr), bool)
    boxes = np.full((n, 4), -1, np.int32)
    area = np.zeros(n, np.int32)
    for t in range(n):
        z = float(sweep.z[t])
        amp = bg_amp.copy()
        inside, n_amp, n_mu, n_calc = slicer.at(z)
        col = amp[strip]
        col[:top] = col[:top] * (1 - inside) + n_amp * inside
        mu = np.zeros(col.shape, np.float32)
        mu[:top] = n_mu
        col *= _transmission(mu)
        field = field_src.at(z)
        field *= amp[..., None]
        calc_full = np.zeros((hp, wp), bool)
        calc_full[r_lo:r_hi, c_lo:c_hi] = n_calc
        _add_micro(field, calc_full, geom, z, col0, row0, spacing)
        micro_full = calc_full.copy()
        micro_full[r_lo:r_hi, c_lo:c_hi] &= ~n_calc
        field = cv2.GaussianBlur(field, (0, 0), sigmaX=sig_lat, sigmaY=sig_ax)
        oy, ox = pad - int(sweep.dy[t]), pad - int(sweep.dx[t])
        crop = (slice(oy, oy + hr), slice(ox, ox + wr))
        k, ny, nx = rng.integers(0, 4), rng.integers(0, 8), rng.integers(0, 8)
        noise = noise_pool[k, ny : ny + hr, nx : nx + wr]
        env2 = cv2.magnitude(field[crop][..., 0], field[crop][..., 1]) ** 2 * (norm * norm)
        env2 += (noise[..., 0] ** 2 + noise[..., 1] ** 2) * noise2
        env2 *= depth_gain2
        grey = cv2.log(env2 + np.float32(1e-9)) * log_scale - offset
        frames[t] = np.clip(grey, 0, 255).astype(np.uint8)
        calc_m[t] = calc_full[crop]
        micro_m[t] = micro_full[crop]
        inside_full = np.zeros((hp, wp), bool)
        inside_full[r_lo:r_hi, c_lo:c_hi] = inside > 0.5
        nod = inside_full[crop]
        if nod.any():
            rows = np.flatnonzero(nod.any(1))
            cols = np.flatnonzero(nod.any(0))
            boxes[t] = (cols[0], rows[0], cols[-1] + 1, rows[-1] + 1)
            area[t] = int(nod.sum())
    return RenderedVideo(frames, calc_m, micro_m, boxes, area)


def _transmission(mu: np.ndarray) -> np.ndarray:
    """exp(-attenuation integrated from the skin to just above each pixel), (H, W) float32.

    The lateral edges of shadows are softened by a 1-pixel blur (finite beam width).
    """
    mu = cv2.GaussianBlur(mu, (0, 0), sigmaX=1.0, sigmaY=0.3)
    return np.exp(-np.clip(np.cumsum(mu, axis=0) - mu, -0.6, 6.0)).astype(np.float32)
