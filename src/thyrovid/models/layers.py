"""Layer factories that build the same network in 2D (B, C, H, W) or 3D (B, C, T, H, W).

In the manner of MONAI's ``Conv[Conv.CONV, spatial_dims]``: ``Conv[dims]``, ``BatchNorm[dims]``,
``MaxPool[dims]``, ``AvgPool[dims]``, ``AdaptiveAvgPool[dims]``, ``AdaptiveMaxPool[dims]`` give the
torch class for ``dims`` 2 or 3. The helpers below turn a 2D layer description (kernel, stride)
into its 3D twin:

* a square k x k kernel becomes k x k x k; a factorised 1 x 7 / 7 x 1 kernel stays spatial
  (1 x 1 x 7 / 1 x 7 x 1);
* spatial padding is ``(k - 1) // 2`` with zeros, so a stride-s layer maps H to ceil(H / s) and
  never produces a zero-size tensor (Keras 'valid' stems would on 64 px inputs; parameter counts
  do not depend on padding);
* temporal padding of convolutions replicates the edge frames. A clip made of one frame repeated
  then goes through an inflated 3D network exactly as the frame goes through the 2D one
  (see ``inflate.py``); zero padding in time would darken the first and last time steps;
* pools act in time only where they downsample time (temporal kernel 1 when the temporal
  stride is 1).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class LayerFactory:
    """Maps ``dims`` (2 or 3) to a torch layer class: ``Conv[3] is nn.Conv3d``."""

    def __init__(self, name: str, classes: dict[int, type[nn.Module]]):
        self.name = name
        self.classes = classes

    def __getitem__(self, dims: int) -> type[nn.Module]:
        if dims not in self.classes:
            raise ValueError(f"{self.name}: dims must be 2 or 3, got {dims!r}")
        return self.classes[dims]


Conv = LayerFactory("Conv", {2: nn.Conv2d, 3: nn.Conv3d})
BatchNorm = LayerFactory("BatchNorm", {2: nn.BatchNorm2d, 3: nn.BatchNorm3d})
MaxPool = LayerFactory("MaxPool", {2: nn.MaxPool2d, 3: nn.MaxPool3d})
AvgPool = LayerFactory("AvgPool", {2: nn.AvgPool2d, 3: nn.AvgPool3d})
AdaptiveAvgPool = LayerFactory(
    "AdaptiveAvgPool", {2: nn.AdaptiveAvgPool2d, 3: nn.AdaptiveAvgPool3d}
)
AdaptiveMaxPool = LayerFactory(
    "AdaptiveMaxPool", {2: nn.AdaptiveMaxPool2d, 3: nn.AdaptiveMaxPool3d}
)


def pair(value: int | Sequence[int]) -> tuple[int, int]:
    """An int or (h, w) as a (h, w) tuple."""
    if isinstance(value, int):
        return (value, value)
    h, w = value
    return (int(h), int(w))


def temporal_kernel(kernel_2d: int | Sequence[int]) -> int:
    """Temporal depth of the 3D twin of a 2D kernel: k for square k x k, 1 for factorised ones."""
    kh, kw = pair(kernel_2d)
    return kh if kh == kw else 1


def to_nd(spec_2d: int | Sequence[int], dims: int, temporal: int) -> tuple[int, ...]:
    """A 2D (h, w) kernel/stride/padding spec as (h, w) for dims 2 or (temporal, h, w) for dims 3."""
    hw = pair(spec_2d)
    return hw if dims == 2 else (int(temporal), *hw)


class TimePaddedConv3d(nn.Conv3d):
    """Conv3d whose temporal padding replicates the first/last frame (spatial padding: zeros)."""

    def __init__(self, *args, time_pad: int = 0, **kwargs):
        super().__init__(*args, **kwargs)
        self.time_pad = int(time_pad)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.time_pad:
            x = F.pad(x, (0, 0, 0, 0, self.time_pad, self.time_pad), mode="replicate")
        return super().forward(x)


def conv(
    dims: int,
    in_ch: int,
    out_ch: int,
    kernel: int | Sequence[int],
    stride: int | Sequence[int] = 1,
    t_stride: int = 1,
    groups: int = 1,
    bias: bool = False,
    t_kernel: int | None = None,
) -> nn.Module:
    """A 2D or 3D convolution from its 2D description.

    Args:
        dims: 2 or 3.
        in_ch, out_ch: channels.
        kernel: 2D kernel, int or (kh, kw). 3D depth from ``temporal_kernel`` unless ``t_kernel``.
        stride: 2D stride. ``t_stride``: temporal stride (3D only).
        groups: 1, or ``in_ch`` for a depthwise convolution.
        bias: learn an additive bias.

    Returns:
        ``nn.Conv2d`` or ``TimePaddedConv3d``; output size ceil(size / stride) in every axis.
    """
    kh, kw = pair(kernel)
    kt = temporal_kernel(kernel) if t_kernel is None else int(t_kernel)
    padding = ((kh - 1) // 2, (kw - 1) // 2)
    if dims == 2:
        return nn.Conv2d(in_ch, out_ch, (kh, kw), pair(stride), padding, groups=groups, bias=bias)
    return TimePaddedConv3d(
        in_ch,
        out_ch,
        (kt, kh, kw),
        to_nd(stride, 3, t_stride),
        (0, *padding),
        groups=groups,
        bias=bias,
        time_pad=(kt - 1) // 2,
    )


class BiasOnlyBatchNorm(nn.Module):
    """BatchNorm with a learned shift and no learned scale (Keras ``scale=False``)."""

    def __init__(self, dims: int, channels: int, eps: float = 1e-3):
        super().__init__()
        self.dims = dims
        self.bn = BatchNorm[dims](channels, eps=eps, affine=False)
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(x) + self.bias.view(1, -1, *([1] * self.dims))


def norm(dims: int, channels: int, scale: bool = True, eps: float = 1e-3) -> nn.Module:
    """BatchNorm for ``dims``; ``scale=False`` drops the learned gamma as Keras Inception does."""
    if scale:
        return BatchNorm[dims](channels, eps=eps)
    return BiasOnlyBatchNorm(dims, channels, eps=eps)


class ConvBNAct(nn.Sequential):
    """conv -> BatchNorm -> ReLU (ReLU optional), the unit of every architecture here."""

    def __init__(
        self,
        dims: int,
        in_ch: int,
        out_ch: int,
        kernel: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        t_stride: int = 1,
        *,
        act: bool = True,
        bias: bool = False,
        scale: bool = True,
        eps: float = 1e-3,
    ):
        layers = [
            ("conv", conv(dims, in_ch, out_ch, kernel, stride, t_stride, bias=bias)),
            ("bn", norm(dims, out_ch, scale=scale, eps=eps)),
        ]
        if act:
            layers.append(("act", nn.ReLU(inplace=True)))
        super().__init__(OrderedDict(layers))


def max_pool(dims: int, kernel: int = 3, stride: int = 2, t_stride: int = 1) -> nn.Module:
    """k x k max pool (padding k // 2, -inf); in 3D its temporal kernel is k only if t_stride > 1."""
    pad = kernel // 2
    if dims == 2:
        return nn.MaxPool2d(kernel, stride, pad)
    kt = kernel if t_stride > 1 else 1
    return nn.MaxPool3d((kt, kernel, kernel), (t_stride, stride, stride), (kt // 2, pad, pad))


class BlockAvgPool(nn.Module):
    """Non-overlapping average pool (kernel = stride) that pads odd sizes by replicating the edge.

    Equals ceil-mode pooling that leaves padding out of the mean, and also works on a size-1
    axis (where torch's pooling would refuse a kernel larger than the input).
    """

    def __init__(self, kernel: tuple[int, ...]):
        super().__init__()
        self.kernel = tuple(int(k) for k in kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad: list[int] = []
        for k, size in zip(reversed(self.kernel), reversed(x.shape[2:])):
            pad += [0, (-size) % k]
        if any(pad):
            x = F.pad(x, pad, mode="replicate")
        if len(self.kernel) == 2:
            return F.avg_pool2d(x, self.kernel, self.kernel)
        return F.avg_pool3d(x, self.kernel, self.kernel)


class FramewiseAvgPool(nn.Module):
    """k x k 'same' average pool with stride 1 over each frame (padding left out of the mean).

    Works on (B, C, H, W) and (B, C, T, H, W); unlike ``nn.AvgPool3d`` it accepts frames
    smaller than the kernel.
    """

    def __init__(self, kernel: int):
        super().__init__()
        self.kernel = int(kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.kernel
        if x.ndim == 4:
            return F.avg_pool2d(x, k, 1, k // 2, count_include_pad=False)
        b, c, t, h, w = x.shape
        frames = x.transpose(1, 2).reshape(b * t, c, h, w)
        pooled = F.avg_pool2d(frames, k, 1, k // 2, count_include_pad=False)
        return pooled.reshape(b, t, c, h, w).transpose(1, 2)


def avg_pool(dims: int, kernel: int = 3, stride: int = 1, t_stride: int = 1) -> nn.Module:
    """k x k average pool: the Inception branch pool or DenseNet's transition.

    Odd kernels (stride 1, no temporal stride) average each frame over a 'same'-padded window,
    padding left out of the mean. Even kernels must equal the stride (non-overlapping blocks):
    a ``BlockAvgPool`` of (t_stride, k, k) in 3D.
    """
    if kernel % 2 == 0:
        if stride != kernel:
            raise ValueError("even average-pool kernels must equal the stride")
        return BlockAvgPool(to_nd(kernel, dims, t_stride))
    if stride != 1 or t_stride != 1:
        raise ValueError("odd average-pool kernels are only used with stride 1")
    return FramewiseAvgPool(kernel)


class SeparableConv(nn.Sequential):
    """Depthwise (groups = in_ch) then pointwise 1 x 1 convolution, no bias (Keras SeparableConv2D)."""

    def __init__(self, dims: int, in_ch: int, out_ch: int, kernel: int = 3):
        super().__init__(
            OrderedDict(
                {
                    "depthwise": conv(dims, in_ch, in_ch, kernel, groups=in_ch),
                    "pointwise": conv(dims, in_ch, out_ch, 1),
                }
            )
        )


def concat(tensors: list[torch.Tensor]) -> torch.Tensor:
    """Concatenate branch outputs along channels."""
    return torch.cat(tensors, dim=1)
