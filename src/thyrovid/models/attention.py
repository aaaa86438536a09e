"""Calcification attention: channel and spatial(-temporal) attention guided by a top-hat prior.

Design (docs/attention.md): microcalcifications are small bright echogenic foci. A white top-hat
of the input (the image minus its morphological opening) keeps bright structures smaller than
the structuring element and removes everything larger (tissue, the nodule, gain changes). This
prior, computed from the input itself with no learned weights, is resized to each attended
feature map and fed, beside the mean and max over channels, to a small convolution that gives a
spatial(-temporal) map; a squeeze-excitation branch gives per-channel weights. The output is
``x * (1 + a_channel * a_spatial)``: never less than the input, close to it at the start.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from thyrovid.models.layers import conv

#: Side of the structuring element of the top-hat, in input pixels (at 224 px).
TOPHAT_KERNEL = 7


def _max_filter(x: torch.Tensor, dims: int, kernel: int) -> torch.Tensor:
    """k x k max filter per frame (-inf padding, so borders are not darkened).

    Separable (rows, then columns) as a running maximum over shifted views: the same numbers
    as ``max_pool2d``/``max_pool3d`` with stride 1, about 10x faster on the CPU (those kernels
    keep argmax indices and do k*k comparisons per pixel); `dims` only names the layout, the
    filter acts on the last two axes either way.
    """
    pad = kernel // 2
    out = x
    for axis in (-1, -2):
        n = out.shape[axis]
        padding = (pad, pad) if axis == -1 else (0, 0, pad, pad)
        padded = F.pad(out, padding, value=float("-inf"))
        out = padded.narrow(axis, 0, n).clone()
        for i in range(1, kernel):
            out = torch.maximum(out, padded.narrow(axis, i, n))
    return out


def white_tophat(gray: torch.Tensor, dims: int, kernel: int = TOPHAT_KERNEL) -> torch.Tensor:
    """``gray - opening(gray)`` per frame: bright foci narrower than ``kernel`` px, >= 0.

    Args:
        gray: (B, 1, H, W) or (B, 1, T, H, W) float.
        dims: 2 or 3.
        kernel: odd side of the square structuring element, pixels.
    """
    eroded = -_max_filter(-gray, dims, kernel)
    opened = _max_filter(eroded, dims, kernel)
    return gray - opened


def calcification_prior(x: torch.Tensor, dims: int, kernel: int = TOPHAT_KERNEL) -> torch.Tensor:
    """The top-hat of the channel-mean image, scaled to [0, 1] per sample.

    Args:
        x: network input, (B, C, H, W) or (B, C, T, H, W) float (any affine normalisation).

    Returns:
        (B, 1, ...) float in [0, 1]; 1 on the brightest small focus of each sample.
    """
    with torch.no_grad():
        tophat = white_tophat(x.mean(1, keepdim=True), dims, kernel)
        peak = tophat.flatten(1).amax(1).view(-1, *([1] * (dims + 1)))
        return tophat / (peak + 1e-6)


def resize_prior(prior: torch.Tensor, size: torch.Size | tuple[int, ...]) -> torch.Tensor:
    """Adaptive max pooling of the prior to a feature map's size (keeps tiny foci visible)."""
    if prior.ndim == 4:
        return F.adaptive_max_pool2d(prior, tuple(size))
    return F.adaptive_max_pool3d(prior, tuple(size))


class CalcificationAttention(nn.Module):
    """Channel (squeeze-excitation) and prior-guided spatial(-temporal) attention.

    Args:
        dims: 2 or 3.
        channels: channels of the attended feature map.
        reduction: squeeze ratio of the channel branch.
        kernel: spatial kernel of the map convolution (temporal kernel 3 in 3D).

    ``forward(x, prior)``: x (B, C, ...) features, prior (B, 1, ...) from ``calcification_prior``
    at input resolution; returns x re-weighted, same shape. ``last_map`` keeps the last spatial
    map (B, 1, ...), values in (0, 1), detached, for figures and Grad-CAM overlays.
    """

    def __init__(self, dims: int, channels: int, reduction: int = 8, kernel: int = 7):
        super().__init__()
        self.dims = dims
        hidden = max(8, channels // reduction)
        self.squeeze = conv(dims, channels, hidden, 1, bias=True)
        self.excite = conv(dims, hidden, channels, 1, bias=True)
        self.spatial = conv(dims, 3, 1, kernel, bias=True, t_kernel=3)
        self.last_map: torch.Tensor | None = None
        self._init_spatial()

    def _init_spatial(self) -> None:
        # Start with the map following the prior: ~0.12 on background, ~0.88 on a focus.
        with torch.no_grad():
            self.spatial.weight.zero_()
            centre = tuple(s // 2 for s in self.spatial.weight.shape[2:])
            self.spatial.weight[(0, 2, *centre)] = 4.0
            self.spatial.bias.fill_(-2.0)

    def channel_weights(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, 1, ...) in (0, 1) from globally pooled features."""
        pooled = x.mean(dim=tuple(range(2, x.ndim)), keepdim=True)
        return torch.sigmoid(self.excite(F.relu(self.squeeze(pooled))))

    def spatial_map(self, x: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        """(B, 1, ...) in (0, 1) from [mean over channels, max over channels, prior]."""
        p = resize_prior(prior.to(x.dtype), x.shape[2:])
        desc = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True), p], dim=1)
        return torch.sigmoid(self.spatial(desc))

    def forward(self, x: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        a_spatial = self.spatial_map(x, prior)
        self.last_map = a_spatial.detach()
        return x * (1 + self.channel_weights(x) * a_spatial)
