"""Inference on extracted clips: the run's network on every clip of a work folder, with TTA.

The clip probabilities are soft-voted up to patient level by `thyrovid.inference.voting`.
Test-time augmentation (``tta``) averages the views of `thyrovid.inference.views.tta_views`
(identity, horizontal flip, temporal shifts); 2D runs (key-frame images) have no time axis, so
``tta`` is capped at 2 with a warning.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from thyrovid.inference.views import tta_views


def _probability(logits) -> np.ndarray:
    """P(malignant) from (B, 1) logits (sigmoid) or (B, 2) logits (softmax, column 1)."""
    import torch

    if logits.dim() == 1 or logits.shape[-1] == 1:
        return torch.sigmoid(logits.reshape(-1).float()).cpu().numpy()
    return torch.softmax(logits.float(), dim=-1)[:, 1].cpu().numpy()


# --------------------------------------------------------------------------- prediction
def _dims(config) -> int:
    return int(getattr(config, "dims", 3))


def predict_clips(
    run_dir: str | os.PathLike,
    work_dir: str | os.PathLike,
    splits: Sequence[str],
    device: str = "cpu",
    batch_size: int = 16,
    tta: int = 1,
) -> pd.DataFrame:
    """Predict P(malignant) for every clip of ``splits`` with the run's best weights.

    Under torchrun (WORLD_SIZE > 1) each rank predicts every world_size-th clip and the shards
    are gathered by clip_id, each clip kept once; every rank returns the full table.

    Args:
        run_dir: run folder written by ``thyrovid train`` (config.yaml + model.safetensors).
        work_dir: work folder written by ``thyrovid extract`` (clips.csv + cache).
        splits: which clips.csv splits to predict, e.g. ("val", "test").
        device: "auto" (CUDA when available), "cpu", "cuda" or "cuda:N"; under torchrun
            "auto"/"cuda" mean each rank's own GPU (cuda:LOCAL_RANK).
        batch_size: clips per forward pass.
        tta: number of test-time views averaged per clip (1 = none).

    Returns:
        DataFrame with columns clip_id (str) and prob (float64, P(malignant)), sorted by clip_id.
    """
    import torch
    from torch.utils.data import DataLoader, Subset

    from thyrovid import distributed
    from thyrovid.clips.dataset import ClipDataset, collate, to_model_input
    from thyrovid.runs import input_shape, load_run

    rank, world, dist_device = distributed.setup(device)
    device = str(dist_device)
    model, config = load_run(Path(run_dir), device=device)
    model.eval()
    dims = _dims(config)
    if dims == 2 and tta > 2:
        if distributed.is_main():
            print(
                f"tta={tta} on a 2D run: only 2 views (identity, flip) exist; using 2",
                file=sys.stderr,
            )
        tta = 2
    dataset = ClipDataset(Path(work_dir), list(splits), dims=dims)
    skipped = dataset.drop_unreadable(input_shape(run_dir))
    if distributed.is_main():
        for line in skipped:
            print(line, file=sys.stderr)
    if world > 1:
        dataset = Subset(dataset, list(range(rank, len(dataset), world)))
    loader = DataLoader(
        dataset, batch_size=batch_size, shuffle=False, num_workers=0, collate_fn=collate
    )

    ids: list[str] = []
    probs: list[np.ndarray] = []
    with torch.inference_mode():
        for batch in _progress(loader, rank == 0):
            x = to_model_input(batch["x"].to(device))
            p = np.mean([_probability(model(v)) for v in tta_views(x, tta)], axis=0)
            ids.extend(str(c) for c in batch["clip_id"])
            probs.append(p.astype(np.float64))
    local = pd.DataFrame({"clip_id": ids, "prob": np.concatenate(probs) if probs else []})
    if world > 1:
        local = pd.concat(distributed.gather_objects(local), ignore_index=True)
    local = local.drop_duplicates("clip_id", keep="first")
    return local.sort_values("clip_id", ignore_index=True)


def _progress(iterable, enabled: bool):
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        return iterable
    return tqdm(iterable, desc="predict", unit="batch", file=sys.stderr, disable=not enabled)
