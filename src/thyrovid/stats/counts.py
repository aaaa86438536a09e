"""Checks of the inputs every statistic takes: non-negative integer counts, 0/1 vectors."""

from __future__ import annotations

import numpy as np

from thyrovid.errors import UserError


def _count(name: str, v) -> int:
    if isinstance(v, bool) or int(v) != v or v < 0:
        raise UserError(f"{name} must be a non-negative integer count, got {v!r}")
    return int(v)


def _binary(name: str, v) -> np.ndarray:
    a = np.asarray(v)
    if a.ndim != 1:
        raise UserError(f"{name} must be 1-D, got shape {a.shape}")
    if a.dtype == bool:
        return a
    if a.dtype.kind not in "iuf":
        raise UserError(f"{name} must be 0/1, got dtype {a.dtype}")
    bad = ~np.isin(a, (0, 1))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise UserError(f"{name} must be 0/1; index {i} holds {a[i]!r}")
    return a.astype(bool)
