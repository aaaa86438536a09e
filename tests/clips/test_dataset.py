"""Tests for thyrovid.clips.dataset (clip cache datasets) and thyrovid.training.augment (on-device augmentation)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from helpers import make_work_dir
from thyrovid.clips.dataset import BalancedSampler, ClipDataset, collate, read_clips, to_model_input
from thyrovid.errors import UserError
from thyrovid.training.augment import AugmentParams, augment_batch


@pytest.fixture
def work(tmp_path):
    return make_work_dir(tmp_path / "work", n_patients=6, frames=8, size=32)


def test_read_clips_resolves_paths_and_types(work):
    df = read_clips(work)
    assert len(df) == 12
    assert df["label"].dtype.kind == "i"
    assert all(np.load(p).shape == (8, 32, 32) for p in df["clip_path"])
    assert df["patient_id"].iloc[0] == "P000"


def test_read_clips_names_missing_columns_and_bad_labels(work):
    df = pd.read_csv(work / "clips.csv")
    df.drop(columns=["split"]).to_csv(work / "clips.csv", index=False)
    with pytest.raises(UserError, match="split"):
        read_clips(work)
    df["label"] = df["label"].astype(str)
    df.loc[3, "label"] = "maybe"
    df.to_csv(work / "clips.csv", index=False)
    with pytest.raises(UserError, match="row 5"):
        read_clips(work)


def test_dataset_items_3d_and_2d(work):
    ds3 = ClipDataset(work, ["train"], dims=3)
    item = ds3[0]
    assert item["x"].dtype == torch.uint8 and item["x"].shape == (1, 8, 32, 32)
    assert item["y"] in (0.0, 1.0) and item["clip_id"] == "P000_c0"
    ds2 = ClipDataset(work, ["val"], dims=2)
    assert ds2[0]["x"].shape == (1, 32, 32)
    assert len(ds3) + len(ds2) == 12
    batch = collate([ds3[i] for i in range(3)])
    assert batch["x"].shape == (3, 1, 8, 32, 32) and batch["y"].dtype == torch.float32


def test_to_model_input_range():
    x = torch.tensor([0, 255, 128], dtype=torch.uint8)
    out = to_model_input(x)
    assert out.dtype == torch.float32
    assert out[0] == -1 and out[1] == 1 and abs(out[2]) < 0.01
    assert torch.equal(to_model_input(x.float()), out)


def test_augmentation_same_affine_for_every_frame():
    # A clip whose frames are identical must stay identical after augmentation.
    frame = torch.randint(0, 256, (24, 24), dtype=torch.uint8)
    x = frame.expand(3, 1, 5, 24, 24).clone()
    out = augment_batch(x, torch.arange(3), seed=1, epoch=0, params=AugmentParams())
    assert out.shape == x.shape and out.dtype == torch.float32
    assert torch.allclose(out[:, :, :1].expand_as(out), out)
    # different clips get different warps
    assert not torch.allclose(out[0], out[1])


def test_augmentation_seeded_per_clip_not_per_batch():
    x = torch.randint(0, 256, (4, 1, 3, 16, 16), dtype=torch.uint8)
    idx = torch.tensor([7, 3, 9, 1])
    full = augment_batch(x, idx, seed=0, epoch=2, params=AugmentParams())
    # the same clips split into two batches (as two ranks see them) augment identically
    half = augment_batch(x[1::2], idx[1::2], seed=0, epoch=2, params=AugmentParams())
    assert torch.allclose(full[1::2], half, atol=1e-4)
    other_epoch = augment_batch(x, idx, seed=0, epoch=3, params=AugmentParams())
    assert not torch.allclose(full, other_epoch)


def test_zero_augmentation_is_identity():
    x = torch.randint(0, 256, (2, 1, 16, 16), dtype=torch.uint8)
    params = AugmentParams(translate=0, scale=(1, 1), rotate=0, brightness=0, contrast=0, gamma=0)
    out = augment_batch(x, torch.arange(2), 0, 0, params)
    assert torch.allclose(out, x.float(), atol=1e-3)


def test_translation_moves_a_dot_by_the_drawn_shift():
    x = torch.zeros(1, 1, 32, 32, dtype=torch.uint8)
    x[0, 0, 16, 16] = 255
    params = AugmentParams(
        translate=0.25, scale=(1, 1), rotate=0, brightness=0, contrast=0, gamma=0
    )
    out = augment_batch(x, torch.tensor([5]), 0, 0, params)[0, 0]
    y, xx = divmod(int(out.argmax()), 32)
    assert (y, xx) != (16, 16)  # moved
    assert abs(y - 16) <= 8 and abs(xx - 16) <= 8  # by at most 25% of 32 px


def test_balanced_sampler_draws_classes_equally_and_splits_ranks():
    labels = np.array([1] * 10 + [0] * 90)
    s = BalancedSampler(labels, seed=3)
    s.set_epoch(0)
    drawn = labels[list(s)]
    assert 0.35 < drawn.mean() < 0.65
    ranks = [list(BalancedSampler(labels, 2, r, seed=3)) for r in (0, 1)]
    merged = [i for pair in zip(*ranks) for i in pair]
    assert merged == list(s)


def test_unreadable_clips_are_dropped_with_one_line_each(work):
    (work / "clips" / "P001_c0.npy").write_bytes(b"not a numpy file")
    (work / "clips" / "P002_c1.npy").unlink()
    ds = ClipDataset(work, None, dims=3)
    problems = ds.drop_unreadable()
    assert len(problems) == 2 and len(ds) == 10
    assert "P001_c0" in problems[0] and "P002_c1" in problems[1]
    assert "P001_c0" not in ds.clips["clip_id"].tolist()
    assert ds[len(ds) - 1]["clip_id"] == "P005_c1"
