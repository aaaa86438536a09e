"""A non-deep reference beside the network: logistic regression on five hand-made clip features.

A network earns trust when it beats what a few lines of image analysis reach on the same clips.
`handmade_baseline` measures, per clip of an extracted work folder (clips.csv + clips/*.npy):

- focus strength: the largest white top-hat (a 5 x 5 opening, `models.attention.white_tophat`,
  the calcification attention's filter) of the clip standardised to zero
  mean and unit sd, inside the central 5/8 of the crop, over all frames and at the key frame
  (a bright focus narrower than 5 px against its neighbourhood; tissue and calcifications wider
  than that are removed by the opening);
- persistence: the frames in which that top-hat exceeds 2.5 sd;
- nodule echo: the median of the central third of the crop (the crop is the box x 1.5, so the
  nodule fills its centre);
- box aspect: log(height / width) of the annotated box ("taller than wide").

It fits a logistic regression (features standardised) on the train and val clips and scores
every clip; clips are soft-voted to the patient (`inference.voting.soft_vote`, as `evaluate`) and
the patient-level AUROC is reported per split. No learned image features, no labels of the
evaluated splits.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from thyrovid.models.attention import white_tophat

FEATURES = (
    "focus_tophat_max_clip",
    "focus_tophat_key_frame",
    "focus_frames_over_2.5sd",
    "nodule_median_echo",
    "log_box_aspect",
)
FIT_SPLITS = ("train", "val")


def clip_features(clip: np.ndarray, key_index: int, box_hw: tuple[int, int]) -> list[float]:
    """The five features (`FEATURES`) of one uint8 clip (T, H, W) or image (H, W).

    Args:
        key_index: position of the key frame in the clip (clamped to the clip).
        box_hw: the annotated box's (height, width) in video pixels.
    """
    a = np.asarray(clip, np.float32)
    if a.ndim == 2:
        a = a[None]
    t, h, w = a.shape
    z = (a - a.mean()) / max(float(a.std()), 1.0)
    tophat = white_tophat(torch.from_numpy(z), dims=3, kernel=5).numpy()
    tophat = tophat[:, 3 * h // 16 : h - 3 * h // 16, 3 * w // 16 : w - 3 * w // 16]
    per_frame = tophat.reshape(t, -1).max(axis=1)
    key = min(t - 1, max(0, int(key_index)))
    bh, bw = box_hw
    return [
        float(per_frame.max()),
        float(per_frame[key]),
        float((per_frame > 2.5).sum()),
        float(np.median(a[:, h // 3 : h - h // 3, w // 3 : w - w // 3])),
        float(np.log(max(1, bh) / max(1, bw))),
    ]


def work_features(work: str | Path, clips: pd.DataFrame) -> np.ndarray:
    """(n_clips, 5) features of every row of clips.csv (its clips/*.npy)."""
    work = Path(work)
    rows = []
    for r in clips.itertuples(index=False):
        key = int(r.key_frame) - int(r.first_frame)
        rows.append(clip_features(np.load(work / r.clip_path), key, (r.y1 - r.y0, r.x1 - r.x0)))
    return np.asarray(rows, np.float64).reshape(len(rows), len(FEATURES))


def patient_auroc(
    clips: pd.DataFrame, prob: np.ndarray, split: str, patient_vote: str = "mean"
) -> float | None:
    """Patient-level AUROC of clip probabilities on `split` (None: one class or no patient).

    Clips are voted as `evaluate --patient-vote` votes them (`inference.voting.soft_vote`).
    """
    from thyrovid.inference.voting import soft_vote
    from thyrovid.stats.roc import auc

    d = clips.assign(prob=prob)
    d = d[d["split"] == split]
    if d.empty:
        return None
    p = soft_vote(d, patient_vote=patient_vote)
    p = p[p["level"] == "patient"]
    if p["label"].nunique() < 2:
        return None
    return float(auc(p["label"].to_numpy(), p["prob"].to_numpy()))


def baseline_probabilities(
    work: str | Path, clips: pd.DataFrame, fit_splits: tuple[str, ...] = FIT_SPLITS
) -> np.ndarray:
    """P(malignant) of every row of `clips` from the baseline fitted on its `fit_splits` rows.

    Raises:
        ValueError: the fitted clips hold one class only.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = work_features(work, clips)
    fit = clips["split"].isin(fit_splits).to_numpy()
    if clips.loc[fit, "label"].nunique() < 2:
        raise ValueError(
            f"the hand-made baseline needs both classes in the {' and '.join(fit_splits)} clips"
        )
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    model.fit(x[fit], clips["label"][fit])
    return model.predict_proba(x)[:, 1]


def handmade_baseline(
    work: str | Path,
    splits: tuple[str, ...] = ("val", "test", "external"),
    patient_vote: str = "mean",
) -> dict:
    """Fit on train+val clips of `work`, score `splits`: {"patient_auroc": {split: value}, ...}.

    `patient_vote` votes nodules to the patient as `evaluate --patient-vote` does.

    Raises:
        ValueError: the train+val clips hold one class only.
    """
    clips = pd.read_csv(Path(work) / "clips.csv")
    prob = baseline_probabilities(work, clips)
    scores = {}
    for split in splits:
        value = patient_auroc(clips, prob, split, patient_vote)
        if value is not None:
            scores[split] = round(value, 3)
    return {
        "patient_auroc": scores,
        "features": list(FEATURES),
        "fitted_on": "+".join(FIT_SPLITS) + " clips",
        "model": "logistic regression on standardised features",
        "patient_vote": patient_vote,
    }
