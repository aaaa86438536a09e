"""Probe: how well can the phantom's microcalcifications be seen at all in the demo's clips?

    python benchmarks/_focus_ceiling.py D [--epochs 8] [--seed N]     # D from `thyrovid demo --out D`

The Bayes ceiling and the "all features" ceiling of `learning.py` assume every feature is known
exactly. A network sees pixels. This probe bounds what the pixels of the demo's clips
(16 x 64 x 64, ROI x1.5) allow for the sign that carries most of the phantom's malignancy
signal, the punctate echogenic foci, with supervision no real cohort has: the phantom's own
per-voxel focus masks (masks/<video>.npz `micro`, cut exactly like the clip).

1. A full-resolution 3D detector (four 3x3x3 convolutions, two of them dilated, no
   downsampling) is trained on the train split's clips to predict the focus mask voxel by
   voxel (BCE, positives weighted), on random 8 x 32 x 32 patches, half of them centred on a
   focus. Every choice here is fixed before any run; the epoch is the last one.
2. Each clip is scored by the detector's largest logit inside the crop's central 5/8 (where
   the box lies), each nodule by the largest over its clips; the white top-hat of the hand-made
   baseline (`evaluation.baseline`, feature `focus_tophat_max_clip`) is scored the same way.
3. "Perception ceilings": a logistic regression on the phantom's true TI-RADS features
   (`learning.truth_design`), with the microcalcification column taken from the truth, from the
   detector or from the top-hat, fitted on the train+val nodules; nodules voted to the patient
   by noisy-or (the demo's vote); patient-level AUROC per split.

Every other feature stays perfect, so each figure is an upper bound on what a network that
perceives the foci as well as this detector can reach. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from learning import truth_design  # benchmarks/learning.py

PATCH = (8, 32, 32)


def focus_masks(phantom: Path, clips: pd.DataFrame, shape: tuple[int, int, int]) -> np.ndarray:
    """(n_clips, T, H, W) bool: the phantom's focus voxels, cut and resized like each clip."""
    from thyrovid.explain.cam import _truth_mask

    return np.stack(
        [_truth_mask(phantom, row, shape, 3, key="micro") for row in clips.to_dict("records")]
    )


def standardise(clip: np.ndarray) -> np.ndarray:
    a = clip.astype(np.float32)
    return (a - a.mean()) / max(float(a.std()), 1.0)


class Detector(nn.Module):
    """Four 3x3x3 convolutions at full resolution (receptive field 13 x 13 x 13), one logit per voxel."""

    def __init__(self, c: int = 16):
        super().__init__()
        layers, cin = [], 1
        for cout, dil in ((c // 2, 1), (c, 1), (c, 2), (c, 2)):
            layers += [
                nn.Conv3d(cin, cout, 3, padding=dil, dilation=dil, bias=False),
                nn.BatchNorm3d(cout),
                nn.ReLU(inplace=True),
            ]
            cin = cout
        layers.append(nn.Conv3d(cin, 1, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


def paste_foci(a: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray]:
    """Self-supervised targets: 0-3 synthetic punctate foci pasted into a standardised patch.

    A focus is what the TI-RADS lexicon calls a punctate echogenic focus, drawn generically (not
    from the phantom's renderer): a Gaussian spot of sigma 0.5-1.0 px, 1.5-4 sd brighter than the
    patch at its peak, in plane for a few frames (a Gaussian in time, sigma 0.5-1.5 frames).
    Returns the patch and the mask of voxels where a pasted focus is above half its peak.
    """
    t, h, w = a.shape
    a = a.copy()
    mask = np.zeros(a.shape, bool)
    k = int(rng.choice(4, p=[0.4, 0.3, 0.2, 0.1]))
    tt, yy, xx = np.ogrid[:t, :h, :w]
    for _ in range(k):
        t0, y0, x0 = rng.uniform(0, t), rng.uniform(2, h - 2), rng.uniform(2, w - 2)
        sig, tau, amp = rng.uniform(0.5, 1.0), rng.uniform(0.5, 1.5), rng.uniform(1.5, 4.0)
        bump = np.exp(-((yy - y0) ** 2 + (xx - x0) ** 2) / (2 * sig**2)) * np.exp(
            -((tt - t0) ** 2) / (2 * tau**2)
        )
        a = np.maximum(a, a + np.float32(amp) * bump.astype(np.float32))
        mask |= bump > 0.5
    return a, mask


def patches(x, m, rng, n, pretext: bool = False):
    """n random patches (half centred near a focus voxel when the clip has one).

    pretext: ignore the phantom's masks; targets are synthetic foci pasted into each patch.
    """
    t, h, w = PATCH
    xs, ms = [], []
    for _ in range(n):
        i = int(rng.integers(len(x)))
        pos = np.argwhere(m[i])
        if not pretext and len(pos) and rng.random() < 0.5:
            c = pos[rng.integers(len(pos))] + rng.integers(-3, 4, 3)
            z0 = int(np.clip(c[0] - t // 2, 0, x.shape[1] - t))
            y0 = int(np.clip(c[1] - h // 2, 0, x.shape[2] - h))
            x0 = int(np.clip(c[2] - w // 2, 0, x.shape[3] - w))
        else:
            z0 = int(rng.integers(0, x.shape[1] - t + 1))
            y0 = int(rng.integers(0, x.shape[2] - h + 1))
            x0 = int(rng.integers(0, x.shape[3] - w + 1))
        a, b = (
            x[i, z0 : z0 + t, y0 : y0 + h, x0 : x0 + w],
            m[i, z0 : z0 + t, y0 : y0 + h, x0 : x0 + w],
        )
        if pretext:
            a, b = paste_foci(a, rng)
        if rng.random() < 0.5:
            a, b = a[:, :, ::-1], b[:, :, ::-1]
        if rng.random() < 0.5:
            a, b = a[::-1], b[::-1]
        xs.append(a.copy())
        ms.append(b.copy())
    return torch.from_numpy(np.stack(xs))[:, None], torch.from_numpy(np.stack(ms))[:, None].float()


def train_detector(x, m, epochs: int, seed: int, log, pretext: bool = False) -> Detector:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = Detector()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    steps_per_epoch = max(1, len(x) // 4)  # 16-patch batches: ~4 patches per clip per epoch
    total = epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-3, total_steps=total, pct_start=0.1)
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=torch.tensor(20.0))
    model.train()
    for epoch in range(epochs):
        start, running = time.perf_counter(), 0.0
        for _ in range(steps_per_epoch):
            xb, mb = patches(x, m, rng, 16, pretext)
            loss = loss_fn(model(xb), mb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            running += float(loss.detach())
        log(
            f"epoch {epoch + 1}/{epochs} loss {running / steps_per_epoch:.4f} "
            f"({time.perf_counter() - start:.0f} s)"
        )
    return model.eval()


@torch.no_grad()
def clip_scores(model: Detector, x: np.ndarray) -> np.ndarray:
    h, w = x.shape[2:]
    out = []
    for i in range(0, len(x), 8):
        logit = model(torch.from_numpy(x[i : i + 8])[:, None])[:, 0]
        inner = logit[:, :, 3 * h // 16 : h - 3 * h // 16, 3 * w // 16 : w - 3 * w // 16]
        out.append(inner.flatten(1).max(1).values.numpy())
    return np.concatenate(out)


def auroc(y, s) -> float | None:
    from thyrovid.stats.roc import auc

    y = np.asarray(y).astype(int)
    return None if y.min() == y.max() else round(float(auc(y, np.asarray(s, float))), 3)


def ceilings(truth: pd.DataFrame, micro: np.ndarray) -> dict:
    """Patient AUROC (noisy-or) per split of a truth-feature regression with `micro` as given."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from thyrovid.evaluation.baseline import patient_auroc

    x = truth_design(truth, micro)
    fit = truth["split"].isin(["train", "val"]).to_numpy()
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
    model.fit(x[fit], truth["label"][fit])
    nod = truth.assign(clip_id=truth["nodule_id"], video_id=truth["nodule_id"])
    nod["center"] = nod.get("center", "")
    prob = model.predict_proba(x)[:, 1]
    out = {}
    for split in ("val", "test", "external"):
        v = patient_auroc(nod, prob, split, "noisy-or")
        out[split] = None if v is None else round(v, 3)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("demo", type=Path, help="a demo folder (phantom/ and work/)")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save", type=Path, help="also save the detector's weights here (torch.save)")
    p.add_argument("--scores", type=Path, help="also write each clip's detector score here (CSV)")
    p.add_argument(
        "--pretext",
        action="store_true",
        help="train on synthetic foci pasted into the clips (no masks, no labels)",
    )
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    phantom, work = a.demo / "phantom", a.demo / "work"
    clips = pd.read_csv(work / "clips.csv")
    truth = pd.read_csv(phantom / "truth.csv")
    t0 = time.perf_counter()
    raw = np.stack([np.load(work / p) for p in clips["clip_path"]])
    x = np.stack([standardise(c) for c in raw])
    m = focus_masks(phantom, clips, raw.shape[1:])
    log(
        f"{len(clips)} clips, {m.any(axis=(1, 2, 3)).mean():.2f} with a focus voxel "
        f"({time.perf_counter() - t0:.0f} s)"
    )
    train = (clips["split"] == "train").to_numpy()
    t1 = time.perf_counter()
    model = train_detector(x[train], m[train], a.epochs, a.seed, log, a.pretext)
    train_s = time.perf_counter() - t1
    if a.save:
        torch.save(model.state_dict(), a.save)
    det = clip_scores(model, x)
    if a.scores:
        clips[["clip_id", "split"]].assign(focus_score=det).to_csv(a.scores, index=False)

    from thyrovid.evaluation.baseline import work_features

    tophat = work_features(work, clips)[:, 0]
    has_micro = dict(zip(truth["nodule_id"], truth["n_micro"] > 0))
    y_clip = clips["nodule_id"].map(has_micro).to_numpy()
    seen_clip = m.any(axis=(1, 2, 3))
    result: dict = {
        "demo": str(a.demo),
        "seed": a.seed,
        "epochs": a.epochs,
        "pretext": a.pretext,
        "train_seconds": round(train_s),
        "clips": len(clips),
    }
    by = {}
    for name, s in (("detector", det), ("tophat", tophat)):
        per = {}
        for split in ("test", "external"):
            sel = (clips["split"] == split).to_numpy()
            per[split] = {
                "clip_vs_nodule_has_micro": auroc(y_clip[sel], s[sel]),
                "clip_vs_focus_in_clip": auroc(seen_clip[sel], s[sel]),
            }
        nod = pd.Series(s).groupby(clips["nodule_id"].to_numpy()).max()
        score = truth["nodule_id"].map(nod).to_numpy()
        ext = (truth["split"] == "external").to_numpy() & ~np.isnan(score)
        per["external_nodule_vs_has_micro"] = auroc((truth["n_micro"] > 0)[ext], score[ext])
        filled = np.where(np.isnan(score), np.nanmedian(score), score)
        per["ceiling_patient_auroc"] = ceilings(truth, filled)
        by[name] = per
    by["truth"] = {"ceiling_patient_auroc": ceilings(truth, (truth["n_micro"] > 0).to_numpy())}
    by["none"] = {"ceiling_patient_auroc": ceilings(truth, np.zeros(len(truth)))}
    result["micro_from"] = by
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    raise SystemExit(main())
