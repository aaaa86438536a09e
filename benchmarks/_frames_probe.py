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
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import torch
from torch import nn

from _arch_probe import demo_config, train_and_score
from thyrovid.models.network import NetConfig
from thyrovid.models.registry import register
from thyrovid.models.resnet import resnet50


class FrameNet(nn.Module):
    """A 2D encoder on every frame, mean and max over time, dropout, linear."""

    def __init__(self, cfg: NetConfig):
        super().__init__()
        self.cfg = cfg
        self.dims = 3
        self.required_frames = 1
        self.encoder = resnet50(dataclasses.replace(cfg, dims=2))
        channels = self.encoder.out_channels
        self.dropout = nn.Dropout(cfg.dropout)
        self.fc = nn.Linear(2 * channels, cfg.num_classes)
        nn.init.normal_(self.fc.weight, std=0.01)
        nn.init.zeros_(self.fc.bias)

    @property
    def cam_layer(self) -> nn.Module:
        return self.encoder.cam_layer

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
    return FrameNet(cfg)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("work", type=Path)
    p.add_argument("run", type=Path)
    p.add_argument("--seed", type=int, default=0, help="the demo seed whose recipe is used")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE")
    a = p.parse_args()
    torch.set_num_threads(1)
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
