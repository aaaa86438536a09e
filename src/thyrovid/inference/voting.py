"""Soft voting from clip to patient.

The paper predicts every clip of a patient and soft-votes the probabilities into one
patient-level call. Here the vote is hierarchical and every level is kept:

    clip    -> P(malignant) from the network (sigmoid of its logit)
    video   =  mean over the video's key-frame clips
    nodule  =  mean over the nodule's videos
    patient =  mean over the patient's nodules (the paper's soft voting; `PATIENT_VOTES`)

Truth: clip, video and nodule carry the nodule's pathology label (1 = malignant); a patient
is positive when ANY of its nodules is malignant. The mean does not match that truth: one
malignant nodule at 0.95 beside three benign ones at 0.05 gives the patient 0.275. The patient
vote can therefore also be

    max       the most suspicious nodule (0.95 there)
    noisy-or  1 - prod(1 - p) over the nodules: P(at least one malignant) if the nodules were
              independent (0.957 there)

`LEVELS` is the one list of these levels, finest first. `mean_vote` is the mean of one group
(what `thyrovid predict` gives a video from its clips); pandas is imported only by `soft_vote`,
so the torch-free ONNX path of `predict` does not pay for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

from thyrovid.config import PATIENT_VOTES  # noqa: F401 (the one list, re-exported here)

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
def mean_vote(probs: Sequence[float]) -> float:
    """One level's vote from the probabilities of its members: their unweighted mean."""
    values = np.asarray(probs, dtype=np.float64)
    if values.size == 0:
        raise ValueError("mean_vote: nothing to vote on")
    return float(values.mean())


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


def _noisy_or(p: pd.Series) -> float:
    return float(1.0 - np.prod(1.0 - p.to_numpy(np.float64)))


_AGG = {"mean": "mean", "max": "max", "noisy-or": _noisy_or}


def soft_vote(clips_with_prob: pd.DataFrame, patient_vote: str = "mean") -> pd.DataFrame:
    """Average clip probabilities up to video, nodule and patient level.

    Args:
        clips_with_prob: one row per clip with columns clip_id, patient_id, nodule_id (optional;
            missing or empty means the patient_id, as in cohort.csv), video_id, center, split, label (0/1, 1 = malignant) and
            prob (float, P(malignant)). Rows with a missing prob are ignored.
        patient_vote: how nodules vote for their patient: "mean" (the paper's), "max" or
            "noisy-or" (see the module docstring).

    Returns:
        DataFrame with columns level ("clip"/"video"/"nodule"/"patient"), id, patient_id, center,
        split, label (int 0/1), prob (float64), rows ordered by level then first appearance.
        video = mean of its clips; nodule = mean of its videos; patient = mean of its nodules
        (an unweighted mean at each step, so a nodule with many clips does not dominate).
        A patient's label is 1 if any of its nodules is malignant. Groups never cross splits.
    """
    if patient_vote not in PATIENT_VOTES:
        raise ValueError(f"patient_vote must be one of {PATIENT_VOTES}, got {patient_vote!r}")
    import pandas as pd

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
            prob=("prob", _AGG[patient_vote] if level == "patient" else "mean"),
        ).reset_index()
        own = keys[-1]
        voted["id"] = _qualified(voted, own, keys[1:-1]) if len(keys) > 2 else voted[own]
        voted["level"] = level
        out.append(voted[VOTE_COLUMNS])
        current = voted.drop(columns=["id", "level"])
    result = pd.concat(out, ignore_index=True)
    result["label"] = result["label"].astype(int)
    return result
