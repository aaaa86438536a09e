"""Grad-CAM and Grad-CAM++ for the 2D and 3D networks, overlays, and localisation scores.

`thyrovid cam RUN` writes, for chosen clips, a heatmap montage (PNG), a heatmap video (AVI)
and the raw map (.npy, float32 (T, H, W) in [0, 1]), plus cam.csv. When the clips come from the
phantom (`--truth PHANTOM_DIR`), it also scores whether the map looks at the calcifications:
the share of heatmap energy inside the (dilated) calcification mask against that mask's share
of the clip, and the pointing game (is the hottest voxel on a calcification?).

Conventions: the explained output is the malignancy logit (class 1); maps are normalised by
their maximum (0 = no evidence, 1 = the strongest), never shifted so that the maximum maps to 0.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from thyrovid.atomic import atomic_path
from thyrovid.errors import UserError

HELP = "3D/2D Grad-CAM heatmaps for clips (PNG montage, AVI, .npy) and localisation scores"


@dataclass
class CamResult:
    """A class-activation map for one input.

    Attributes:
        cam: float32 array in [0, 1], (T, H, W) for a clip or (H, W) for an image, at input size.
        logit: the model's malignancy logit for the input.
        prob: sigmoid(logit) = P(malignant).
    """

    cam: np.ndarray
    logit: float
    prob: float


def grad_cam(
    model: torch.nn.Module,
    x: torch.Tensor,
    layer: torch.nn.Module | None = None,
    method: str = "gradcam",
) -> list[CamResult]:
    """Grad-CAM (Selvaraju et al. 2017) or Grad-CAM++ (Chattopadhay et al. 2018).

    Args:
        model: a network from `thyrovid.models.build_model` (eval mode is set here).
        x: float input batch, (B, C, T, H, W) or (B, C, H, W), already normalised.
        layer: the layer to explain; defaults to `model.cam_layer`.
        method: "gradcam" or "gradcam++".

    Returns:
        One CamResult per batch item, maps upsampled to the input's (T, H, W) / (H, W).
    """
    if method not in ("gradcam", "gradcam++"):
        raise UserError(f"unknown CAM method {method!r}: use gradcam or gradcam++")
    layer = layer if layer is not None else getattr(model, "cam_layer", None)
    if layer is None:
        raise UserError("the model has no cam_layer; pass layer= explicitly")
    model.eval()
    store: dict[str, torch.Tensor] = {}

    def keep(_module, _inputs, output):
        output.retain_grad()
        store["act"] = output

    handle = layer.register_forward_hook(keep)
    try:
        with torch.enable_grad():
            x = x.detach().requires_grad_(False)
            logits = model(x)[:, 0]
            model.zero_grad(set_to_none=True)
            logits.sum().backward()
    finally:
        handle.remove()
    act = store["act"].detach().float()
    grad = store["act"].grad.detach().float()
    reduce_dims = tuple(range(2, act.ndim))
    if method == "gradcam":
        weights = grad.mean(dim=reduce_dims, keepdim=True)
    else:
        g2, g3 = grad.pow(2), grad.pow(3)
        denom = 2 * g2 + act.sum(dim=reduce_dims, keepdim=True) * g3
        alpha = g2 / torch.where(denom != 0, denom, torch.ones_like(denom))
        weights = (alpha * F.relu(grad)).sum(dim=reduce_dims, keepdim=True)
    cam = F.relu((weights * act).sum(dim=1, keepdim=True))
    mode = "trilinear" if cam.ndim == 5 else "bilinear"
    cam = F.interpolate(cam, size=x.shape[2:], mode=mode, align_corners=False)[:, 0]
    peak = cam.flatten(1).amax(dim=1).clamp_min(1e-12)
    cam = cam / peak.view(-1, *([1] * (cam.ndim - 1)))
    logits = logits.detach().float().cpu()
    probs = torch.sigmoid(logits)
    cam = cam.cpu()
    return [
        CamResult(cam[i].numpy().astype(np.float32), float(logits[i]), float(probs[i]))
        for i in range(cam.shape[0])
    ]


def stage_layer(
    model: torch.nn.Module, name: str, x: torch.Tensor | None = None
) -> torch.nn.Module:
    """The stage of a thyrovid network to explain.

    Args:
        model: a network from `build_model` (its `stages` are named, e.g. resnet50's layer1-4).
        name: a stage name, "last" (`model.cam_layer`), or "auto": the last stage whose map is
            still at least 7 pixels on its shorter side for input `x` (on small clips the
            last stage is 2x2: too coarse to show where a calcification is).
        x: an input batch, needed for "auto".
    """
    stages = getattr(model, "stages", None)
    if name == "last" or stages is None:
        return model.cam_layer
    if name != "auto":
        if name not in stages:
            raise UserError(f"no stage {name!r}; stages: {', '.join(stages.keys())}")
        return stages[name]
    sizes: dict[str, int] = {}
    hooks = [
        stage.register_forward_hook(
            lambda _m, _i, out, key=key: sizes.__setitem__(key, min(out.shape[-2:]))
        )
        for key, stage in stages.items()
    ]
    try:
        with torch.no_grad():
            model.eval()(x)
    finally:
        for h in hooks:
            h.remove()
    keep = [key for key, side in sizes.items() if side >= 7]
    return stages[keep[-1]] if keep else model.cam_layer


def localisation_scores(cam: np.ndarray, mask: np.ndarray, dilate: int = 2) -> dict:
    """How much of a map lies on the true calcifications.

    Args:
        cam: (T, H, W) or (H, W) float map in [0, 1].
        mask: boolean array of the same shape, True on calcification pixels.
        dilate: pixels of dilation applied to the mask in-plane (the map is coarse).

    Returns:
        dict with `energy_in_mask` (share of the map's sum inside the mask), `mask_fraction`
        (share of voxels in the mask: what a uniform map would score), `energy_ratio` (their
        quotient; > 1 means the map concentrates on calcifications) and `pointing_hit`.
        NaN scores when the mask is empty.
    """
    import cv2

    if cam.shape != mask.shape:
        raise ValueError(f"cam {cam.shape} and mask {mask.shape} differ in shape")
    m = mask.astype(np.uint8)
    if dilate > 0:
        kernel = np.ones((2 * dilate + 1, 2 * dilate + 1), np.uint8)
        planes = m.reshape(-1, *m.shape[-2:])
        m = np.stack([cv2.dilate(p, kernel) for p in planes]).reshape(m.shape)
    m = m.astype(bool)
    frac = float(m.mean())
    if frac == 0:
        return {
            "energy_in_mask": float("nan"),
            "mask_fraction": 0.0,
            "energy_ratio": float("nan"),
            "pointing_hit": float("nan"),
        }
    total = float(cam.sum())
    inside = float(cam[m].sum()) / total if total > 0 else 0.0
    hit = float(m.flat[int(np.argmax(cam))])
    return {
        "energy_in_mask": inside,
        "mask_fraction": frac,
        "energy_ratio": inside / frac,
        "pointing_hit": hit,
    }


def overlay(gray: np.ndarray, cam: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """Blend a map over grey frames: (..., H, W) uint8 + (..., H, W) [0,1] -> (..., H, W, 3) RGB."""
    import cv2

    g = gray.reshape(-1, *gray.shape[-2:])
    c = cam.reshape(-1, *cam.shape[-2:])
    out = []
    for frame, heat in zip(g, c):
        colour = cv2.applyColorMap(np.uint8(np.clip(heat, 0, 1) * 255), cv2.COLORMAP_INFERNO)
        colour = cv2.cvtColor(colour, cv2.COLOR_BGR2RGB).astype(np.float32)
        base = np.repeat(frame[..., None], 3, axis=2).astype(np.float32)
        out.append(np.uint8(np.clip((1 - alpha) * base + alpha * colour, 0, 255)))
    return np.stack(out).reshape(*gray.shape, 3)


def montage(clip: np.ndarray, cam: np.ndarray, n: int = 8) -> np.ndarray:
    """Two rows (frames, overlays) of `n` evenly spaced frames: (T,H,W) -> (2H, nW, 3) RGB."""
    t = clip.shape[0]
    idx = np.linspace(0, t - 1, min(n, t)).round().astype(int)
    top = np.concatenate([np.repeat(clip[i][..., None], 3, axis=2) for i in idx], axis=1)
    bottom = np.concatenate(list(overlay(clip[idx], cam[idx])), axis=1)
    return np.concatenate([top, bottom], axis=0)


def write_png(path: Path, rgb: np.ndarray) -> None:
    import cv2

    tmp = path.with_name(path.name + ".tmp.png")
    cv2.imwrite(str(tmp), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    os.replace(tmp, path)


def write_avi(path: Path, frames_rgb: np.ndarray, fps: float = 8.0) -> None:
    import cv2

    tmp = path.with_name(path.name + ".tmp.avi")
    h, w = frames_rgb.shape[1:3]
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    for f in frames_rgb:
        writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    writer.release()
    os.replace(tmp, path)


def _truth_mask(truth_dir: Path, row, shape: tuple[int, int, int], dims: int) -> np.ndarray | None:
    """The phantom's calcification mask for a clip, cut like the clip (window, ROI, resize).

    Reads PHANTOM/masks/<video_id>.npz (`calc`: (T, H, W) bool in frame pixels) as written by
    `thyrovid synth`. Returns a bool array of `shape`: (T_clip, H, W) for a 3D clip, (1, H, W)
    (the key frame) for a 2D image; None when the phantom has no mask for the video.
    """
    import cv2

    from thyrovid.extract import window_indices

    path = truth_dir / "masks" / f"{row['video_id']}.npz"
    if not path.exists():
        return None
    with np.load(path) as masks:
        calc = masks["calc"]
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
        One dict per clip: clip_id, label, prob and (with truth) the localisation scores.
    """
    import pandas as pd

    from thyrovid.data import read_clips, to_model_input
    from thyrovid.infer import inference_device
    from thyrovid.train import load_run

    run_dir, device = Path(run_dir), inference_device(device)
    model, config = load_run(run_dir, device=device)
    if work_dir is None:
        from thyrovid.evaluate import run_work_dir

        work_dir = run_work_dir(run_dir)
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
    for _, row in rows.iterrows():
        path = row["clip_path"] if dims == 3 else row["image_path"]
        raw = np.load(path)
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
        item = {"clip_id": cid, "label": int(row["label"]), "prob": res.prob}
        if truth_dir is not None:
            mask = _truth_mask(Path(truth_dir), row, cam3.shape, dims)
            if mask is not None:
                item.update(localisation_scores(cam3, mask))
        results.append(item)
    table = pd.DataFrame(results)
    tmp = out_dir / "cam.csv.tmp"
    table.to_csv(tmp, index=False)
    os.replace(tmp, out_dir / "cam.csv")
    return results


def add_arguments(parser) -> None:
    parser.add_argument("run", help="run folder written by `thyrovid train`")
    parser.add_argument("--work", help="extract work folder (default: the run's)")
    parser.add_argument("--clips", help="comma-separated clip ids (default: first N of --split)")
    parser.add_argument("--split", default="test", help="split to take clips from (default test)")
    parser.add_argument("-n", type=int, default=6, help="number of clips (default 6)")
    parser.add_argument("--method", default="gradcam", choices=["gradcam", "gradcam++"])
    parser.add_argument("--out", help="output folder (default RUN/cam)")
    parser.add_argument("--truth", help="phantom folder: score maps against calcification masks")
    parser.add_argument("--device", default="cpu")
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
    print(json.dumps(summary, indent=2))
    return 0
