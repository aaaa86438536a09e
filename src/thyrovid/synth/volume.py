"""The 3D tissue around one nodule: geometry from its latent features, and the scatterer field.

Coordinates are millimetres: x lateral (0 at the nodule centre, right positive), y depth from the
skin (down positive), z elevation (0 at the nodule centre, the sweep direction). The scatterer
field is complex Gaussian white noise in-plane whose elevational samples are independent at
`ELEVATION_PITCH_MM` and blended in between with a variance-preserving rotation, so speckle
decorrelates smoothly over about one elevational beam width as the probe moves.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

ELEVATION_PITCH_MM = 0.7  # speckle decorrelation length in elevation (~ beam width)


@dataclass
class NoduleGeometry:
    """Shape, echo level and calcifications of one nodule (all lengths in mm).

    Attributes:
        depth: depth of the nodule centre below the skin.
        axes: semi-axes (a lateral, b depth, c elevation).
        harmonics: (k, amplitude, phase, elevation twist) rows of the radial margin perturbation.
        edge: width of the boundary transition in normalised radius units.
        level: echo amplitude of the solid part relative to thyroid parenchyma (1.0).
        halo: thickness of a hypoechoic halo in normalised radius units (0 = none).
        cysts: (m, 4) rows x, y, z, r in normalised nodule units (anechoic spaces).
        micro: (n, 4) rows x, y, z, r of microcalcifications (mm, relative to the centre).
        macro: (n, 7) rows x, y, z, rx, ry, rz, opacity of macrocalcifications.
        rim: 0 none, 1 continuous, 2 interrupted; rim_arc: (start, stop) in-plane angles (rad)
            of the calcified arc, measured from straight up, clockwise; rim_gaps: gap centres.
        lobe: thyroid lobe (x offset, half width, anterior depth, posterior depth) in mm.
        carotid: (x offset, depth, radius) of the common carotid artery, mm.
    """

    depth: float
    axes: tuple[float, float, float]
    harmonics: np.ndarray
    edge: float
    level: float
    halo: float
    cysts: np.ndarray
    micro: np.ndarray
    macro: np.ndarray
    rim: int
    rim_arc: tuple[float, float] = (0.0, 0.0)
    rim_gaps: np.ndarray = field(default_factory=lambda: np.zeros(0))
    lobe: tuple[float, float, float, float] = (0.0, 15.0, 8.0, 30.0)
    carotid: tuple[float, float, float] = (20.0, 18.0, 3.5)


def _points_in_ball(rng: np.random.Generator, n: int, radius: float) -> np.ndarray:
    """(n, 3) points uniform in the ball of `radius` (unit-free)."""
    v = rng.standard_normal((n, 3))
    v /= np.linalg.norm(v, axis=1, keepdims=True) + 1e-12
    return v * radius * rng.random((n, 1)) ** (1 / 3)


def nodule_geometry(features: dict, rng: np.random.Generator) -> NoduleGeometry:
    """Draw a nodule's geometry consistent with its features (see `anatomy`).

    Args:
        features: scalar features of one nodule: composition, echogenicity, taller_than_wide,
            margin, n_micro, n_macro, rim (codes as in `anatomy`).
        rng: the nodule's generator (same seed -> same nodule in every video of it).
    """
    diam = float(np.clip(rng.lognormal(np.log(13.0), 0.3), 7.0, 24.0))
    a = diam / 2
    b = a * (rng.uniform(1.05, 1.35) if features["taller_than_wide"] else rng.uniform(0.55, 0.9))
    b = min(b, 9.0)
    c = a * rng.uniform(0.75, 1.15)
    depth = max(rng.uniform(14.0, 19.0), b + 8.0)
    margin = int(features["margin"])
    if margin == 0:  # smooth
        ks, amps, edge = [2], [rng.uniform(0.01, 0.04)], 0.03
    elif margin == 1:  # ill-defined: smooth shape, blurred boundary
        ks, amps, edge = [2, 3], [0.03, 0.03], 0.12
    elif margin == 2:  # lobulated
        ks = list(rng.choice([3, 4, 5], 2, replace=False))
        amps, edge = list(rng.uniform(0.07, 0.13, 2)), 0.04
    else:  # irregular / extrathyroidal: angular, spiculated
        ks = list(range(2, 15))  # a random jagged outline: many harmonics, decaying as k^-0.8
        amps = list(rng.uniform(0.3, 1.0, len(ks)) * 0.13 * np.array(ks, float) ** -0.8)
        edge = 0.04
        if margin == 4:
            depth = b + rng.uniform(5.5, 6.5)  # abuts and breaches the anterior capsule
    harmonics = np.array(
        [[k, amp, rng.uniform(0, 2 * np.pi), rng.uniform(-2, 2)] for k, amp in zip(ks, amps)]
    )
    level = {1: rng.uniform(0.85, 1.3), 2: rng.uniform(0.3, 0.45), 3: rng.uniform(0.1, 0.17)}[
        int(features["echogenicity"])
    ]
    halo = rng.uniform(0.05, 0.09) if (margin == 0 and rng.random() < 0.5) else 0.0
    comp = int(features["composition"])
    n_cyst = {0: 14, 1: 2, 2: 0}[comp]
    cysts = np.zeros((n_cyst, 4))
    if n_cyst:
        cysts[:, :3] = _points_in_ball(rng, n_cyst, 0.6)
        cysts[:, 3] = (
            rng.uniform(0.08, 0.15, n_cyst) if comp == 0 else rng.uniform(0.25, 0.4, n_cyst)
        )
    n_micro = int(features["n_micro"])
    micro = np.zeros((n_micro, 4))
    if n_micro:
        micro[:, :3] = _points_in_ball(rng, n_micro, 0.85) * np.array([a, b, c])
        micro[:, 3] = rng.uniform(0.1, 0.4, n_micro)
    n_macro = int(features["n_macro"])
    macro = np.zeros((n_macro, 7))
    if n_macro:
        macro[:, :3] = _points_in_ball(rng, n_macro, 0.55) * np.array([a, b, c])
        macro[:, 3] = rng.uniform(1.0, 2.6, n_macro)
        macro[:, 4] = macro[:, 3] * rng.uniform(0.5, 0.9, n_macro)
        macro[:, 5] = rng.uniform(1.0, 2.5, n_macro)
        macro[:, 6] = rng.uniform(2.0, 4.0, n_macro)
    rim = int(features["rim"])
    arc = (-rng.uniform(1.2, 2.2), rng.uniform(1.2, 2.2)) if rim else (0.0, 0.0)
    gaps = rng.uniform(arc[0] + 0.3, arc[1] - 0.3, 2) if rim == 2 else np.zeros(0)
    lobe_half = max(rng.uniform(11.0, 15.0), a + 2.5)
    lobe = (
        rng.uniform(-2.0, 2.0),
        lobe_half,
        min(rng.uniform(7.0, 8.5), depth - b - 0.8),
        max(rng.uniform(27.0, 31.0), depth + b + 2.0),
    )
    side = 1 if rng.random() < 0.5 else -1
    carotid = (
        side * (lobe_half + rng.uniform(3.0, 6.0)),
        lobe[3] - rng.uniform(6.0, 10.0),
        rng.uniform(3.0, 4.0),
    )
    return NoduleGeometry(
        depth,
        (a, b, c),
        harmonics,
        edge,
        level,
        halo,
        cysts,
        micro,
        macro,
        rim,
        arc,
        gaps,
        lobe,
        carotid,
    )


class ScattererField:
    """Elevation-correlated complex Gaussian scatterers on a fixed in-plane pixel grid.

    Slice k (at z = z0 + k * pitch) is white noise drawn from a generator seeded by
    (seed, k), so any slice can be rebuilt on demand, identically, in any order.
    """

    def __init__(
        self,
        seed: tuple[int, ...],
        shape: tuple[int, int],
        z0: float,
        pitch: float = ELEVATION_PITCH_MM,
    ):
        self.seed, self.shape, self.z0, self.pitch = tuple(seed), shape, z0, pitch
        self._cache: dict[int, np.ndarray] = {}

    def _slice(self, k: int) -> np.ndarray:
        if k not in self._cache:
            if len(self._cache) > 8:
                self._cache.pop(next(iter(self._cache)))
            rng = np.random.default_rng((*self.seed, k + 100000))
            # uniform, unit variance: the PSF sums many, so the blurred field is Gaussian (CLT)
            u = rng.random((*self.shape, 2), dtype=np.float32)
            u -= np.float32(0.5)
            u *= np.float32(np.sqrt(12.0))
            self._cache[k] = u
        return self._cache[k]

    def at(self, z: float) -> np.ndarray:
        """Scatterers at elevation `z` mm -> (H, W, 2) float32 (real, imag), unit variance."""
        t = (z - self.z0) / self.pitch
        k = int(np.floor(t))
        phi = (t - k) * np.pi / 2
        return float(np.cos(phi)) * self._slice(k) + float(np.sin(phi)) * self._slice(k + 1)
