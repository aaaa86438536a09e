"""DenseNet121 (Huang et al. 2017) for 2D frames or 3D clips.

Follows Keras ``applications.DenseNet121`` (growth 32, bottleneck 4 x 32, compression 0.5,
blocks of 6, 12, 24, 16 layers, convolutions without bias, BatchNorm eps 1.001e-5; 7,978,856
trainable parameters for 1000 classes). Temporal-stride slots: stem conv, stem max pool,
transitions 1, 2, 3.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from thyrovid.models.layers import ConvBNAct, avg_pool, conv, max_pool, norm
from thyrovid.models.network import NetConfig, StagedNet
from thyrovid.models.registry import register

EPS = 1.001e-5


class DenseLayer(nn.Module):
    """BN-ReLU-conv1x1 (bottleneck) -> BN-ReLU-conv3x3 (growth); output concatenated to input."""

    def __init__(self, dims: int, in_ch: int, bottleneck: int, growth: int):
        super().__init__()
        self.norm1 = norm(dims, in_ch, eps=EPS)
        self.conv1 = conv(dims, in_ch, bottleneck, 1)
        self.norm2 = norm(dims, bottleneck, eps=EPS)
        self.conv2 = conv(dims, bottleneck, growth, 3)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv1(self.act(self.norm1(x)))
        y = self.conv2(self.act(self.norm2(y)))
        return torch.cat([x, y], dim=1)


class Transition(nn.Sequential):
    """BN-ReLU-conv1x1 (halve channels) -> 2x2 average pool, stride 2 (temporal stride per slot)."""

    def __init__(self, dims: int, in_ch: int, out_ch: int, t_stride: int):
        super().__init__(
            OrderedDict(
                {
                    "norm": norm(dims, in_ch, eps=EPS),
                    "act": nn.ReLU(inplace=True),
                    "conv": conv(dims, in_ch, out_ch, 1),
                    "pool": avg_pool(dims, 2, 2, t_stride),
                }
            )
        )


def _block(cfg: NetConfig, in_ch: int, layers: int) -> tuple[nn.Sequential, int]:
    growth, bottleneck = cfg.ch(32), cfg.ch(128)
    modules = []
    for i in range(layers):
        modules.append(DenseLayer(cfg.dims, in_ch + i * growth, bottleneck, growth))
    return nn.Sequential(*modules), in_ch + layers * growth


@register("densenet121")
def densenet121(cfg: NetConfig) -> StagedNet:
    """DenseNet121; 1024 final channels at width 1."""
    d, ch = cfg.dims, cfg.ch(64)
    stages: list[tuple[str, nn.Module]] = [
        ("stem", ConvBNAct(d, cfg.in_channels, ch, 7, 2, cfg.ts(0), eps=EPS)),
        ("pool", max_pool(d, 3, 2, cfg.ts(1))),
    ]
    attention = {"pool": ch}
    for i, n_layers in enumerate((6, 12, 24, 16), start=1):
        block, ch = _block(cfg, ch, n_layers)
        if i == 4:
            block.add_module("norm", norm(d, ch, eps=EPS))
            block.add_module("act", nn.ReLU(inplace=True))
        stages.append((f"block{i}", block))
        if i == 1:
            attention["block1"] = ch
        if i < 4:
            stages.append((f"transition{i}", Transition(d, ch, ch // 2, cfg.ts(i + 1))))
            ch = ch // 2
    return StagedNet(cfg, stages, attention, ch)
