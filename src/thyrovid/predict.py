"""Inference on extracted clips and soft voting from clip to patient.

The paper predicts every clip of a patient and soft-votes the probabilities into one
patient-level call. Here the vote is hierarchical and every level is kept:

    clip    -> P(malignant) from the network (sigmoid of its logit)
    video   =  mean over the video's key-frame clips
    nodule  =  mean over the nodule's videos
    patient =  mean over the patient's nodules

Truth: clip, video and nodule carry the nodule's pathology label (1 = malignant); a patient
is positive when ANY of its nodules is malignant.

Test-time augmentation (``tta``): ``tta`` views of each clip are averaged (in probability):

    view 0: the clip as extracted
    view 1: horizontal flip (x mirrored)
    view 2k, 2k+1 (k >= 1): the clip's temporal window shifted by +k*s / -k*s frames,
        s = max(1, T // 8); frames that fall outside the clip repeat the first/last frame,
        so the network always sees T frames.

2D runs (key-frame images) have no time axis: only views 0 and 1 exist there, so ``tta`` is
capped at 2 with a warning.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

LEVELS = ("clip", "video", "nodule", "patient")
VOTE_COLUMNS = ["level", "id", "patient_id", "center", "split", "label", "prob"]
_CLIP_COLUMNS = [
    "clip_id",
    "patient_id",
    "nodule_id",
    "video_id",
    "center",
    "split",
    "label",
    "prob",
]


# --------------------------------------------------------------------------- voting
def _qualified(keys: pd.DataFrame, own: str, parents: Sequence[str]) -> pd.Series:
    """Ids for one level: the own id, or, if any own id is ambiguous, "parent/.../own" for all.

    ``nodule_id`` need not be unique across patients ("N1" may occur in every patient), so
    then every nodule id of the table becomes "P007/N1".
    """
    own_ids = keys[own].astype(str)
    n_parents = keys.groupby(own_ids, sort=False)[list(parents)].transform("nunique").max(axis=1)
    if not (n_parents > 1).any():
        return own_ids
    prefix = keys[list(parents)].astype(str).agg("/".join, axis=1)
    return prefix + "/" + own_ids


def soft_vote(clips_with_prob: pd.DataFrame) -> pd.DataFrame:
    """Average clip probabilities up to video, nodule and patient level.

    Args:
        clips_with_prob: one row per clip with columns clip_id, patient_id, nodule_id (optional;
            missing or empty means the patient_id, as in cohort.csv), video_id, center, split, label (0/1, 1 = malignant) and
            prob (float, P(malignant)). Rows with a missing prob are ignored.

    Returns:
        DataFrame with columns level ("clip"/"video"/"nodule"/"patient"), id, patient_id, center,
        split, label (int 0/1), prob (float64), rows ordered by level then first appearance.
        video = mean of its clips; nodule = mean of its videos; patient = mean of its nodules
        (an unweighted mean at each step, so a nodule with many clips does not dominate).
        A patient's label is 1 if any of its nodules is malignant. Groups never cross splits.
    """
    df = clips_with_prob.copy()
    if "nodule_id" not in df.columns:
        df["nodule_id"] = df["patient_id"]
    missing = [c for c in _CLIP_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"soft_vote: clips table lacks columns {missing}")
    df = df[df["prob"].notna()].reset_index(drop=True)
    df["label"] = df["label"].astype(int)
    df["prob"] = df["prob"].astype(np.float64)
    for col in ("patient_id", "nodule_id", "video_id", "clip_id", "split", "center"):
        df[col] = df[col].fillna("").astype(str)
    df["nodule_id"] = df["nodule_id"].where(df["nodule_id"] != "", df["patient_id"])

    hierarchy = {
        "video": ["split", "patient_id", "nodule_id", "video_id"],
        "nodule": ["split", "patient_id", "nodule_id"],
        "patient": ["split", "patient_id"],
    }
    clip_rows = df.assign(level="clip", id=df["clip_id"])[VOTE_COLUMNS]
    out = [clip_rows]
    current = df  # the level below, with one row per member and its prob
    for level, keys in hierarchy.items():
        grouped = current.groupby(keys, sort=False)
        voted = grouped.agg(
            center=("center", "first"),
            label=("label", "max"),
            prob=("prob", "mean"),
        ).reset_index()
        own = keys[-1]
        voted["id"] = _qualified(voted, own, keys[1:-1]) if len(keys) > 2 else voted[own]
        voted["level"] = level
        out.append(voted[VOTE_COLUMNS])
        current = voted.drop(columns=["id", "level"])
    result = pd.concat(out, ignore_index=True)
    result["label"] = result["label"].astype(int)
    return result


# --------------------------------------------------------------------------- test-time views
def tta_views(x: np.ndarray | object, n: int) -> list:
    """Return ``n`` test-time views of a batch (see the module docstring for the order).

    Args:
        x: torch tensor (B, C, T, H, W) (3D) or (B, C, H, W) (2D), any dtype.
        n: number of views, >= 1 (2D: at most 2).

    Returns:
        list of ``n`` tensors (2D: ``min(n, 2)``) with the shape of ``x``.
    """
    import torch

    if n < 1:
        raise ValueError("tta must be >= 1")
    views = [x]
    if n >= 2:
        views.append(torch.flip(x, dims=(-1,)))
    if x.dim() == 5 and n >= 3:
        t = x.shape[2]
        step = max(1, t // 8)
        k = 1
        while len(views) < n:
            for sign in (1, -1):
                if len(views) < n:
                    idx = torch.clamp(torch.arange(t) + sign * k * step, 0, t - 1)
                    views.append(x.index_select(2, idx.to(x.device)))
            k += 1
    return views


def _probability(logits) -> np.ndarray:
    """P(malignant) from (B, 1) logits (sigmoid) or (B, 2) logits (softmax, column 1)."""
    import torch

    if logits.dim() == 1 or logits.shape[-1] == 1:
        return torch.sigmoid(logits.reshape(-1).float()).cpu().numpy()
    return torch.softmax(logits.float(), dim=-1)[:, 1].cpu().numpy()


# --------------------------------------------------------------------------- prediction
def _dims(config) -> int:
    return int(getattr(config, "dims", 3))


def _input_shape(run_dir: Path) -> tuple[int, ...] | None:
    """The (T, H, W) / (H, W) of the clips a run was trained on (config.yaml meta), if known."""
    from thyrovid.config import read_yaml

    shape = (read_yaml(run_dir / "config.yaml").get("meta") or {}).get("input_shape")
    return tuple(shape[1:]) if shape else None


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
    from thyrovid.data import ClipDataset, collate, to_model_input
    from thyrovid.train import load_run

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
    skipped = dataset.drop_unreadable(_input_shape(Path(run_dir)))
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
