"""ResNet50 (He et al. 2016) for 2D frames or 3D clips.

Follows Keras ``applications.ResNet50`` (convolutions with bias, BatchNorm eps 1.001e-5,
25,583,592 trainable parameters at 224 px / 1000 classes), except that a stage's stride sits on
the 3 x 3 convolution rather than the first 1 x 1 (ResNet "v1.5"; same parameter count, no
pixels skipped). Temporal-stride slots: stem conv, stem max pool, stage 2, stage 3, stage 4.
"""

from __future__ import annotations

import torch
from torch import nn

from thyrovid.models.layers import ConvBNAct, max_pool
from thyrovid.models.network import NetConfig, StagedNet
from thyrovid.models.registry import register

EPS = 1.001e-5


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (stride) -> 1x1 (x4 channels), plus an identity or projection shortcut."""

    def __init__(self, cfg: NetConfig, in_ch: int, mid: int, out: int, stride: int, t_stride: int):
        super().__init__()
        d = cfg.dims
        self.conv1 = ConvBNAct(d, in_ch, mid, 1, bias=True, eps=EPS)
        self.conv2 = ConvBNAct(d, mid, mid, 3, stride, t_stride, bias=True, eps=EPS)
        self.conv3 = ConvBNAct(d, mid, out, 1, act=False, bias=True, eps=EPS)
        self.shortcut: nn.Module = nn.Identity()
        if stride > 1 or t_stride > 1 or in_ch != out:
            self.shortcut = ConvBNAct(
                d, in_ch, out, 1, stride, t_stride, act=False, bias=True, eps=EPS
            )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv3(self.conv2(self.conv1(x))) + self.shortcut(x))


def _stage(cfg: NetConfig, in_ch: int, filters: int, blocks: int, stride: int, slot: int | None):
    mid, out = cfg.ch(filters), cfg.ch(4 * filters)
    t_stride = cfg.ts(slot) if slot is not None else 1
    layers = [Bottleneck(cfg, in_ch, mid, out, stride, t_stride)]
    layers += [Bottleneck(cfg, out, mid, out, 1, 1) for _ in range(blocks - 1)]
    return nn.Sequential(*layers), out


@register("resnet50")
def resnet50(cfg: NetConfig) -> StagedNet:
    """ResNet50: stem, stages of 3, 4, 6, 3 bottlenecks; 2048 final channels at width 1."""
    d, stem_ch = cfg.dims, cfg.ch(64)
    stages: list[tuple[str, nn.Module]] = [
        ("stem", ConvBNAct(d, cfg.in_channels, stem_ch, 7, 2, cfg.ts(0), bias=True, eps=EPS)),
        ("pool", max_pool(d, 3, 2, cfg.ts(1))),
    ]
    ch = stem_ch
    attention = {"pool": stem_ch}
    for i, (filters, blocks, stride, slot) in enumerate(
        [(64, 3, 1, None), (128, 4, 2, 2), (256, 6, 2, 3), (512, 3, 2, 4)], start=1
    ):
        stage, ch = _stage(cfg, ch, filters, blocks, stride, slot)
        stages.append((f"layer{i}", stage))
        if i == 1:
            attention["layer1"] = ch
    return StagedNet(cfg, stages, attention, ch)
