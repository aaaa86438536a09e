"""Registry of architectures and ``build_model``.

An architecture module registers a builder ``fn(cfg: NetConfig) -> StagedNet`` with
``@register("name")``. The five built-in modules are imported on first use, in the paper's order.
"""

from __future__ import annotations

import difflib
import importlib
import re
from collections.abc import Callable, Sequence

from torch import nn

from thyrovid.config import POOLS
from thyrovid.errors import UserError
from thyrovid.models.network import SLOTS, NetConfig, required_frames

_BUILTIN = ("inception_resnet_v2", "xception", "inception_v3", "densenet", "resnet")
#: The paper's order of the architectures (list_models puts these first).
PAPER_ORDER = ("inception_resnet_v2", "xception", "inception_v3", "densenet121", "resnet50")
_REGISTRY: dict[str, Callable[[NetConfig], nn.Module]] = {}


def register(name: str) -> Callable:
    """Decorator: register an architecture builder under ``name``."""

    def wrap(fn: Callable[[NetConfig], nn.Module]) -> Callable[[NetConfig], nn.Module]:
        _REGISTRY[name] = fn
        return fn

    return wrap


def _load_builtin() -> None:
    for module in _BUILTIN:
        importlib.import_module(f"thyrovid.models.{module}")


def list_models() -> list[str]:
    """Registered architecture names, paper order first."""
    _load_builtin()
    rank = {name: i for i, name in enumerate(PAPER_ORDER)}
    return sorted(_REGISTRY, key=lambda name: rank.get(name, len(rank)))


def _closest(name: str, models: Sequence[str]) -> str | None:
    """The registered name a typo most likely meant ("ResNet-50" -> resnet50), or None."""

    def key(text: str) -> str:
        return re.sub(r"[^a-z0-9]", "", str(text).lower())

    keys = {key(m): m for m in models}
    close = difflib.get_close_matches(key(name), keys, n=1, cutoff=0.6)
    return keys[close[0]] if close else None


def _check_strides(temporal_strides: Sequence[int]) -> tuple[int, ...]:
    strides = tuple(int(s) for s in temporal_strides)
    if len(strides) != len(SLOTS) or any(s < 1 for s in strides):
        raise UserError(
            f"temporal_strides must be {len(SLOTS)} integers >= 1 (slots {', '.join(SLOTS)}), "
            f"got {tuple(temporal_strides)}"
        )
    return strides


def build_model(
    name: str,
    dims: int = 3,
    in_channels: int = 1,
    num_classes: int = 1,
    width: float = 1.0,
    dropout: float = 0.5,
    temporal_strides: Sequence[int] = (1, 1, 2, 2, 2),
    attention: bool = False,
    input_frames: int | None = None,
    pool: str = "avg",
) -> nn.Module:
    """Build one of the registered architectures for 2D frames or 3D clips.

    Args:
        name: one of ``list_models()``.
        dims: 3 for clips (B, C, T, H, W), 2 for frames (B, C, H, W).
        in_channels: 1 (grey) or 3.
        num_classes: output logits; 1 = log-odds of malignancy (sigmoid -> P(malignant)).
        width: channel multiplier (channels rounded to multiples of 8, at least 8).
        dropout: dropout probability before the last linear layer.
        temporal_strides: temporal stride of the five downsampling slots (stem, pool 1, pool 2,
            reduction A, reduction B); ignored in 2D. (2, 2, 2, 2, 2) treats time like space;
            (1, 1, 2, 2, 2) keeps 4 time steps of a 32-frame clip.
        attention: insert the calcification attention after the early stages.
        input_frames: frames per clip, if known: checked against the stride policy.
        pool: the head's global pooling: "avg" (the published networks) or "avgmax" (average
            and maximum concatenated; see ``thyrovid.models.network``).

    Returns:
        The model (train mode); ``model.cam_layer`` outputs the last feature map.

    Raises:
        UserError: unknown name, bad option, or a clip too short for the stride policy.
    """
    models = list_models()
    if name not in _REGISTRY:
        hint = _closest(name, models)
        hint = f"did you mean {hint}? " if hint else ""
        raise UserError(f"unknown model {name!r}; {hint}known models: {', '.join(models)}")
    if dims not in (2, 3):
        raise UserError(f"dims must be 2 or 3, got {dims!r}")
    if in_channels < 1 or num_classes < 1 or width <= 0 or not 0 <= dropout < 1:
        raise UserError(
            f"bad model options: in_channels={in_channels}, num_classes={num_classes}, "
            f"width={width}, dropout={dropout}"
        )
    strides = _check_strides(temporal_strides)
    if pool not in POOLS:
        raise UserError(f"pool must be one of {', '.join(POOLS)}, got {pool!r}")
    if dims == 3 and input_frames is not None and input_frames < required_frames(strides):
        raise UserError(
            f"{name} needs >= {required_frames(strides)} frames for temporal strides "
            f"{strides}, got clips of {input_frames} frames; use fewer temporal strides of 2"
        )
    cfg = NetConfig(dims, in_channels, num_classes, float(width), dropout, strides, attention, pool)
    return _REGISTRY[name](cfg)
