"""The clips of a new video for `thyrovid predict`, cut as `thyrovid extract` cuts a cohort row.

`thyrovid.runs.run_preprocessing` finds the parameters a run was trained on (frames, size, box
expansion); `plan_clip` places the window and ROI of one (key frame, box) pair (`clip_window`,
`window_indices`, `expand_box` clamped to the imaging region); `cut_clips` decodes each needed
frame once and applies the same grey conversion and resize (`to_gray`, `resize_crop`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from thyrovid.clips.geometry import padding_note
from thyrovid.errors import UserError
from thyrovid.runs import Preprocessing

Box = tuple[float, float, float, float]


def _bounds(info) -> tuple[int, int, int, int]:
    """The region a box may grow into: the ultrasound region clamped to the frame (as extract)."""
    b = info.region or (0, 0, info.width, info.height)
    return (max(b[0], 0), max(b[1], 0), min(b[2], info.width), min(b[3], info.height))


def plan_clip(video_name: str, info, frame: int, box: Box, prep: Preprocessing) -> dict:
    """Window and ROI of one (key frame, box) pair, exactly as extract plans a cohort row.

    Returns:
        dict frame, box, roi (x0, y0, x1, y1 ints), first_frame, n_frames (real), pad_before,
        indices (the T video frames of the window; [frame] for a 2D run).
    """
    from thyrovid.clips.geometry import clip_window, expand_box, window_indices
    from thyrovid.cohort.boxes import box_problem

    if not float(frame).is_integer() or not 0 <= int(frame) < info.n_frames:
        raise UserError(
            f"{video_name}: key frame {frame} out of range (video has {info.n_frames} frames, "
            "0-based)"
        )
    frame = int(frame)
    x0, y0, x1, y1 = box
    if x1 <= x0 or y1 <= y0:
        raise UserError(f"{video_name}: box {list(box)}: need x1 > x0 and y1 > y0")
    why = box_problem(box, info.width, info.height)
    if why:
        raise UserError(f"{video_name}: {why}")
    roi = expand_box(box, prep.expand, _bounds(info))
    if roi is None:
        raise UserError(f"{video_name}: box {list(box)} is outside the imaging region")
    if prep.dims == 3:
        first, n_real, pad = clip_window(frame, info.n_frames, prep.frames)
        indices = window_indices(first, n_real, pad, prep.frames)
    else:  # a 2D run sees the key frame alone
        first, n_real, pad, indices = frame, 1, 0, [frame]
    return {
        "frame": frame, "box": [float(v) for v in box], "roi": [int(v) for v in roi],
        "first_frame": first, "n_frames": n_real, "pad_before": pad, "indices": indices,
    }  # fmt: skip


def short_video_note(video_name: str, n_frames: int, prep: Preprocessing) -> list[str]:
    """One line when a 3D run's clip of this video is padded (as extract warns), else none."""
    if prep.dims != 3 or n_frames >= prep.frames:
        return []
    return [f"{video_name} {padding_note(n_frames, prep.frames)}"]


def cut_clips(video_path, pairs: Sequence[tuple[int, Box]], prep: Preprocessing, timing=None):
    """Cut every (key frame, box) pair of one video, decoding each needed frame once.

    Args:
        timing: a dict to add the seconds spent to: "read" (opening the video and decoding
            the frames) and "crop" (grey conversion, crop and resize); None: not timed.

    Returns:
        (x, plans): x uint8 (N, T, size, size) for a 3D run or (N, size, size) for a 2D run;
        plans: one `plan_clip` dict per pair (without `indices`).
    """
    from thyrovid.clips.geometry import CHUNK, resize_crop  # not clips.cache: multiprocessing
    from thyrovid.io import open_video, to_gray

    if not pairs:
        raise UserError(f"{video_path}: no key frame and box given (--frame K --box x0,y0,x1,y1)")
    name = str(video_path)
    read = crop = 0.0
    start_read = time.perf_counter()
    with open_video(video_path) as video:
        plans = [plan_clip(name, video.info, f, b, prep) for f, b in pairs]
        needed = sorted({i for p in plans for i in p["indices"]})
        crops: list[dict[int, np.ndarray]] = [{} for _ in plans]
        for start in range(0, len(needed), CHUNK):
            chunk = needed[start : start + CHUNK]
            block = video.frames(chunk)  # (N, H, W, C) uint8
            start_crop = time.perf_counter()
            read += start_crop - start_read
            for plan, store in zip(plans, crops):
                x0, y0, x1, y1 = plan["roi"]
                want = set(plan["indices"])
                for j in (j for j, fi in enumerate(chunk) if fi in want):
                    store[chunk[j]] = resize_crop(to_gray(block[j, y0:y1, x0:x1]), prep.size)
            start_read = time.perf_counter()
            crop += start_read - start_crop
    start_crop = time.perf_counter()
    read += start_crop - start_read
    x = np.stack([np.stack([s[i] for i in p.pop("indices")]) for p, s in zip(plans, crops)])
    crop += time.perf_counter() - start_crop
    if timing is not None:
        timing["read"] = timing.get("read", 0.0) + read
        timing["crop"] = timing.get("crop", 0.0) + crop
    return (x if prep.dims == 3 else x[:, 0]), plans
