"""I3D-style inflation of trained 2D weights into the 3D twin of the same architecture.

Each 2D kernel (O, I, kh, kw) is repeated along a new temporal axis to the 3D kernel's depth kt
and divided by kt (Carreira & Zisserman 2017), so a clip made of one frame repeated gives the
3D network the same activations as the frame gives the 2D network. Factorised kernels (kt = 1)
are copied. A 3-channel stem becomes a 1-channel one by summing over colour (grey input equals
R = G = B), and a 1-channel stem becomes 3-channel by spreading it over colours (/ 3).
BatchNorm statistics, biases and linear layers are copied. The equality is exact because
temporal padding replicates edge frames (``layers.TimePaddedConv3d``) and pools pad with
-inf or leave padding out of the mean.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from thyrovid.errors import UserError


def _inflate_kernel(key: str, w2: torch.Tensor, shape3: torch.Size) -> torch.Tensor:
    """(O, I, kh, kw) -> (O, I', kt, kh, kw) for the target shape ``shape3``."""
    out_ch, in_ch, kt, kh, kw = shape3
    if w2.shape[0] != out_ch or tuple(w2.shape[2:]) != (kh, kw):
        raise UserError(f"cannot inflate {key}: 2D shape {tuple(w2.shape)} vs 3D {tuple(shape3)}")
    if w2.shape[1] != in_ch:
        if w2.shape[1] == 3 and in_ch == 1:
            w2 = w2.sum(1, keepdim=True)
        elif w2.shape[1] == 1 and in_ch == 3:
            w2 = w2.repeat(1, 3, 1, 1) / 3
        else:
            raise UserError(f"cannot inflate {key}: {w2.shape[1]} input channels vs {in_ch}")
    return w2.unsqueeze(2).repeat(1, 1, kt, 1, 1) / kt


def inflate_2d_to_3d(
    state_dict_2d: Mapping[str, torch.Tensor], model_3d: nn.Module
) -> dict[str, torch.Tensor]:
    """A state dict for ``model_3d`` made from the 2D network's ``state_dict_2d``.

    Both must come from ``build_model`` with the same name, width, number of classes and
    attention flag (``in_channels`` may differ: 3 -> 1 or 1 -> 3).

    Args:
        state_dict_2d: the trained 2D weights (e.g. ``model_2d.state_dict()``).
        model_3d: the 3D network to fill (only its parameter names and shapes are used).

    Returns:
        A state dict for ``model_3d.load_state_dict`` (strict).

    Raises:
        UserError: a parameter missing from the 2D weights or of an incompatible shape.
    """
    target = model_3d.state_dict()
    out: dict[str, torch.Tensor] = {}
    for key, ref in target.items():
        if key not in state_dict_2d:
            raise UserError(f"cannot inflate: 2D weights lack {key} (different architecture?)")
        w2 = state_dict_2d[key].detach().to(ref.dtype)
        if w2.ndim == 4 and ref.ndim == 5:
            out[key] = _inflate_kernel(key, w2, ref.shape)
        elif w2.shape == ref.shape:
            out[key] = w2.clone()
        else:
            raise UserError(
                f"cannot inflate {key}: 2D shape {tuple(w2.shape)} vs 3D {tuple(ref.shape)}"
            )
    return out
