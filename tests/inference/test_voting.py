"""Soft voting clip -> video -> nodule -> patient, and the test-time views."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest
import torch

from helpers import make_clips
from thyrovid.inference.views import tta_views
from thyrovid.inference.voting import soft_vote


def test_soft_vote_levels_are_means_of_the_level_below_computed_independently():
    clips = make_clips()
    voted = soft_vote(clips)

    # independent computation with plain dicts
    video_clips, nodule_videos, patient_nodules = (
        defaultdict(list),
        defaultdict(set),
        defaultdict(set),
    )
    nodule_label = {}
    for r in clips.itertuples():
        video_clips[(r.patient_id, r.nodule_id, r.video_id)].append(r.prob)
        nodule_videos[(r.patient_id, r.nodule_id)].add(r.video_id)
        patient_nodules[r.patient_id].add(r.nodule_id)
        nodule_label[(r.patient_id, r.nodule_id)] = r.label
    video = {k: sum(v) / len(v) for k, v in video_clips.items()}
    nodule = {k: sum(video[(*k, v)] for v in vids) / len(vids) for k, vids in nodule_videos.items()}
    patient = {
        p: sum(nodule[(p, n)] for n in nods) / len(nods) for p, nods in patient_nodules.items()
    }

    got = {
        lvl: voted[voted["level"] == lvl].set_index("id") for lvl in ("video", "nodule", "patient")
    }
    assert len(got["video"]) == len(video)
    for (_, _, v), prob in video.items():
        assert got["video"].loc[v, "prob"] == pytest.approx(prob, rel=1e-12, abs=0)
    # "N1" occurs in several patients, so nodule ids are qualified by the patient
    assert len(got["nodule"]) == len(nodule)
    for (p, n), prob in nodule.items():
        assert got["nodule"].loc[f"{p}/{n}", "prob"] == pytest.approx(prob, rel=1e-12, abs=0)
    for p, prob in patient.items():
        assert got["patient"].loc[p, "prob"] == pytest.approx(prob, rel=1e-12, abs=0)
        assert got["patient"].loc[p, "label"] == max(
            nodule_label[(p, n)] for n in patient_nodules[p]
        )
    assert (voted[voted["level"] == "clip"]["id"].tolist()) == clips["clip_id"].tolist()

    # The hierarchy matters: the patient vote is not the plain mean over the patient's clips.
    flat = clips.groupby("patient_id")["prob"].mean()
    assert np.abs(flat - got["patient"]["prob"].reindex(flat.index)).max() > 1e-3


def test_soft_vote_columns_labels_and_unique_nodule_ids_stay_plain():
    clips = make_clips(seed=1)
    clips["nodule_id"] = clips["patient_id"] + "-" + clips["nodule_id"]
    voted = soft_vote(clips)
    assert list(voted.columns) == ["level", "id", "patient_id", "center", "split", "label", "prob"]
    nodules = voted[voted["level"] == "nodule"]
    assert set(nodules["id"]) == set(clips["nodule_id"])  # unique ids are not prefixed
    patients = voted[voted["level"] == "patient"].set_index("id")
    any_malignant = clips.groupby("patient_id")["label"].max()
    assert (patients["label"] == any_malignant.reindex(patients.index)).all()
    assert set(patients["split"]) == {"val", "test"}


def test_soft_vote_ignores_clips_without_a_prediction_and_defaults_nodule_to_patient():
    clips = make_clips(seed=2, n_patients=3)
    clips.loc[0, "prob"] = np.nan
    voted = soft_vote(clips)
    assert clips.loc[0, "clip_id"] not in set(voted["id"])
    assert voted["prob"].notna().all()

    clips["nodule_id"] = ""  # cohort.csv: no nodule_id means one nodule per patient
    nodules = soft_vote(clips).query("level == 'nodule'")
    assert sorted(nodules["id"]) == sorted(clips["patient_id"].unique())


def test_tta_views_flip_and_temporal_shift():
    t = 16
    x = torch.arange(t, dtype=torch.float32).view(1, 1, t, 1, 1).repeat(2, 1, 1, 3, 4)
    x[..., 0] += 100  # mark the left column
    views = tta_views(x, 4)
    assert len(views) == 4 and all(v.shape == x.shape for v in views)
    assert torch.equal(views[0], x)
    assert torch.equal(views[1][..., -1], x[..., 0])  # horizontal flip
    step = t // 8
    assert views[2][0, 0, :, 0, 1].tolist() == [min(i + step, t - 1) for i in range(t)]
    assert views[3][0, 0, :, 0, 1].tolist() == [max(i - step, 0) for i in range(t)]
    # 2D inputs have no time axis: only identity and flip
    assert len(tta_views(torch.zeros(1, 1, 8, 8), 5)) == 2


def test_patient_vote_matches_any_nodule_malignant():
    """One malignant nodule at 0.95 beside three benign at 0.05: mean 0.275, max 0.95,
    noisy-or 1 - 0.05 * 0.95**3."""
    import pandas as pd

    from thyrovid.inference.voting import soft_vote

    rows = pd.DataFrame(
        [
            dict(clip_id=f"c{i}", patient_id="P", nodule_id=f"N{i}", video_id=f"v{i}",
                 center="A", split="test", label=int(i == 0), prob=p)
            for i, p in enumerate([0.95, 0.05, 0.05, 0.05])
        ]
    )  # fmt: skip
    got = {}
    for vote in ("mean", "max", "noisy-or"):
        voted = soft_vote(rows, patient_vote=vote)
        patient = voted[voted["level"] == "patient"].iloc[0]
        assert patient["label"] == 1
        got[vote] = patient["prob"]
        # the levels below the patient do not change with the vote
        assert voted[voted["level"] == "nodule"]["prob"].tolist() == [0.95, 0.05, 0.05, 0.05]
    assert got["mean"] == pytest.approx(0.275)
    assert got["max"] == pytest.approx(0.95)
    assert got["noisy-or"] == pytest.approx(1 - 0.05 * 0.95**3)


def test_tta_views_of_numpy_pixels_equal_those_of_torch_tensors():
    """The ONNX engine takes its views on raw pixels (numpy), torch on tensors: the same views."""
    x = np.random.default_rng(0).integers(0, 256, (2, 1, 16, 5, 6)).astype(np.uint8)
    for n in (1, 2, 5):
        got = tta_views(x, n)
        want = tta_views(torch.from_numpy(x), n)
        assert len(got) == len(want) == n
        for a, b in zip(got, want):
            assert isinstance(a, np.ndarray) and np.array_equal(a, b.numpy())
    assert len(tta_views(x[:, :, 0], 5)) == 2  # 2D: identity and flip only
