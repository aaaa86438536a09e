"""The network frame shared by the five architectures: stages, optional attention, and the head.

An architecture is a list of named stages (the backbone) plus the names of the early stages after
which the calcification attention goes. ``StagedNet`` runs them in order, inserts the attention
modules when ``attention`` is on, and ends with global pooling, dropout and one linear layer
(logits; one logit = log-odds of malignancy by default). The pooling is the published networks'
global average (``pool="avg"``) or, with ``pool="avgmax"``, the average and the maximum over
space (and time) side by side: a sign that fills a few positions of the last feature map (a
focus in plane for 2 of 16 frames) is diluted by the average and kept by the maximum.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from thyrovid.models.attention import CalcificationAttention, calcification_prior
from thyrovid.models.layers import AdaptiveAvgPool, AdaptiveMaxPool

#: The five downsampling slots of the temporal-stride policy, in order.
SLOTS = ("stem", "pool1", "pool2", "reduction_a", "reduction_b")


@dataclass(frozen=True)
class NetConfig:
    """Options every architecture understands (see ``build_model``)."""

    dims: int = 3
    in_channels: int = 1
    num_classes: int = 1
    width: float = 1.0
    dropout: float = 0.5
    temporal_strides: tuple[int, ...] = (1, 1, 2, 2, 2)
    attention: bool = False
    pool: str = "avg"

    def ch(self, channels: int) -> int:
        """``channels`` scaled by ``width``, rounded to a multiple of 8 (at least 8)."""
        return max(8, int(round(channels * self.width / 8)) * 8)

    def ts(self, slot: int) -> int:
        """Temporal stride of downsampling slot ``slot`` (0..4, see ``SLOTS``); 1 in 2D."""
        return int(self.temporal_strides[slot]) if self.dims == 3 else 1


def required_frames(temporal_strides: Sequence[int]) -> int:
    """Fewest input frames for which every temporal downsampling has frames to merge."""
    return math.prod(int(s) for s in temporal_strides)


class StagedNet(nn.Module):
    """Backbone stages -> (attention after early stages) -> global pool -> dropout -> linear.

    Args:
        cfg: the resolved options.
        stages: (name, module) in order; the last one outputs the final feature map.
        attention_points: stage name -> its output channels, where attention is inserted
            (only used when ``cfg.attention``).
        out_channels: channels of the final feature map.

    Input: float (B, C, T, H, W) for dims 3 or (B, C, H, W) for dims 2.
    Output: (B, num_classes) logits.
    """

    def __init__(
        self,
        cfg: NetConfig,
        stages: list[tuple[str, nn.Module]],
        attention_points: dict[str, int],
        out_channels: int,
    ):
        super().__init__()
        self.cfg = cfg
        self.dims = cfg.dims
        self.stages = nn.ModuleDict(stages)
        points = attention_points if cfg.attention else {}
        self.attention = nn.ModuleDict(
            {name: CalcificationAttention(cfg.dims, c) for name, c in points.items()}
        )
        self.pool = AdaptiveAvgPool[cfg.dims](1)
        self.max_pool = AdaptiveMaxPool[cfg.dims](1) if cfg.pool == "avgmax" else None
        self.dropout = nn.Dropout(cfg.dropout)
        head_in = out_channels * (2 if self.max_pool is not None else 1)
        self.fc = nn.Linear(head_in, cfg.num_classes)
        self.out_channels = out_channels
        self.required_frames = required_frames(cfg.temporal_strides) if cfg.dims == 3 else 1
        if not self.fc.weight.is_meta:  # shape-only models (meta device) need no init
            init_weights(self.stages)
            nn.init.normal_(self.fc.weight, std=0.01)
            nn.init.zeros_(self.fc.bias)

    @property
    def cam_layer(self) -> nn.Module:
        """The module whose output is the last spatial(-temporal) feature map (for Grad-CAM)."""
        return self.stages[next(reversed(self.stages.keys()))]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last feature map, (B, out_channels, T', H', W') or (B, out_channels, H', W')."""
        if x.ndim != self.dims + 2:
            shape = "(B, C, T, H, W)" if self.dims == 3 else "(B, C, H, W)"
            raise ValueError(f"expected a {shape} tensor, got shape {tuple(x.shape)}")
        prior = calcification_prior(x, self.dims) if len(self.attention) else None
        for name, stage in self.stages.items():
            x = stage(x)
            if name in self.attention:
                x = self.attention[name](x, prior)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x)
        x = self.pool(f).flatten(1)
        if self.max_pool is not None:
            x = torch.cat([x, self.max_pool(f).flatten(1)], dim=1)
        return self.fc(self.dropout(x))

    def attention_maps(self) -> dict[str, torch.Tensor | None]:
        """The last spatial(-temporal) attention map of each attention module (B, 1, ...)."""
        return {name: m.last_map for name, m in self.attention.items()}


def init_weights(model: nn.Module) -> None:
    """He-normal (fan-out) convolutions with zero biases; BatchNorm keeps torch's 1/0 init."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d | nn.Conv3d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
