"""`thyrovid cam`: Grad-CAM heatmaps of chosen clips of a run, and localisation scores.

`thyrovid cam RUN` writes, for chosen clips, a heatmap montage (PNG), a heatmap video (AVI)
and the raw map (.npy, float32 (T, H, W) in [0, 1]), plus cam.csv. When the clips come from the
phantom (`--truth PHANTOM_DIR`), it also scores whether the map looks at the calcifications:
the share of heatmap energy inside the (dilated) calcification mask against that mask's share
of the clip, and the pointing game (is the hottest voxel on a calcification?).

A map that is all zeros (no evidence for malignancy reached the explained layer) is not shown
silently: its cam.csv row carries a warning, and the command prints it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

from thyrovid.atomic import atomic_path
from thyrovid.distributed import inference_device
from thyrovid.errors import UserError
from thyrovid.explain.gradcam import grad_cam, localisation_scores, stage_layer
from thyrovid.explain.overlay import montage, overlay, write_avi, write_png
from thyrovid.options import add_device_argument, add_work_argument
from thyrovid.reliability import Caution, emit, empty_heatmap
from thyrovid.runs import input_shape, load_run
from thyrovid.runs import work_dir as recorded_work_dir


def _truth_mask(
    truth_dir: Path, row, shape: tuple[int, int, int], dims: int, key: str = "calc"
) -> np.ndarray | None:
    """The phantom's calcification mask for a clip, cut like the clip (window, ROI, resize).

    Reads PHANTOM/masks/<video_id>.npz (`key`: `calc`, any calcification, or `micro`, the
    punctate foci; (T, H, W) bool in frame pixels) as written by `thyrovid synth`. Returns a bool array of `shape`: (T_clip, H, W) for a 3D clip, (1, H, W)
    (the key frame) for a 2D image; None when the phantom has no mask for the video.
    """
    import cv2

    from thyrovid.clips.geometry import window_indices

    path = truth_dir / "masks" / f"{row['video_id']}.npz"
    if not path.exists():
        return None
    with np.load(path) as masks:
        calc = masks[key]
    if dims == 3:
        idx = window_indices(
            int(row["first_frame"]), int(row["n_frames"]), int(row["pad_before"]), shape[0]
        )
    else:
        idx = [int(row["key_frame"])]
    x0, y0, x1, y1 = (int(row[k]) for k in ("roi_x0", "roi_y0", "roi_x1", "roi_y1"))
    crop = calc[idx, y0:y1, x0:x1].astype(np.uint8) * 255
    size = (shape[2], shape[1])
    return np.stack([cv2.resize(c, size, interpolation=cv2.INTER_AREA) for c in crop]) > 0


def explain_clips(
    run_dir: str | Path,
    work_dir: str | Path | None = None,
    clip_ids: list[str] | None = None,
    split: str = "test",
    n: int = 6,
    method: str = "gradcam",
    out_dir: str | Path | None = None,
    truth_dir: str | Path | None = None,
    device: str = "cpu",
    layer: str = "auto",
) -> list[dict]:
    """Explain clips of a trained run; writes maps, montages, videos and cam.csv.

    Args:
        run_dir: a run folder from `thyrovid train`.
        work_dir: the extract work folder (default: the one recorded in the run's config).
        clip_ids: clips to explain; default the first `n` of `split`, malignant first.
        out_dir: default RUN/cam.
        truth_dir: a phantom folder (from `thyrovid synth`) to score localisation.
        layer: the stage to explain: a stage name, "last", or "auto" (see `stage_layer`).

    Returns:
        One dict per clip: clip_id, label, prob, cam_max (the map's maximum before display),
        warning (`thyrovid.reliability.empty_heatmap`'s line for an all-zero map, else "") and
        (with truth) the localisation scores. cam.csv holds the same columns.
    """
    import pandas as pd

    from thyrovid.clips.dataset import read_clips, to_model_input

    run_dir, device = Path(run_dir), inference_device(device)
    model, config = load_run(run_dir, device=device)
    if work_dir is None:
        work_dir = recorded_work_dir(run_dir)
    work_dir = Path(work_dir)
    if not (work_dir / "clips.csv").exists():
        raise UserError(f"{work_dir / 'clips.csv'}: not found; pass --work WORK")
    clips = read_clips(work_dir)
    if clip_ids:
        unknown = sorted(set(clip_ids) - set(clips["clip_id"]))
        if unknown:
            raise UserError(f"clip ids not in {work_dir / 'clips.csv'}: {', '.join(unknown[:5])}")
        rows = clips[clips["clip_id"].isin(clip_ids)]
    else:
        rows = clips[clips["split"] == split].sort_values(
            ["label", "clip_id"], ascending=[False, True]
        )
        if n < 1:
            raise UserError(f"-n must be >= 1 (clips to explain), got {n}")
        rows = rows.head(n)
        if rows.empty:
            have = ", ".join(sorted(clips["split"].astype(str).unique()))
            raise UserError(
                f"no clips in split {split!r} of {work_dir / 'clips.csv'}; it has: {have} "
                "(pass --split)"
            )
    out_dir = Path(out_dir or run_dir / "cam")
    out_dir.mkdir(parents=True, exist_ok=True)
    dims = int(config.dims)
    results = []
    target = None  # clips of one work folder share a shape: choose the layer once
    want = input_shape(run_dir)  # (T, H, W) or (H, W)
    for _, row in rows.iterrows():
        path = row["clip_path"] if dims == 3 else row["image_path"]
        try:
            raw = np.load(path)
        except (OSError, ValueError, EOFError) as exc:
            why = " ".join(str(exc).split())[:100] or type(exc).__name__
            print(f"skipped: {path}: not a readable clip ({why}); rerun `thyrovid extract`",
                  file=sys.stderr)  # fmt: skip
            continue
        if (want is not None and tuple(raw.shape) != want) or raw.dtype != np.uint8:
            print(f"skipped: {path}: a {raw.dtype} {raw.shape} array, not a uint8 clip of the "
                  f"run's shape {want}; rerun `thyrovid extract`", file=sys.stderr)  # fmt: skip
            continue
        x = torch.from_numpy(np.ascontiguousarray(raw))[None, None].to(device)
        x = to_model_input(x)
        if target is None:
            target = stage_layer(model, layer, x)
        res = grad_cam(model, x, layer=target, method=method)[0]
        cid = str(row["clip_id"])
        with atomic_path(out_dir / f"{cid}.npy") as tmp:
            np.save(tmp, res.cam)
        clip3 = raw if raw.ndim == 3 else raw[None]
        cam3 = res.cam if res.cam.ndim == 3 else res.cam[None]
        write_png(out_dir / f"{cid}.png", montage(clip3, cam3))
        if dims == 3:
            write_avi(out_dir / f"{cid}.avi", overlay(clip3, cam3))
        item = {"clip_id": cid, "label": int(row["label"]), "prob": res.prob,
                "cam_max": float(np.max(res.cam)) if res.cam.size else 0.0}  # fmt: skip
        empty = empty_heatmap(res.cam, f"clip {cid}")
        item["warning"] = empty[0].message if empty else ""
        if truth_dir is not None:
            mask = _truth_mask(Path(truth_dir), row, cam3.shape, dims)
            if mask is not None:
                item.update(localisation_scores(cam3, mask))
        results.append(item)
    table = pd.DataFrame(results)
    with atomic_path(out_dir / "cam.csv") as tmp:
        table.to_csv(tmp, index=False)
    return results


def add_arguments(parser) -> None:
    parser.add_argument("run", help="run folder written by `thyrovid train`")
    add_work_argument(parser, "extract work folder")
    parser.add_argument("--clips", help="comma-separated clip ids (default: first N of --split)")
    parser.add_argument("--split", default="test", help="split to take clips from (default test)")
    parser.add_argument("-n", type=int, default=6, help="number of clips (default 6)")
    parser.add_argument("--method", default="gradcam", choices=["gradcam", "gradcam++"])
    parser.add_argument("--out", help="output folder (default RUN/cam)")
    parser.add_argument("--truth", help="phantom folder: score maps against calcification masks")
    add_device_argument(parser, default="cpu")
    parser.add_argument(
        "--layer",
        default="auto",
        help="stage to explain: a stage name (e.g. layer3), 'last', or 'auto' (default: the "
        "last stage whose map is at least 7 px on a side)",
    )


def run(args) -> int:
    results = explain_clips(
        args.run,
        args.work,
        args.clips.split(",") if args.clips else None,
        args.split,
        args.n,
        args.method,
        args.out,
        args.truth,
        args.device,
        args.layer,
    )
    summary = {"clips": len(results), "out": str(args.out or Path(args.run) / "cam")}
    scored = [r for r in results if np.isfinite(r.get("energy_ratio", np.nan))]
    if scored:
        summary["median_energy_ratio"] = float(np.median([r["energy_ratio"] for r in scored]))
        summary["pointing_game"] = float(np.mean([r["pointing_hit"] for r in scored]))
    cautions = [
        Caution("empty_heatmap", r["clip_id"], r["warning"]) for r in results if r["warning"]
    ]
    if cautions:
        summary["empty_maps"] = [c.where for c in cautions]
    print(json.dumps(summary, indent=2))
    emit(cautions)
    return 0
