"""Eleventh-round probe: a frame encoder with temporal pooling, on the demo's 3D recipe.

    python benchmarks/_frames_probe.py WORK RUN --seed N [--set KEY=VALUE ...]

WORK is a demo's work folder (`thyrovid demo --seed N --out D` leaves D/work). The tenth round
found that a small 2D CNN on single frames learns the nodule's echogenicity and shape (nodule
AUROC 0.96-1.00 against the phantom's truth) where every 3D network tried learns them at
0.52-0.81. The architecture registered here, for the life of this process only, keeps what the
2D networks do and still reads the whole clip:

- `resnet50_frames`: the registry's 2D ResNet50 (same width, full 64 x 64 px per frame) is
  applied to every frame of the clip with shared weights, so each clip gives the encoder
  T frames of gradient; each frame's last feature map is averaged over space, and the T frame
  vectors are pooled over time by their mean and their maximum (a focus that shows in a few
  frames survives the maximum), concatenated, then dropout and one linear layer give the
  malignancy logit.

Training and evaluation are `_arch_probe.demo_config` / `train_and_score` (the demo's recipe for
that seed, one thread, no DataLoader workers, the noisy-or patient vote), with channels-last
off (the encoder's weights are 4D). It prints one JSON line with the patient AUROC per split.

    python benchmarks/_frames_probe.py WORK RUN --linear-probe

does not train: it asks what a trained run's features encode. Each clip's pooled feature vector
(the one the last linear layer reads: `resnet50_frames`' mean+max, or a registry network's global
average pool) is averaged over the nodule's clips; for each of the phantom's seven TI-RADS
features (`_aux_probe.truth_targets`, WORK/../phantom/truth.csv) a logistic regression on the
standardised vectors (C = 1) is fitted on the train nodules and scored on the external nodules
(AUROC against the truth; echogenicity: very hypoechoic or not). Beside them, at nodule level
on the external split: the malignancy AUROC of the network's own logit, and of the same
regression refitted on the malignancy label of the train nodules. Works on any run of this
probe, of `_arch_probe.py`, or of `thyrovid train`.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from _arch_probe import demo_config, probe_parser, train_and_score
from _aux_probe import AUX, clip_batches, truth_binary, truth_targets
from thyrovid.models.network import NetConfig
from thyrovid.models.registry import register
from thyrovid.models.resnet import resnet50


class FramePoolNet(nn.Module):
    """A 2D encoder on every frame, mean and max over time, dropout, linear."""

    def __init__(self, cfg: NetConfig):
        super().__init__()
        self.encoder = resnet50(dataclasses.replace(cfg, dims=2))
        channels = self.encoder.out_channels
        self.dropout = nn.Dropout(cfg.dropout)
        self.fc = nn.Linear(2 * channels, cfg.num_classes)
        nn.init.normal_(self.fc.weight, std=0.01)
        nn.init.zeros_(self.fc.bias)

    def frame_vectors(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) clips -> (B, T, channels) per-frame feature vectors."""
        b, c, t, h, w = x.shape
        frames = x.transpose(1, 2).reshape(b * t, c, h, w)
        f = self.encoder.features(frames).mean((-2, -1))
        return f.view(b, t, -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.frame_vectors(x)
        z = torch.cat([f.mean(1), f.amax(1)], dim=1)
        return self.fc(self.dropout(z))


@register("resnet50_frames")
def resnet50_frames(cfg: NetConfig) -> nn.Module:
    return FramePoolNet(cfg)


def pooled(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The vector the network's last linear layer reads, for a batch of clips."""
    if isinstance(model, FramePoolNet):
        f = model.frame_vectors(x)
        return torch.cat([f.mean(1), f.amax(1)], dim=1)
    f = model.features(x)
    v = model.pool(f).flatten(1)
    if getattr(model, "max_pool", None) is not None:
        v = torch.cat([v, model.max_pool(f).flatten(1)], dim=1)
    return v


def linear_probe(run: Path, work: Path) -> dict:
    """External nodule AUROC of a linear read-out of the run's features, per TI-RADS feature."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from thyrovid.runs import load_run
    from thyrovid.stats.roc import auc

    clips = pd.read_csv(work / "clips.csv")
    clips = clips[clips.split.isin(["train", "external"])].reset_index(drop=True)
    model, _ = load_run(run)
    model.eval()
    vectors, logits = [], []
    with torch.no_grad():
        for x in clip_batches(work, clips):
            vectors.append(pooled(model, x).numpy())
            logits.append(model(x)[:, 0].numpy())
    feats = pd.DataFrame(np.concatenate(vectors))
    feats["nodule_id"] = clips.nodule_id.to_numpy()
    per_nodule = feats.groupby("nodule_id").mean()
    own = pd.Series(np.concatenate(logits)).groupby(clips.nodule_id.to_numpy()).mean()
    split = clips.groupby("nodule_id").split.first().loc[per_nodule.index]
    label = clips.groupby("nodule_id").label.max().loc[per_nodule.index]
    t = truth_targets(pd.read_csv(work.parent / "phantom" / "truth.csv"))
    train, ext = per_nodule[split == "train"], per_nodule[split == "external"]

    def readout(y_train, y_ext) -> float:
        fit = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=5000))
        fit.fit(train.to_numpy(), y_train)
        return round(float(auc(y_ext, fit.decision_function(ext.to_numpy()))), 3)

    out = {}
    for col in AUX:
        y = truth_binary(t, col, train.index)
        if len(set(y)) < 2:
            continue
        out[col] = readout(y, truth_binary(t, col, ext.index))
    # malignancy, nodule level: the network's own logit against a refit of its last layer
    out["malignancy_own_logit"] = round(float(auc(label[ext.index], own[ext.index])), 3)
    out["malignancy_refit"] = readout(label[train.index], label[ext.index])
    return out


def main() -> None:
    p = probe_parser(__doc__)
    p.add_argument("--linear-probe", action="store_true", help="no training: read RUN's features")
    a = p.parse_args()
    torch.set_num_threads(1)
    if a.linear_probe:
        probe = linear_probe(a.run, a.work)
        print(json.dumps({"run": str(a.run), "external_nodule_auroc_vs_truth": probe}))
        return
    over = dict(kv.split("=", 1) for kv in a.set)
    t = time.time()
    config = demo_config(a.seed, over, arch="resnet50_frames", channels_last=False)
    auroc, val = train_and_score(a.work, a.run, config)
    result = {
        "seed": a.seed,
        "arch": config.arch,
        "set": over,
        "patient_auroc": auroc,
        "val_per_epoch": val,
        "seconds": round(time.time() - t),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    sys.exit(main())
