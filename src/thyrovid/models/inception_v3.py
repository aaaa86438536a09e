"""InceptionV3 (Szegedy et al. 2016) for 2D frames or 3D clips.

Follows Keras ``applications.InceptionV3``: convolutions without bias, BatchNorm without scale
(eps 1e-3), 23,817,352 trainable parameters for 1000 classes. Keras's 'valid' stem and
reductions are 'same'-padded here (a 64 px input would otherwise vanish); parameter counts do not
change. In 3D the factorised 1 x 7 / 7 x 1 (and 1 x 3 / 3 x 1) kernels stay spatial.
Temporal-stride slots: first stem conv, stem pool 1, stem pool 2, mixed3 (reduction A),
mixed8 (reduction B).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import torch
from torch import nn

from thyrovid.models.layers import ConvBNAct, avg_pool, max_pool
from thyrovid.models.network import NetConfig, StagedNet
from thyrovid.models.registry import register


def unit(cfg: NetConfig, in_ch: int, out_ch: int, kernel, stride: int = 1, t_stride: int = 1):
    """conv (no bias) -> BN (no scale) -> ReLU, Keras ``conv2d_bn``; ``out_ch`` at width 1."""
    return ConvBNAct(cfg.dims, in_ch, cfg.ch(out_ch), kernel, stride, t_stride, scale=False)


def chain(cfg: NetConfig, in_ch: int, specs: Sequence[tuple], t_stride: int = 1) -> nn.Sequential:
    """Consecutive units from (out_ch, kernel[, stride]) specs; the last one carries the stride."""
    layers = []
    for i, spec in enumerate(specs):
        out_ch, kernel, stride = (*spec, 1)[:3]
        ts = t_stride if i == len(specs) - 1 else 1
        layers.append(unit(cfg, in_ch, out_ch, kernel, stride, ts))
        in_ch = cfg.ch(out_ch)
    return nn.Sequential(*layers)


class Branches(nn.Module):
    """Parallel branches whose outputs are concatenated along channels."""

    def __init__(self, *branches: nn.Module):
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([b(x) for b in self.branches], dim=1)


class SplitPair(nn.Module):
    """A trunk followed by two parallel 1 x 3 and 3 x 1 units, concatenated (mixed9/10)."""

    def __init__(self, trunk: nn.Module, a: nn.Module, b: nn.Module):
        super().__init__()
        self.trunk, self.a, self.b = trunk, a, b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.trunk(x)
        return torch.cat([self.a(y), self.b(y)], dim=1)


def stem(cfg: NetConfig) -> tuple[list[tuple[str, nn.Module]], int]:
    """The stem shared with InceptionResNetV2: conv-conv-conv, pool, conv-conv, pool (192 ch)."""
    c = partial(unit, cfg)
    d = cfg.dims
    stages = [
        (
            "stem",
            nn.Sequential(
                c(cfg.in_channels, 32, 3, 2, cfg.ts(0)), c(cfg.ch(32), 32, 3), c(cfg.ch(32), 64, 3)
            ),
        ),
        ("pool1", max_pool(d, 3, 2, cfg.ts(1))),
        ("stem2", nn.Sequential(c(cfg.ch(64), 80, 1), c(cfg.ch(80), 192, 3))),
        ("pool2", max_pool(d, 3, 2, cfg.ts(2))),
    ]
    return stages, cfg.ch(192)


def _mixed_a(cfg: NetConfig, in_ch: int, pool_ch: int) -> Branches:
    return Branches(
        chain(cfg, in_ch, [(64, 1)]),
        chain(cfg, in_ch, [(48, 1), (64, 5)]),
        chain(cfg, in_ch, [(64, 1), (96, 3), (96, 3)]),
        nn.Sequential(avg_pool(cfg.dims, 3, 1), unit(cfg, in_ch, pool_ch, 1)),
    )


def _mixed_b(cfg: NetConfig, in_ch: int, mid: int) -> Branches:
    seven = [(mid, 1), (mid, (1, 7)), (192, (7, 1))]
    double = [(mid, 1), (mid, (7, 1)), (mid, (1, 7)), (mid, (7, 1)), (192, (1, 7))]
    return Branches(
        chain(cfg, in_ch, [(192, 1)]),
        chain(cfg, in_ch, seven),
        chain(cfg, in_ch, double),
        nn.Sequential(avg_pool(cfg.dims, 3, 1), unit(cfg, in_ch, 192, 1)),
    )


def _mixed_c(cfg: NetConfig, in_ch: int) -> Branches:
    c384 = cfg.ch(384)
    return Branches(
        chain(cfg, in_ch, [(320, 1)]),
        SplitPair(
            chain(cfg, in_ch, [(384, 1)]),
            unit(cfg, c384, 384, (1, 3)),
            unit(cfg, c384, 384, (3, 1)),
        ),
        SplitPair(
            chain(cfg, in_ch, [(448, 1), (384, 3)]),
            unit(cfg, c384, 384, (1, 3)),
            unit(cfg, c384, 384, (3, 1)),
        ),
        nn.Sequential(avg_pool(cfg.dims, 3, 1), unit(cfg, in_ch, 192, 1)),
    )


def _cat_channels(cfg: NetConfig, *parts: int) -> int:
    return sum(cfg.ch(p) for p in parts)


@register("inception_v3")
def inception_v3(cfg: NetConfig) -> StagedNet:
    """InceptionV3: stem, 3 x mixed A, reduction A, 4 x mixed B, reduction B, 2 x mixed C."""
    stages, ch = stem(cfg)
    blocks: list[tuple[str, nn.Module]] = []
    for i, pool_ch in enumerate((32, 64, 64)):
        blocks.append((f"mixed{i}", _mixed_a(cfg, ch, pool_ch)))
        ch = _cat_channels(cfg, 64, 64, 96, pool_ch)
    ts = cfg.ts(3)
    blocks.append(
        (
            "mixed3",
            Branches(
                chain(cfg, ch, [(384, 3, 2)], ts),
                chain(cfg, ch, [(64, 1), (96, 3), (96, 3, 2)], ts),
                max_pool(cfg.dims, 3, 2, ts),
            ),
        )
    )
    ch = _cat_channels(cfg, 384, 96) + ch
    for i, mid in enumerate((128, 160, 160, 192), start=4):
        blocks.append((f"mixed{i}", _mixed_b(cfg, ch, mid)))
        ch = _cat_channels(cfg, 192, 192, 192, 192)
    ts = cfg.ts(4)
    blocks.append(
        (
            "mixed8",
            Branches(
                chain(cfg, ch, [(192, 1), (320, 3, 2)], ts),
                chain(cfg, ch, [(192, 1), (192, (1, 7)), (192, (7, 1)), (192, 3, 2)], ts),
                max_pool(cfg.dims, 3, 2, ts),
            ),
        )
    )
    ch = _cat_channels(cfg, 320, 192) + ch
    for i in (9, 10):
        blocks.append((f"mixed{i}", _mixed_c(cfg, ch)))
        ch = _cat_channels(cfg, 320, 384, 384, 384, 384, 192)
    stages.append(("mixed", nn.Sequential(*[m for _, m in blocks[:3]])))
    stages.append(("reduction_a", blocks[3][1]))
    stages.append(("mixed_b", nn.Sequential(*[m for _, m in blocks[4:8]])))
    stages.append(("reduction_b", blocks[8][1]))
    stages.append(("mixed_c", nn.Sequential(*[m for _, m in blocks[9:]])))
    return StagedNet(cfg, stages, {"pool1": cfg.ch(64), "pool2": cfg.ch(192)}, ch)
