"""Heatmap overlays of a clip (RGB), montages, and their PNG / AVI files (written atomically)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from thyrovid.atomic import atomic_path


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

    with atomic_path(path) as tmp:
        cv2.imwrite(str(tmp), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def write_avi(path: Path, frames_rgb: np.ndarray, fps: float = 8.0) -> None:
    import cv2

    h, w = frames_rgb.shape[1:3]
    with atomic_path(path) as tmp:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
        for f in frames_rgb:
            writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
        writer.release()
