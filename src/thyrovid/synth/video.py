"""One worker task: render every video of one nodule, write its DICOM files and masks, and
pick its key frames and annotator boxes for cohort.csv.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from thyrovid.atomic import atomic_path
from thyrovid.synth.dicomwriter import compose, layout_for, overlay, write_dicom
from thyrovid.synth.profiles import CenterProfile
from thyrovid.synth.render import RenderedVideo, render_video
from thyrovid.synth.sweep import make_sweep
from thyrovid.synth.volume import nodule_geometry

BOX_NOISE_MM = 0.25  # annotator noise (sd) on each box edge, mm (~1.3 px at 240x320)


@dataclass(frozen=True)
class VideoPlan:
    """A video to render: its id, global index (seeds its generator), length, series number."""

    video_id: str
    index: int
    n_frames: int
    series_number: int


@dataclass(frozen=True)
class NoduleTask:
    """Everything a worker needs to render one nodule's videos."""

    seed: int
    index: int
    patient_id: str
    nodule_id: str
    center: CenterProfile
    features: dict
    videos: tuple[VideoPlan, ...]
    side: str = "right"  # thyroid lobe, shown in the burned-in header


def render_nodule(task: NoduleTask, out: Path) -> dict:
    """Render, write and annotate all videos of one nodule.

    Returns:
        dict with "nodule_id", "geometry" (sizes in mm for truth.csv), "videos" (per-video
        n_frames, sweep kind) and "key_frames" (cohort.csv rows without label/split).
    """
    cv2.setNumThreads(1)
    geom = nodule_geometry(task.features, np.random.default_rng([task.seed, 11, task.index]))
    prof = task.center
    layout = layout_for(prof.frame_size)
    hr, wr = layout.region_hw
    spacing = prof.depth_cm * 10.0 / hr
    pnum = task.patient_id[2:]
    rgb = prof.photometric == "RGB"
    key_rows, videos = [], []
    for plan in task.videos:
        rng = np.random.default_rng([task.seed, 13, plan.index])
        half = geom.axes[2] * rng.uniform(1.25, 1.5) + 1.0
        sweep = make_sweep(rng, plan.n_frames, half, spacing)
        nodule_x = rng.uniform(-3.0, 3.0)
        video = render_video(
            geom, prof, sweep, (hr, wr), nodule_x, (task.seed, 17, task.index), rng
        )
        header = f"{task.patient_id}  THYROID {task.side[0].upper()} TRANS"
        frames = compose(video.frames, layout, overlay(layout, prof, header, rgb), rgb)
        study_date = f"2024{1 + (int(pnum) % 12):02d}{1 + (int(pnum) % 28):02d}"
        write_dicom(
            out / "videos" / f"{plan.video_id}.dcm",
            frames,
            layout,
            prof,
            seed=task.seed,
            patient_id=task.patient_id,
            patient_name=f"PHANTOM^{pnum}",
            study_key=task.patient_id,
            series_key=plan.video_id,
            series_number=plan.series_number,
            study_date=study_date,
        )
        offset = np.array([layout.x0, layout.y0, layout.x0, layout.y0], np.int32)
        boxes = np.where(video.boxes >= 0, video.boxes + offset, -1).astype(np.int32)
        _write_masks(out / "masks" / f"{plan.video_id}.npz", video, layout, boxes, sweep.z, spacing)
        for frame, box in pick_key_frames(video, sweep.z, geom.axes[2], rng):
            x0, y0, x1, y1 = annotate(box + offset, layout, spacing, rng)
            key_rows.append(
                {
                    "patient_id": task.patient_id,
                    "nodule_id": task.nodule_id,
                    "video": f"videos/{plan.video_id}.dcm",
                    "center": prof.name,
                    "frame": int(frame),
                    "x0": x0,
                    "y0": y0,
                    "x1": x1,
                    "y1": y1,
                }
            )
        videos.append({"video_id": plan.video_id, "n_frames": plan.n_frames, "sweep": sweep.kind})
    a, b, c = geom.axes
    geometry = {
        "nodule_id": task.nodule_id,
        "width_mm": round(2 * a, 2),
        "height_mm": round(2 * b, 2),
        "length_mm": round(2 * c, 2),
        "depth_mm": round(geom.depth, 2),
        "echo_level": round(geom.level, 3),
    }
    return {
        "nodule_id": task.nodule_id,
        "geometry": geometry,
        "videos": videos,
        "key_frames": key_rows,
    }


def pick_key_frames(
    video: RenderedVideo,
    z: np.ndarray,
    c: float,
    rng: np.random.Generator,
) -> list[tuple[int, np.ndarray]]:
    """1-10 (mostly 1-3) key frames near the sweep's pass through the nodule centre.

    Candidates: the plane within 0.3 of the elevational semi-axis of the centre and the cross
    section at least 70% of the largest; frames with 16 frames either side are preferred.

    Returns:
        [(frame index, region box (4,) int32)], sorted by frame.
    """
    n = len(z)
    good = (
        (np.abs(z) <= 0.3 * c) & (video.area >= 0.7 * video.area.max()) & (video.boxes[:, 0] >= 0)
    )
    cand = np.flatnonzero(good)
    if cand.size == 0:
        cand = np.array([int(np.argmax(video.area))])
    inner = cand[(cand >= 16) & (cand <= n - 16)]
    if inner.size:
        cand = inner
    k = min(int(rng.choice([1, 2, 3, 4, 6, 10], p=[0.45, 0.25, 0.15, 0.08, 0.05, 0.02])), cand.size)
    chosen = np.sort(rng.choice(cand, size=k, replace=False))
    return [(int(f), video.boxes[f]) for f in chosen]


def annotate(
    box: np.ndarray, layout, spacing: float, rng: np.random.Generator
) -> tuple[int, int, int, int]:
    """A clinician's box: the true box (frame pixels) drawn a little loose, with edge noise
    (`BOX_NOISE_MM`), kept inside the region."""
    sd = BOX_NOISE_MM / spacing
    loose = np.array([-1, -1, 1, 1]) * sd
    x0, y0, x1, y1 = (box + rng.normal(0.0, sd, 4) + loose).round()
    x0, x1 = np.clip([x0, x1], layout.x0, layout.x1)
    y0, y1 = np.clip([y0, y1], layout.y0, layout.y1)
    if x1 - x0 < 2 or y1 - y0 < 2:
        x0, y0, x1, y1 = box
    return int(x0), int(y0), int(x1), int(y1)


def _write_masks(
    path: Path, video: RenderedVideo, layout, boxes: np.ndarray, z: np.ndarray, spacing: float
) -> None:
    """masks/<video_id>.npz: calc, micro (T, H, W) bool in frame pixels; boxes (T, 4) int32
    (frame pixels, -1 = nodule not in plane); elevation_mm (T,); region (4,); spacing_mm.

    Written with fixed zip timestamps so the file is reproducible byte for byte.
    """
    n = len(video.frames)
    full = (n, layout.height, layout.width)
    region = (slice(None), slice(layout.y0, layout.y1), slice(layout.x0, layout.x1))
    arrays = {}
    for name, m in (("calc", video.calc), ("micro", video.micro)):
        a = np.zeros(full, bool)
        a[region] = m
        arrays[name] = a
    arrays["boxes"] = boxes
    arrays["elevation_mm"] = z.astype(np.float32)
    arrays["region"] = np.array([layout.x0, layout.y0, layout.x1, layout.y1], np.int32)
    arrays["spacing_mm"] = np.float32(spacing)
    with (
        atomic_path(path) as tmp,
        zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf,
    ):
        for name, arr in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asanyarray(arr), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            zf.writestr(info, buf.getvalue(), compress_type=zipfile.ZIP_DEFLATED, compresslevel=1)
