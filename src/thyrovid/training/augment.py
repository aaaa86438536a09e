"""Batched augmentation on the training device: one random affine + intensity jitter per clip.

The paper augments with random translation, crop and rotation. Here a whole batch is warped at
once with `F.affine_grid` / `F.grid_sample`: the T frames of a clip are folded into the
channel axis, so one affine per clip moves every frame of it identically (the nodule does not
jump between frames). Intensity jitter (brightness, contrast, gamma) is per clip as well.

The random parameters of a clip are drawn from a generator seeded by (seed, epoch, clip's
dataset index). They therefore do not depend on batch composition, rank count or resume point:
one process and `torchrun --nproc_per_node=N` augment every clip of an epoch identically, and a
resumed run repeats the exact augmentation of an uninterrupted one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

_N_PARAMS = 7  # angle, scale, tx, ty, brightness, contrast, gamma


@dataclass(frozen=True)
class AugmentParams:
    """Ranges of the augmentation (see TrainConfig.aug_*)."""

    translate: float = 0.1  # max shift, fraction of the side
    scale: tuple[float, float] = (0.9, 1.2)  # zoom; >1 crops into the image
    rotate: float = 15.0  # max rotation, degrees
    brightness: float = 0.1  # max additive change, fraction of full scale
    contrast: float = 0.2  # max relative contrast change
    gamma: float = 0.2  # max relative gamma change

    @classmethod
    def from_config(cls, config) -> AugmentParams:
        return cls(
            translate=config.aug_translate,
            scale=tuple(config.aug_scale),
            rotate=config.aug_rotate,
            brightness=config.aug_brightness,
            contrast=config.aug_contrast,
            gamma=config.aug_gamma,
        )


def _clip_seed(seed: int, epoch: int, index: int) -> int:
    """A 63-bit seed from (seed, epoch, index) (SplitMix64 finaliser; distinct inputs mix well)."""
    z = (seed * 0x9E3779B97F4A7C15 + epoch * 0xBF58476D1CE4E5B9 + index * 0x94D049BB133111EB) & (
        2**64 - 1
    )
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & (2**64 - 1)
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & (2**64 - 1)
    return (z ^ (z >> 31)) & (2**63 - 1)


def draw_uniforms(indices: torch.Tensor, seed: int, epoch: int) -> torch.Tensor:
    """Per-clip uniforms in [0, 1), (B, 7) float64 on the CPU, from (seed, epoch, index)."""
    rows = []
    for index in indices.tolist():
        g = torch.Generator().manual_seed(_clip_seed(seed, epoch, int(index)))
        rows.append(torch.rand(_N_PARAMS, generator=g, dtype=torch.float64))
    return torch.stack(rows) if rows else torch.empty(0, _N_PARAMS, dtype=torch.float64)


def affine_matrices(
    u: torch.Tensor, params: AugmentParams, height: int, width: int
) -> torch.Tensor:
    """(B, 2, 3) `affine_grid` matrices (output -> input, normalised coordinates).

    Rotation is done in pixel units so non-square frames are not sheared.
    """
    angle = torch.deg2rad((2 * u[:, 0] - 1) * params.rotate)
    lo, hi = params.scale
    zoom = lo + (hi - lo) * u[:, 1]
    tx = (2 * u[:, 2] - 1) * 2 * params.translate
    ty = (2 * u[:, 3] - 1) * 2 * params.translate
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    aspect = height / width
    theta = torch.stack(
        [
            torch.stack([cos, -sin * aspect, tx], dim=1),
            torch.stack([sin / aspect, cos, ty], dim=1),
        ],
        dim=1,
    )
    return theta


def jitter_intensity(x: torch.Tensor, u: torch.Tensor, params: AugmentParams) -> torch.Tensor:
    """Per-clip contrast (about the clip mean), brightness and gamma; x (B, ...) in [0, 1]."""
    shape = (-1,) + (1,) * (x.dim() - 1)
    brightness = ((2 * u[:, 4] - 1) * params.brightness).view(shape)
    contrast = (1 + (2 * u[:, 5] - 1) * params.contrast).view(shape)
    gamma = torch.exp((2 * u[:, 6] - 1) * math.log1p(params.gamma)).view(shape)
    mean = x.mean(dim=tuple(range(1, x.dim())), keepdim=True)
    x = (x - mean) * contrast + mean + brightness
    return x.clamp(0.0, 1.0).pow(gamma)


def augment_batch(
    x: torch.Tensor, indices: torch.Tensor, seed: int, epoch: int, params: AugmentParams
) -> torch.Tensor:
    """Augment a whole batch on its device.

    Args:
        x: uint8 (B,1,T,H,W) clips or (B,1,H,W) images, on the training device.
        indices: (B,) dataset indices of the clips (seed their parameters).
        seed, epoch: the run's seed and the current epoch.
        params: augmentation ranges.

    Returns:
        float32 tensor of x's shape on the 0..255 scale (feed it to `to_model_input`).
        Pixels moved in from outside the frame are black (0).
    """
    b, c = x.shape[:2]
    h, w = x.shape[-2:]
    u64 = draw_uniforms(indices, seed, epoch)
    u = u64.to(device=x.device, dtype=torch.float32)
    theta = affine_matrices(u64, params, h, w).to(device=x.device, dtype=torch.float32)
    # Fold channels and frames into one axis: the same warp for every frame of a clip.
    planes = x.reshape(b, -1, h, w).to(torch.float32) / 255.0
    grid = F.affine_grid(theta, list(planes.shape), align_corners=False)
    warped = F.grid_sample(planes, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    warped = jitter_intensity(warped, u, params)
    return (warped * 255.0).reshape(x.shape)
