"""Helpers shared by the tests: fixture videos and cohorts, fabricated work folders and clip
tables, the tiny trained phantom run and the tiny training configs.

Plain functions and constants; the pytest fixtures built from them are in conftest.py.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd


def pattern(n_frames: int, height: int, width: int) -> np.ndarray:
    """(T, H, W) uint8 with value (x + 2y + 7t) mod 256."""
    t = np.arange(n_frames)[:, None, None]
    y = np.arange(height)[None, :, None]
    x = np.arange(width)[None, None, :]
    return ((x + 2 * y + 7 * t) % 256).astype(np.uint8)


def write_dicom(path: Path, frames: np.ndarray, region=None) -> Path:
    """Write (T, H, W) uint8 as an uncompressed MONOCHROME2 multi-frame ultrasound DICOM."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.3.1"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "US"
    ds.PatientName = "Secret^Name"
    ds.NumberOfFrames = frames.shape[0]
    ds.Rows, ds.Columns = frames.shape[1], frames.shape[2]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.FrameTime = 40.0
    if region is not None:
        item = Dataset()
        item.RegionLocationMinX0, item.RegionLocationMinY0 = region[0], region[1]
        item.RegionLocationMaxX1, item.RegionLocationMaxY1 = region[2] - 1, region[3] - 1
        item.RegionSpatialFormat = 1
        item.RegionDataType = 1
        item.PhysicalUnitsXDirection = item.PhysicalUnitsYDirection = 3
        item.PhysicalDeltaX = item.PhysicalDeltaY = 0.01
        ds.SequenceOfUltrasoundRegions = Sequence([item])
    ds.PixelData = np.ascontiguousarray(frames, dtype=np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def write_csv(path: Path, rows: list[dict]) -> Path:
    cols = list(rows[0])
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)
    return path


def tiny_cohort(
    root: Path,
    n_patients: int = 6,
    n_frames: int = 40,
    height: int = 48,
    width: int = 64,
    keys=(5, 20),
    centers=("A", "B", "C"),
) -> Path:
    """`n_patients` patients, one video each, one nodule, len(keys) key frames; cohort.csv.

    Each patient's video is the pattern shifted by 3 * p grey levels (P000: the pattern):
    one recording under two patients would be a leak that extract refuses."""
    rows = []
    video = pattern(n_frames, height, width)
    for p in range(n_patients):
        rel = f"videos/P{p:03d}.dcm"
        write_dicom(root / rel, (video.astype(np.int32) + 3 * p).astype(np.uint8))
        for k in keys:
            rows.append(
                {
                    "patient_id": f"P{p:03d}",
                    "video": rel,
                    "center": centers[p % len(centers)],
                    "label": "malignant" if p % 2 else "benign",
                    "frame": k,
                    "x0": 16,
                    "y0": 8,
                    "x1": 40,
                    "y1": 32,
                    "site": f"lobe{p % 2}",
                }
            )
    return write_csv(root / "cohort.csv", rows)


def read_clips(work: Path) -> list[dict]:
    with open(work / "clips.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def make_work_dir(
    root, n_patients=24, frames=16, size=64, clips_per_patient=2, seed=0, splits=None
):
    """Fabricate a WORK folder as `thyrovid extract` writes it: clips.csv + uint8 .npy clips.

    Malignant clips carry a few small bright dots (calcification-like) in some frames near the
    centre; benign clips a smooth faint blob. Patients alternate label; splits by patient.
    """
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    (root / "clips").mkdir(exist_ok=True)
    (root / "images").mkdir(exist_ok=True)
    yy, xx = np.mgrid[:size, :size]
    rows = []
    for p in range(n_patients):
        label = p % 2
        split = splits[p] if splits else ("train" if p < n_patients * 2 // 3 else "val")
        for c in range(clips_per_patient):
            clip = rng.normal(60, 15, size=(frames, size, size))
            cy, cx = size / 2 + rng.uniform(-size / 8, size / 8, 2)
            blob = 40 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * (size / 6) ** 2))
            clip += blob
            if label:
                for t in rng.choice(frames, size=max(2, frames // 3), replace=False):
                    for _ in range(3):
                        y, x = (
                            rng.integers(-size // 6, size // 6, 2) + [int(cy), int(cx)]
                        ).tolist()
                        clip[t, y - 1 : y + 2, x - 1 : x + 2] = 250
            clip = np.clip(clip, 0, 255).astype(np.uint8)
            clip_id = f"P{p:03d}_c{c}"
            np.save(root / "clips" / f"{clip_id}.npy", clip)
            np.save(root / "images" / f"{clip_id}.npy", clip[frames // 2])
            rows.append(
                dict(
                    clip_id=clip_id,
                    patient_id=f"P{p:03d}",
                    nodule_id=f"P{p:03d}_n0",
                    video_id=f"P{p:03d}_v{c}",
                    center="A",
                    label=label,
                    split=split,
                    key_frame=frames // 2,
                    first_frame=0,
                    n_frames=frames,
                    clip_path=f"clips/{clip_id}.npy",
                    image_path=f"images/{clip_id}.npy",
                )
            )
    pd.DataFrame(rows).to_csv(root / "clips.csv", index=False)
    return root


def make_clips(seed: int = 0, n_patients: int = 12, splits=("val", "test")) -> pd.DataFrame:
    """A hand-made clips table with uneven hierarchy: 1-3 nodules, 1-3 videos, 1-4 clips each.

    Nodule ids repeat across patients ("N1" in every patient), as cohort.csv allows.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_patients):
        split = splits[p % len(splits)]
        for n in range(rng.integers(1, 4)):
            label = int(rng.random() < 0.5)
            for v in range(rng.integers(1, 4)):
                for c in range(rng.integers(1, 5)):
                    rows.append(
                        {
                            "clip_id": f"P{p}-N{n}-V{v}-C{c}",
                            "patient_id": f"P{p}",
                            "nodule_id": f"N{n}",
                            "video_id": f"P{p}-V{v}-N{n}",
                            "center": "A" if p % 3 else "B",
                            "split": split,
                            "label": label,
                            "prob": float(np.clip(0.3 * label + 0.7 * rng.random(), 0, 1)),
                        }
                    )
    return pd.DataFrame(rows)


TINY_RUN = dict(
    arch="resnet50",  # well-scaled at init: probabilities away from 0 and 1 after 2 batches
    dims=3,
    width=0.125,
    epochs=1,
    batch_size=4,
    max_train_batches=2,
    num_workers=0,
    tensorboard=False,
    device="cpu",
    amp="off",
)


_BUILT: dict[str, dict] = {}


def build_tiny_run(tmp_path_factory) -> dict:
    """Phantom (8 patients, 12-24 frames) -> extract 16x64x64 -> 1-epoch run -> evaluate.

    Built once per test process and shared by test_infer, test_export and test_serve.
    Returns dict phantom, work, run (Paths), clips (clips.csv), pred (predictions.csv).
    """
    if "run" in _BUILT:
        return _BUILT["run"]
    import torch

    from thyrovid.clips.extract import extract
    from thyrovid.config import TrainConfig
    from thyrovid.evaluation.evaluate import evaluate
    from thyrovid.synth.cohort import SynthConfig, synthesize
    from thyrovid.training.train import train

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("infer_run")
    phantom, work, run = root / "phantom", root / "work", root / "run"
    cfg = SynthConfig(patients=8, seed=11, frames=(12, 24), size=(48, 64), workers=1)
    synthesize(phantom, cfg, progress=False)
    extract(phantom / "cohort.csv", work, frames=16, size=64, workers=1)
    train(work, run, TrainConfig(**TINY_RUN))
    evaluate(run, splits=("val", "test", "external"), work_dir=work)
    clips = pd.read_csv(work / "clips.csv", dtype={"clip_id": str, "video_id": str})
    pred = pd.read_csv(run / "predictions.csv", dtype={"id": str})
    _BUILT["run"] = dict(phantom=phantom, work=work, run=run, clips=clips, pred=pred)
    return _BUILT["run"]


def evaluated_clips(tiny) -> pd.DataFrame:
    """clips.csv rows that evaluate predicted, with evaluate's clip-level prob."""
    pred = tiny["pred"]
    probs = pred[pred["level"] == "clip"].set_index("id")["prob"]
    rows = tiny["clips"][tiny["clips"]["clip_id"].isin(probs.index)].copy()
    rows["prob"] = rows["clip_id"].map(probs)
    return rows


def logit(p) -> np.ndarray:
    """Compare probabilities as logits: near 0 or 1 an absolute tolerance on P says nothing."""
    p = np.asarray(p, dtype=np.float64)
    return np.log(p) - np.log1p(-p)


def pairs_of(rows: pd.DataFrame) -> list:
    return [(int(r.key_frame), (r.x0, r.y0, r.x1, r.y1)) for r in rows.itertuples()]


TINY_TRAIN = dict(
    arch="densenet121",
    dims=3,
    width=0.125,
    temporal_strides=(1, 1, 1, 2, 2),
    batch_size=4,
    num_workers=0,
    tensorboard=False,
)
