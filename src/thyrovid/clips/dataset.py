"""Datasets over the clip cache that `thyrovid extract` writes (WORK/clips.csv + .npy files).

Items stay uint8 all the way to the training device; the one normalisation to the network's
float input is `to_model_input`, used alike by training, prediction and Grad-CAM. Augmentation
happens on the device, on whole batches (`thyrovid.training.augment`), never per sample here.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset, Sampler

from thyrovid.errors import UserError

CLIP_COLUMNS = (
    "clip_id",
    "patient_id",
    "nodule_id",
    "video_id",
    "center",
    "label",
    "split",
    "key_frame",
    "first_frame",
    "n_frames",
    "clip_path",
    "image_path",
)


def read_clips(work_dir: str | os.PathLike) -> pd.DataFrame:
    """Read WORK/clips.csv with `clip_path` / `image_path` resolved to absolute paths.

    Args:
        work_dir: the folder `thyrovid extract` wrote.

    Returns:
        One row per clip; ids are strings, `label` is int (1 = malignant).

    Raises:
        UserError: clips.csv is missing, lacks contract columns, or has bad labels.
    """
    work = Path(work_dir)
    path = work / "clips.csv"
    if not path.is_file():
        raise UserError(f"{path}: not found; run `thyrovid extract` first")
    ids = ("clip_id", "patient_id", "nodule_id", "video_id", "center", "split")
    try:
        df = pd.read_csv(path, dtype={c: str for c in ids}, keep_default_na=False)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(
            f"{path}: not a readable clips.csv ({why}); rerun `thyrovid extract`"
        ) from None
    missing = [c for c in CLIP_COLUMNS if c not in df.columns]
    if missing:
        raise UserError(f"{path}: missing column(s) {', '.join(missing)}")
    bad = ~df["label"].astype(str).isin(["0", "1"])
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0]) + 2
        raise UserError(
            f"{path}: row {row}: label must be 0 or 1, got {df['label'][bad].iloc[0]!r}"
        )
    if df["clip_id"].duplicated().any():
        dup = df["clip_id"][df["clip_id"].duplicated()].iloc[0]
        raise UserError(f"{path}: clip_id {dup!r} appears more than once")
    df["label"] = df["label"].astype(int)
    for col in ("clip_path", "image_path"):
        df[col] = [str(work / p) if p else "" for p in df[col].astype(str)]
    return df


def to_model_input(x: torch.Tensor) -> torch.Tensor:
    """The one normalisation from cached pixels to network input.

    Args:
        x: uint8 (or float on the same 0..255 scale, e.g. after augmentation), any shape,
            typically (B,1,T,H,W) or (B,1,H,W).

    Returns:
        float32 tensor of the same shape in [-1, 1] (0 -> -1, 255 -> 1).
    """
    return x.to(torch.float32) * (2.0 / 255.0) - 1.0


class ClipDataset(Dataset):
    """Clips (dims=3) or key-frame images (dims=2) of some splits, as uint8 tensors.

    Each item is a dict: `x` uint8 tensor (1,T,H,W) for dims=3 or (1,H,W) for dims=2,
    `y` float (1.0 = malignant), `clip_id` str, `index` int (position in this dataset,
    which seeds that clip's augmentation).

    Args:
        work_dir: folder with clips.csv.
        splits: split names to keep (e.g. ("train",)), or None for all.
        dims: 3 (clip .npy, read memory-mapped) or 2 (key-frame image .npy).
    """

    def __init__(self, work_dir: str | os.PathLike, splits: Iterable[str] | None, dims: int):
        if dims not in (2, 3):
            raise UserError(f"dims must be 2 or 3, got {dims}")
        clips = read_clips(work_dir)
        if splits is not None:
            splits = [splits] if isinstance(splits, str) else list(splits)
            clips = clips[clips["split"].isin(splits)]
        self.dims = dims
        self._col = "clip_path" if dims == 3 else "image_path"
        self.__init_from(clips)

    def __len__(self) -> int:
        return len(self._paths)

    def drop_unreadable(self, shape: tuple[int, ...] | None = None) -> list[str]:
        """Drop clips whose file is missing or not a uint8 array of the expected rank.

        With `shape` ((T, H, W) or (H, W)), also drop arrays of another shape. Reads only each
        .npy header (memory-mapped). Returns one line per dropped clip.
        """
        problems, keep, shapes = [], [], []
        for i, path in enumerate(self._paths):
            why, found = self._file_problem(path, shape)
            if why:
                problems.append(f"skipped clip {self._ids[i]}: {path or 'no ' + self._col}: {why}")
            else:
                shapes.append(found)
            keep.append(not why)
        if problems:
            self.__init_from(self.clips[np.array(keep, dtype=bool)])
        self._shapes = shapes  # read once: file_shapes() needs no second pass
        return problems

    def _file_problem(self, path: str, shape: tuple[int, ...] | None) -> tuple[str, tuple]:
        """(why the array at `path` cannot be an item, "" when it can; its shape)."""
        want = 3 if self.dims == 3 else 2
        try:
            arr = np.load(path, mmap_mode="r") if path else None
        except FileNotFoundError:
            return "file not found", ()
        except (OSError, ValueError) as exc:
            text = str(exc).splitlines()[0]
            return ("not a NumPy .npy file" if "pickled" in text else text), ()
        if arr is None or arr.ndim != want or arr.dtype != np.uint8:
            return f"expected a uint8 array with {want} axes", ()
        if shape is not None and tuple(arr.shape) != tuple(shape):
            return f"shape {_dims_text(arr.shape)}, expected {_dims_text(shape)}", ()
        return "", tuple(arr.shape)

    def file_shapes(self) -> dict[tuple[int, ...], list[str]]:
        """Array shape -> ids of the clips of that shape (the .npy headers, read once)."""
        if self._shapes is None:
            self._shapes = [tuple(np.load(p, mmap_mode="r").shape) for p in self._paths]
        out: dict[tuple[int, ...], list[str]] = {}
        for found, clip_id in zip(self._shapes, self._ids):
            out.setdefault(found, []).append(clip_id)
        return out

    def __init_from(self, clips: pd.DataFrame) -> None:
        self.clips = clips.reset_index(drop=True)
        self._paths = self.clips[self._col].tolist()
        self._labels = self.clips["label"].to_numpy(dtype=np.float32)
        self._ids = self.clips["clip_id"].tolist()
        self._shapes: list[tuple[int, ...]] | None = None  # .npy shapes, once read

    @property
    def labels(self) -> np.ndarray:
        """(N,) float32, 1 = malignant."""
        return self._labels

    def shape(self) -> tuple[int, ...]:
        """Shape of one item's `x` (from the first file), e.g. (1, 32, 224, 224)."""
        if not len(self):
            raise UserError("no clips in the selected splits")
        return tuple(self[0]["x"].shape)

    def __getitem__(self, index: int) -> dict:
        path = self._paths[index]
        if not path:
            raise UserError(f"clip {self._ids[index]}: no {self._col} in clips.csv")
        try:
            arr = np.load(path, mmap_mode="r")
        except (OSError, ValueError) as exc:
            raise UserError(f"{path}: cannot read clip ({exc})") from exc
        want = 3 if self.dims == 3 else 2
        if arr.ndim != want or arr.dtype != np.uint8:
            raise UserError(
                f"{path}: expected uint8 array with {want} axes, got {arr.dtype} {arr.shape}"
            )
        x = torch.from_numpy(np.array(arr)).unsqueeze(0)  # copy: reads the mapped file once
        return {
            "x": x,
            "y": float(self._labels[index]),
            "clip_id": self._ids[index],
            "index": index,
        }


def _dims_text(shape) -> str:
    return "x".join(str(n) for n in shape)


class BalancedSampler(Sampler[int]):
    """Draw malignant and benign clips equally often (with replacement), split over ranks.

    Each epoch draws len(dataset) indices with weights 1/count(class), seeded by
    (seed, epoch), pads to a multiple of `num_replicas` and gives rank r every
    num_replicas-th index starting at r, like torch's DistributedSampler, so the union of
    the ranks' batches k is the single-process batch k.
    """

    def __init__(self, labels: np.ndarray, num_replicas: int = 1, rank: int = 0, seed: int = 0):
        labels = np.asarray(labels)
        counts = np.array([(labels == c).sum() for c in (0, 1)], dtype=np.float64)
        per_class = np.where(counts > 0, 1.0 / np.maximum(counts, 1), 0.0)
        self.weights = torch.as_tensor(per_class[labels.astype(int)], dtype=torch.float64)
        self.num_replicas, self.rank, self.seed, self.epoch = num_replicas, rank, seed, 0
        self.num_samples = -(-len(labels) // num_replicas)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        n = len(self.weights)
        idx = torch.multinomial(self.weights, n, replacement=True, generator=g).tolist()
        idx += idx[: self.num_samples * self.num_replicas - n]
        return iter(idx[self.rank :: self.num_replicas])


def collate(items: list[dict]) -> dict:
    """Stack items into a batch: x uint8 (B,1,...), y float32 (B,), clip_id list, index (B,)."""
    return {
        "x": torch.stack([it["x"] for it in items]),
        "y": torch.tensor([it["y"] for it in items], dtype=torch.float32),
        "clip_id": [it["clip_id"] for it in items],
        "index": torch.tensor([it["index"] for it in items], dtype=torch.int64),
    }
