"""Xception (Chollet 2017) for 2D frames or 3D clips.

Follows Keras ``applications.Xception``: convolutions and separable convolutions (depthwise
3 x 3 + pointwise 1 x 1) without bias, BatchNorm with scale (eps 1e-3); 22,855,952 trainable
parameters for 1000 classes. 'valid' stem convs are 'same'-padded here. Temporal-stride slots:
block1 first conv, blocks 2, 3, 4 (entry flow) and block 13 (exit flow).
"""

from __future__ import annotations

import torch
from torch import nn

from thyrovid.models.layers import ConvBNAct, SeparableConv, max_pool, norm
from thyrovid.models.network import NetConfig, StagedNet
from thyrovid.models.registry import register


def _sep_bn(dims: int, in_ch: int, out_ch: int, relu_first: bool) -> list[nn.Module]:
    """[ReLU ->] separable conv -> BN (ReLU not in place: the shortcut still needs its input)."""
    layers: list[nn.Module] = [nn.ReLU()] if relu_first else []
    return layers + [SeparableConv(dims, in_ch, out_ch), norm(dims, out_ch)]


class DownBlock(nn.Module):
    """[ReLU] sep-BN, ReLU sep-BN, 3 x 3 max pool stride 2, plus a strided 1 x 1 conv-BN shortcut."""

    def __init__(
        self, dims: int, in_ch: int, mid: int, out_ch: int, t_stride: int, relu_first: bool
    ):
        super().__init__()
        body = _sep_bn(dims, in_ch, mid, relu_first) + _sep_bn(dims, mid, out_ch, True)
        self.body = nn.Sequential(*body)
        self.pool = max_pool(dims, 3, 2, t_stride)
        self.shortcut = ConvBNAct(dims, in_ch, out_ch, 1, 2, t_stride, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.body(x)) + self.shortcut(x)


class MiddleBlock(nn.Module):
    """Three (ReLU, sep-BN) units with an identity shortcut."""

    def __init__(self, dims: int, ch: int):
        super().__init__()
        body = []
        for _ in range(3):
            body += [nn.ReLU(), SeparableConv(dims, ch, ch), norm(dims, ch)]
        self.body = nn.Sequential(*body)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ExitConvs(nn.Sequential):
    """sep 1536 -> BN -> ReLU -> sep 2048 -> BN -> ReLU (the last feature map)."""

    def __init__(self, dims: int, in_ch: int, mid: int, out_ch: int):
        super().__init__(
            SeparableConv(dims, in_ch, mid),
            norm(dims, mid),
            nn.ReLU(inplace=True),
            SeparableConv(dims, mid, out_ch),
            norm(dims, out_ch),
            nn.ReLU(inplace=True),
        )


@register("xception")
def xception(cfg: NetConfig) -> StagedNet:
    """Xception: entry flow (block 1-4), middle flow (8 x block), exit flow (block 13-14)."""
    d, c = cfg.dims, cfg.ch
    block1 = nn.Sequential(
        ConvBNAct(d, cfg.in_channels, c(32), 3, 2, cfg.ts(0)), ConvBNAct(d, c(32), c(64), 3)
    )
    stages: list[tuple[str, nn.Module]] = [
        ("block1", block1),
        ("block2", DownBlock(d, c(64), c(128), c(128), cfg.ts(1), relu_first=False)),
        ("block3", DownBlock(d, c(128), c(256), c(256), cfg.ts(2), relu_first=True)),
        ("block4", DownBlock(d, c(256), c(728), c(728), cfg.ts(3), relu_first=True)),
        ("middle", nn.Sequential(*[MiddleBlock(d, c(728)) for _ in range(8)])),
        ("block13", DownBlock(d, c(728), c(728), c(1024), cfg.ts(4), relu_first=True)),
        ("block14", ExitConvs(d, c(1024), c(1536), c(2048))),
    ]
    return StagedNet(cfg, stages, {"block1": c(64), "block2": c(128)}, c(2048))
