"""Test-time views of a batch of clips, on torch tensors or numpy arrays alike.

``tta`` views of each clip are averaged (in probability) by `thyrovid evaluate --tta` and
`thyrovid predict --tta`:

    view 0: the clip as extracted
    view 1: horizontal flip (x mirrored)
    view 2k, 2k+1 (k >= 1): the clip's temporal window shifted by +k*s / -k*s frames,
        s = max(1, T // 8); frames that fall outside the clip repeat the first/last frame,
        so the network always sees T frames.

2D inputs (key-frame images) have no time axis: only views 0 and 1 exist there. The views only
move pixels, so they commute with the normalisation: a view of the raw pixels (what the ONNX
graph takes) equals the view of the normalised tensor (what the torch network takes). This
module imports neither torch nor pandas (the ONNX engine of `predict` runs without them).
"""

from __future__ import annotations

import numpy as np


def time_shifts(t: int, n: int) -> list[list[int]]:
    """The frame indices of views 2, 3, ... (n views in all) of a T-frame clip."""
    step = max(1, t // 8)
    out: list[list[int]] = []
    k = 1
    while len(out) < n - 2:
        for sign in (1, -1):
            if len(out) < n - 2:
                out.append([min(max(i + sign * k * step, 0), t - 1) for i in range(t)])
        k += 1
    return out


def tta_views(x, n: int) -> list:
    """Return ``n`` test-time views of a batch (see the module docstring for the order).

    Args:
        x: torch tensor or numpy array, (B, C, T, H, W) (3D) or (B, C, H, W) (2D), any dtype.
        n: number of views, >= 1 (2D: at most 2).

    Returns:
        list of ``n`` tensors / arrays (2D: ``min(n, 2)``) with the shape and type of ``x``.
    """
    if n < 1:
        raise ValueError("tta must be >= 1")
    is_numpy = isinstance(x, np.ndarray)
    views = [x]
    if n >= 2:
        views.append(np.flip(x, axis=-1) if is_numpy else x.flip(dims=(-1,)))
    if x.ndim == 5 and n >= 3:
        for idx in time_shifts(int(x.shape[2]), n):
            if is_numpy:
                views.append(np.take(x, idx, axis=2))
            else:
                import torch

                views.append(x.index_select(2, torch.tensor(idx, device=x.device)))
    return views
