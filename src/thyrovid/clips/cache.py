"""Clip cutting and the clip cache: per-video workers, atomic .npy (geometry: `clips.geometry`).

The half of `thyrovid extract` that touches pixels; `thyrovid.clips.extract` plans the clips and
hands this module one job per video. Worker processes import only this module and
`clips.geometry` (no pandas, no cohort code), so a spawned worker starts fast.

Conventions:
- Files: each .npy is written to a temporary name and renamed, so a clip file that exists is
  complete. Test hook: THYROVID_EXTRACT_DELAY_S sleeps after each clip.
"""

from __future__ import annotations

import functools
import io
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from thyrovid.atomic import atomic_path
from thyrovid.clips.geometry import CHUNK, resize_crop, window_indices
from thyrovid.errors import UserError

if TYPE_CHECKING:  # only for annotations: worker processes never import pandas
    import pandas as pd


def _save_atomic(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, array)


@functools.lru_cache(maxsize=16)
def _npy_header(shape: tuple[int, ...]) -> bytes:
    """The exact header `np.save` writes for a C-ordered uint8 array of `shape`."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": "|u1", "fortran_order": False, "shape": tuple(shape)}
    )
    return buf.getvalue()


def is_done(path: Path, shape: tuple[int, ...]) -> bool:
    """True when `path` is a complete uint8 .npy of `shape` (header and file size checked).

    Fast path: a file that starts with exactly the header `np.save` writes for `shape` (the
    clip cache's own files) needs only a compare of those bytes and its size; any other
    header is parsed as before. A rerun over tens of thousands of clips checks each in a
    few microseconds.
    """
    header = _npy_header(tuple(shape))
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(header))
            size = os.fstat(fh.fileno()).st_size
    except OSError:
        return False
    if head == header:
        return size == len(header) + int(np.prod(shape))
    return _is_done_parsed(path, shape)


def _is_done_parsed(path: Path, shape: tuple[int, ...]) -> bool:
    """`is_done` by parsing the .npy header (any version, any dict order or padding)."""
    fmt = np.lib.format
    try:
        with open(path, "rb") as fh:
            version = fmt.read_magic(fh)
            read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
            got, fortran, dtype = read(fh)
            header_end = fh.tell()
    except (OSError, ValueError, EOFError):
        return False
    complete = os.path.getsize(path) == header_end + int(np.prod(shape))
    return got == shape and dtype == np.uint8 and not fortran and complete


def remove_stale_temps(work: Path) -> None:
    """Delete temporary files a killed run left behind (never complete, never used)."""
    from thyrovid.atomic import remove_stale_temps as remove

    remove(work, work / "clips", work / "images")


def die_with_parent(parent: int) -> None:
    """Make this worker process end when `parent` does (SIGKILL included).

    Linux: the kernel sends SIGKILL at the parent's death (PR_SET_PDEATHSIG). Everywhere: a
    daemon thread checks twice a second that the parent is still this process's parent.
    """
    import signal
    import threading

    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PDEATHSIG
    except (OSError, AttributeError, TypeError):
        pass
    if os.getppid() != parent:  # the parent died before the line above
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="die-with-parent", daemon=True).start()


def _init_worker(parent: int | None = None) -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    if parent is not None:
        die_with_parent(parent)
    import cv2

    cv2.setNumThreads(1)


def extract_video(job: dict) -> list[tuple[int, str | None]]:
    """Extract every pending clip of one video, decoding each needed frame once.

    Args:
        job: video_path, size, frames, mask ((H, W) bool: pixels outside are set to 0, or
            None), and clips: list of dicts with row, indices (T video frame indices),
            key_pos, roi (x0, y0, x1, y1), clip_file, image_file.

    Returns:
        (row, error message or None) per clip.
    """
    from thyrovid.io import open_video, to_gray

    size = job["size"]
    mask = job.get("mask")  # (H, W) bool scan sector, or None
    clips = sorted(job["clips"], key=lambda c: max(c["indices"]))  # in order of completion
    needed = sorted({i for c in clips for i in c["indices"]})
    crops: list[dict[int, np.ndarray]] = [{} for _ in clips]  # per clip: frame -> resized crop
    n_done = 0
    try:
        with open_video(job["video_path"]) as video:
            for start in range(0, len(needed), CHUNK):
                chunk = needed[start : start + CHUNK]
                block = video.frames(chunk)  # (N, H, W, C) uint8, each frame decoded once
                for c, store in zip(clips[n_done:], crops[n_done:]):
                    x0, y0, x1, y1 = c["roi"]
                    want = set(c["indices"])
                    inside = mask[y0:y1, x0:x1] if mask is not None else None
                    for j in (j for j, fi in enumerate(chunk) if fi in want):
                        crop = to_gray(block[j, y0:y1, x0:x1])
                        if inside is not None:  # --mask-outside-sector
                            crop = np.where(inside, crop, 0).astype(np.uint8)
                        store[chunk[j]] = resize_crop(crop, size)
                while n_done < len(clips) and max(clips[n_done]["indices"]) <= chunk[-1]:
                    _write_clip(clips[n_done], crops[n_done])
                    crops[n_done] = {}
                    n_done += 1
    except UserError as exc:
        why = str(exc).removeprefix(f"{job['video_path']}: ")  # the row names the video
        msg = f"video {job.get('video', job['video_path'])!r} could not be decoded: {why}"
        return [(c["row"], None) for c in clips[:n_done]] + [
            (c["row"], msg) for c in clips[n_done:]
        ]
    return [(c["row"], None) for c in clips]


def _write_clip(clip_spec: dict, crops: dict[int, np.ndarray]) -> None:
    """Stack the window (T, size, size), write the key-frame image then the clip, atomically."""
    clip = np.stack([crops[i] for i in clip_spec["indices"]])
    _save_atomic(Path(clip_spec["image_file"]), np.ascontiguousarray(clip[clip_spec["key_pos"]]))
    _save_atomic(Path(clip_spec["clip_file"]), clip)
    delay = float(os.environ.get("THYROVID_EXTRACT_DELAY_S", "0") or 0)
    if delay:  # test hook: lets a test kill the run between two clips
        time.sleep(delay)


def video_jobs(plan: pd.DataFrame, work: Path, frames: int, size: int) -> list[dict]:
    """One job per video (see `extract_video`), the videos with most clips first."""
    jobs: dict[str, dict] = {}
    for rec in plan.to_dict("records"):
        path = rec["video_path"]
        job = jobs.setdefault(
            path,
            {
                "video_path": path,
                "video": rec.get("video", path),
                "size": size,
                "frames": frames,
                "clips": [],
            },  # fmt: skip
        )
        job["clips"].append({
            "row": rec["row"],
            "indices": window_indices(rec["first_frame"], rec["n_frames"], rec["pad_before"], frames),
            "key_pos": rec["key_frame"] - rec["first_frame"] + rec["pad_before"],
            "roi": (rec["roi_x0"], rec["roi_y0"], rec["roi_x1"], rec["roi_y1"]),
            "clip_file": str(work / rec["clip_path"]), "image_file": str(work / rec["image_path"]),
        })  # fmt: skip
    return sorted(jobs.values(), key=lambda j: -len(j["clips"]))


def _warm_up() -> None:
    """Import the decoders in a fresh worker while the main process still validates."""
    import thyrovid.io.dicom  # noqa: F401


def start_pool(workers: int) -> ProcessPoolExecutor:
    """A spawn-context pool whose workers start (and import) right away."""
    pool = ProcessPoolExecutor(
        workers, mp_context=get_context("spawn"), initializer=_init_worker,
        initargs=(os.getpid(),),
    )  # fmt: skip
    for _ in range(workers):
        pool.submit(_warm_up)
    return pool


def run_jobs(
    jobs: list[dict], workers: int, min_clips: int, pool: ProcessPoolExecutor | None = None
) -> list[tuple[int, str | None]]:
    """Run `extract_video` on every job, in `pool` (or a new one) when that pays off.

    Args:
        jobs: from `video_jobs`.
        workers: processes for a new pool; 1 runs everything in this process.
        min_clips: fewer clips than this (and no `pool` given): stay in this process.
        pool: a pool from `start_pool` to use (the caller shuts it down).
    """
    from tqdm import tqdm

    results = []
    total = sum(len(j["clips"]) for j in jobs)
    use_pool = workers > 1 and len(jobs) > 1 and (pool is not None or total >= min_clips)
    with tqdm(total=total, unit="clip", desc="extract", file=sys.stderr, disable=None) as bar:
        if not use_pool:
            for job in jobs:
                results += extract_video(job)
                bar.update(len(job["clips"]))
            return results
        own = pool is None
        pool = pool or start_pool(min(workers, len(jobs)))
        try:
            futures = {pool.submit(extract_video, job): job for job in jobs}
            for fut in as_completed(futures):
                results += fut.result()
                bar.update(len(futures[fut]["clips"]))
        finally:
            if own:
                pool.shutdown(cancel_futures=True)
    return results
