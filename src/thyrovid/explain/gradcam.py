"""Grad-CAM and Grad-CAM++ for the 2D and 3D networks, and localisation scores.

Conventions: the explained output is the malignancy logit (class 1); maps are normalised by
their maximum (0 = no evidence, 1 = the strongest), never shifted so that the maximum maps to 0.
Overlays and their files are `thyrovid.explain.overlay`; `thyrovid cam` is `thyrovid.explain.cam`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from thyrovid.errors import UserError


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
