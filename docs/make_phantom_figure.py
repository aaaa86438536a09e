"""Make docs/phantom.png: frames of a malignant and a benign phantom nodule along the sweep.

Usage: python docs/make_phantom_figure.py [OUT_PNG]

Writes a small phantom cohort to a temporary folder with `thyrovid.synth`, picks a malignant
nodule with microcalcifications and a benign one with shadowing macro/rim calcification, and
shows four frames of each clip (as stored in the DICOM file, burned-in text included) with the
nodule's box (yellow) where it is in the image plane and the calcification mask (red dots on
the right-most copy of the key frame).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pydicom

from thyrovid.synth.cohort import SynthConfig, synthesize


def _rgb(frame: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR) if frame.ndim == 2 else frame[..., ::-1].copy()


def _row(root: Path, key: pd.Series, title: str) -> np.ndarray:
    ds = pydicom.dcmread(root / key["video"])
    frames = ds.pixel_array
    masks = np.load(root / "masks" / (Path(key["video"]).stem + ".npz"))
    k = int(key["frame"])
    n = len(frames)
    picks = [max(0, k - 12), max(0, k - 5), k]
    tiles = []
    for f in picks:
        img = _rgb(frames[f])
        b = masks["boxes"][f]
        if b[0] >= 0:
            cv2.rectangle(
                img, (int(b[0]), int(b[1])), (int(b[2]) - 1, int(b[3]) - 1), (0, 220, 255), 1
            )
        cv2.putText(
            img,
            f"frame {f}/{n}",
            (6, img.shape[0] - 4),
            cv2.FONT_HERSHEY_PLAIN,
            0.8,
            (0, 220, 255),
            1,
            cv2.LINE_AA,
        )
        tiles.append(img)
    window = masks["calc"][max(0, k - 16) : k + 16].any(0)  # calcifications over the 32-frame clip
    img = _rgb(frames[k])
    img[window] = (40, 40, 255)
    cv2.putText(
        img,
        "calcifications, 32 frames",
        (6, img.shape[0] - 4),
        cv2.FONT_HERSHEY_PLAIN,
        0.8,
        (40, 40, 255),
        1,
        cv2.LINE_AA,
    )
    tiles.append(img)
    h = max(t.shape[0] for t in tiles)
    tiles = [cv2.copyMakeBorder(t, 0, h - t.shape[0], 0, 4, cv2.BORDER_CONSTANT) for t in tiles]
    band = np.zeros((22, sum(t.shape[1] for t in tiles), 3), np.uint8)
    cv2.putText(
        band, title, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA
    )
    return np.vstack([band, np.hstack(tiles)])


def main(out_png: str = "docs/phantom.png") -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        synthesize(
            root,
            SynthConfig(patients=16, seed=7, frames=(56, 60), centers=("int_a",)),
            progress=False,
        )
        truth = pd.read_csv(root / "truth.csv")
        cohort = pd.read_csv(root / "cohort.csv")
        mal = truth[(truth["label"] == 1) & (truth["n_micro"] >= 4)]
        mal = mal.sort_values("tirads_points", ascending=False).iloc[0]
        ben = truth[(truth["label"] == 0) & ((truth["n_macro"] > 0) | (truth["rim"] != "none"))]
        ben = ben.iloc[0]
        rows = []
        for t, name in ((mal, "malignant"), (ben, "benign")):
            key = cohort[cohort["nodule_id"] == t["nodule_id"]].iloc[0]
            title = (
                f"{name}: {t['composition']}, {t['echogenicity']}, {t['margin']}, "
                f"micro {t['n_micro']}, macro {t['n_macro']}, rim {t['rim']}, "
                f"P(malignant) {t['p_malignant']:.2f}"
            )
            rows.append(_row(root, key, title))
        width = max(r.shape[1] for r in rows)
        rows = [
            cv2.copyMakeBorder(r, 0, 4, 0, width - r.shape[1], cv2.BORDER_CONSTANT) for r in rows
        ]
        Path(out_png).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(out_png, np.vstack(rows))
        print(out_png)


if __name__ == "__main__":
    main(*sys.argv[1:])
