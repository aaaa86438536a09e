"""InceptionResNetV2 (Szegedy et al. 2017) for 2D frames or 3D clips.

Follows Keras ``applications.InceptionResNetV2``: convolutions without bias and BatchNorm
without scale, except the linear 1 x 1 "up" convolution of each residual block (bias, no BN);
residual scales 0.17 / 0.1 / 0.2; 55,813,192 trainable parameters for 1000 classes. 'valid'
Keras layers are 'same'-padded here (parameter counts unchanged). Temporal-stride slots:
first stem conv, stem pool 1, stem pool 2, mixed_6a (reduction A), mixed_7a (reduction B).
"""

from __future__ import annotations

import torch
from torch import nn

from thyrovid.models.inception_v3 import Branches, chain, stem, unit
from thyrovid.models.layers import avg_pool, conv, max_pool
from thyrovid.models.network import NetConfig, StagedNet
from thyrovid.models.registry import register


class ResidualInception(nn.Module):
    """x + scale * up(concat(branches(x))), then ReLU (none on the very last block).

    Args:
        branches: parallel units, concatenated (``mixed_channels`` channels).
        channels: channels of x; the bias-carrying 1 x 1 "up" conv maps back to them.
    """

    def __init__(
        self,
        dims: int,
        branches: Branches,
        mixed_channels: int,
        channels: int,
        scale: float,
        act: bool = True,
    ):
        super().__init__()
        self.branches = branches
        self.up = conv(dims, mixed_channels, channels, 1, bias=True)
        self.scale = scale
        self.act = nn.ReLU(inplace=True) if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.scale * self.up(self.branches(x)))


def _block35(cfg: NetConfig, ch: int) -> ResidualInception:
    branches = Branches(
        chain(cfg, ch, [(32, 1)]),
        chain(cfg, ch, [(32, 1), (32, 3)]),
        chain(cfg, ch, [(32, 1), (48, 3), (64, 3)]),
    )
    return ResidualInception(cfg.dims, branches, cfg.ch(32) * 2 + cfg.ch(64), ch, 0.17)


def _block17(cfg: NetConfig, ch: int) -> ResidualInception:
    branches = Branches(
        chain(cfg, ch, [(192, 1)]),
        chain(cfg, ch, [(128, 1), (160, (1, 7)), (192, (7, 1))]),
    )
    return ResidualInception(cfg.dims, branches, cfg.ch(192) * 2, ch, 0.1)


def _block8(cfg: NetConfig, ch: int, scale: float = 0.2, act: bool = True) -> ResidualInception:
    branches = Branches(
        chain(cfg, ch, [(192, 1)]),
        chain(cfg, ch, [(192, 1), (224, (1, 3)), (256, (3, 1))]),
    )
    return ResidualInception(cfg.dims, branches, cfg.ch(192) + cfg.ch(256), ch, scale, act)


@register("inception_resnet_v2")
def inception_resnet_v2(cfg: NetConfig) -> StagedNet:
    """InceptionResNetV2: stem, mixed_5b, 10 x block35, mixed_6a, 20 x block17, mixed_7a,
    10 x block8, conv_7b (1536 channels at width 1)."""
    d = cfg.dims
    stages, ch = stem(cfg)
    mixed_5b = Branches(
        chain(cfg, ch, [(96, 1)]),
        chain(cfg, ch, [(48, 1), (64, 5)]),
        chain(cfg, ch, [(64, 1), (96, 3), (96, 3)]),
        nn.Sequential(avg_pool(d, 3, 1), unit(cfg, ch, 64, 1)),
    )
    ch = cfg.ch(96) + cfg.ch(64) + cfg.ch(96) + cfg.ch(64)
    stages.append(("block35", nn.Sequential(mixed_5b, *[_block35(cfg, ch) for _ in range(10)])))
    ts = cfg.ts(3)
    mixed_6a = Branches(
        chain(cfg, ch, [(384, 3, 2)], ts),
        chain(cfg, ch, [(256, 1), (256, 3), (384, 3, 2)], ts),
        max_pool(d, 3, 2, ts),
    )
    stages.append(("reduction_a", mixed_6a))
    ch = 2 * cfg.ch(384) + ch
    stages.append(("block17", nn.Sequential(*[_block17(cfg, ch) for _ in range(20)])))
    ts = cfg.ts(4)
    mixed_7a = Branches(
        chain(cfg, ch, [(256, 1), (384, 3, 2)], ts),
        chain(cfg, ch, [(256, 1), (288, 3, 2)], ts),
        chain(cfg, ch, [(256, 1), (288, 3), (320, 3, 2)], ts),
        max_pool(d, 3, 2, ts),
    )
    stages.append(("reduction_b", mixed_7a))
    ch = cfg.ch(384) + cfg.ch(288) + cfg.ch(320) + ch
    block8 = [_block8(cfg, ch) for _ in range(9)] + [_block8(cfg, ch, 1.0, act=False)]
    stages.append(("block8", nn.Sequential(*block8, unit(cfg, ch, 1536, 1))))
    return StagedNet(cfg, stages, {"pool1": cfg.ch(64), "pool2": cfg.ch(192)}, cfg.ch(1536))
