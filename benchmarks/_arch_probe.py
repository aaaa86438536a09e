"""Seventh-round probes: two network shapes the registry does not ship, on the demo's recipe.

    python benchmarks/_arch_probe.py WORK RUN --set arch=plain width=0.125
    python benchmarks/_arch_probe.py WORK RUN --set arch=resnet50_mil
    python benchmarks/_arch_probe.py WORK RUN --set arch=resnet50_mil --focus-check PHANTOM
    python benchmarks/_arch_probe.py WORK RUN --set arch=resnet50_focus --focus-prior P.pt

WORK is a demo's work folder (`thyrovid demo --seed N --out D` leaves D/work and D/phantom).
The run uses `thyrovid train` and `thyrovid evaluate` themselves, with the demo's 3D recipe for
that seed (`DemoSettings(seed).recipe()`), the overrides of `--set`, one thread, no DataLoader
workers, and the noisy-or patient vote; it prints one JSON line with the patient-level AUROC
per split. The two architectures are registered here only, for the life of this process:

- `plain`: four stages of two 3x3x3 convolutions (BatchNorm, ReLU), channels 64/128/256/512
  times `width`; the first stage keeps the full 64 x 64 px (no stem downsampling), the others
  halve space; time is strided by the demo's temporal-stride slots 0-3.
- `resnet50_focus` (ninth round): the registry's ResNet50 plus a frozen focus detector trained
  without labels on synthetic foci pasted into the training clips (`_focus_ceiling.py --pretext
  --save P`, then `--focus-prior P` here); its score (largest logit inside the box) times a
  learnt weight (initial 0.5) is added to the malignancy logit.
- `resnet50_mil`: the registry's ResNet50 plus a full-resolution focus branch (two 3x3x3
  convolutions of 4 channels, BatchNorm, ReLU, a 1x1x1 convolution to one map) whose top-8 mean
  over the clip's frames and the central part of the crop (the box itself: the x1.5 margin
  is cut off) is added to the malignancy logit. A multiple-instance reading of "a few bright
  foci in a few frames" that an average pool dilutes.

`--focus-check PHANTOM` (resnet50_mil only) scores each test and external clip by the focus
branch alone and prints its clip-level AUROC against the phantom's truth (any microcalcification
in the nodule) and against the label: does the branch learn a focus detector from the
malignancy labels? Beside it, the same two AUROCs of the hand-made baseline's fixed top-hat
maximum over the clip (`thyrovid.evaluation.baseline`), on the same clips.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from thyrovid.config import TrainConfig, coerce_values
from thyrovid.models.layers import BatchNorm, Conv
from thyrovid.models.network import NetConfig, StagedNet
from thyrovid.models.registry import register
from thyrovid.models.resnet import resnet50

FOCUS_CHANNELS = 4
TOP_K = 8


def _plain_stage(cfg: NetConfig, cin: int, cout: int, stride_hw: int, stride_t: int) -> nn.Module:
    first = (stride_t, stride_hw, stride_hw) if cfg.dims == 3 else stride_hw
    layers: list[nn.Module] = []
    for i in range(2):
        conv = Conv[cfg.dims](
            cin if i == 0 else cout, cout, 3, stride=first if i == 0 else 1, padding=1, bias=False
        )
        layers += [conv, BatchNorm[cfg.dims](cout), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


@register("plain")
def plain(cfg: NetConfig) -> StagedNet:
    channels = [cfg.ch(64 * 2**i) for i in range(4)]
    stages, cin = [], cfg.in_channels
    for i, c in enumerate(channels):
        stages.append((f"stage{i + 1}", _plain_stage(cfg, cin, c, 1 if i == 0 else 2, cfg.ts(i))))
        cin = c
    return StagedNet(cfg, stages, {}, cin)


class FocusMIL(StagedNet):
    """ResNet50's logit plus a weight times the top-k mean of a full-resolution focus map."""

    def add_focus_branch(self, cfg: NetConfig) -> None:
        d, c = cfg.dims, FOCUS_CHANNELS
        self.focus = nn.Sequential(
            Conv[d](cfg.in_channels, c, 3, padding=1, bias=False),
            BatchNorm[d](c),
            nn.ReLU(True),
            Conv[d](c, c, 3, padding=1, bias=False),
            BatchNorm[d](c),
            nn.ReLU(True),
            Conv[d](c, 1, 1),
        )
        self.focus_w = nn.Parameter(torch.tensor(0.5))

    def focus_score(self, x: torch.Tensor) -> torch.Tensor:
        m = self.focus(x)
        h, w = m.shape[-2:]
        inner = m[..., h // 6 : h - h // 6, w // 6 : w - w // 6].flatten(1)
        return inner.topk(min(TOP_K, inner.shape[1]), dim=1).values.mean(1, keepdim=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) + self.focus_w * self.focus_score(x)


class FocusPrior(StagedNet):
    """ResNet50's logit plus a weight times a frozen, self-supervised focus detector's score.

    The detector is `_focus_ceiling.Detector` trained by `_focus_ceiling.py --pretext --save P`
    (synthetic foci pasted into the training clips; no masks, no labels). Its score is the
    largest logit inside the crop's central 5/8 of the per-clip standardised clip, as there.
    """

    def add_focus_prior(self, path: Path) -> None:
        from _focus_ceiling import Detector

        self.prior = Detector()
        self.prior.load_state_dict(torch.load(path, map_location="cpu"))
        self.prior.requires_grad_(False)
        self.prior.eval()
        self.focus_w = nn.Parameter(torch.tensor(0.5))

    def train(self, mode: bool = True):
        super().train(mode)
        self.prior.eval()  # frozen: its BatchNorm statistics stay the pretext's
        return self

    @torch.no_grad()
    def focus_score(self, x: torch.Tensor) -> torch.Tensor:
        dims = tuple(range(1, x.ndim))
        z = (x - x.mean(dims, keepdim=True)) / x.std(dims, keepdim=True).clamp_min(2.0 / 255.0)
        m = self.prior(z)
        h, w = m.shape[-2:]
        inner = m[..., 3 * h // 16 : h - 3 * h // 16, 3 * w // 16 : w - 3 * w // 16]
        return inner.flatten(1).max(1, keepdim=True).values

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) + self.focus_w * self.focus_score(x)


FOCUS_PRIOR: list[Path] = []  # set by --focus-prior before the registry builds the network


@register("resnet50_focus")
def resnet50_focus(cfg: NetConfig) -> StagedNet:
    if not FOCUS_PRIOR:
        raise SystemExit("arch=resnet50_focus needs --focus-prior DETECTOR.pt")
    net = resnet50(cfg)
    net.__class__ = FocusPrior
    net.add_focus_prior(FOCUS_PRIOR[0])
    return net


@register("resnet50_mil")
def resnet50_mil(cfg: NetConfig) -> StagedNet:
    net = resnet50(cfg)
    net.__class__ = FocusMIL
    net.add_focus_branch(cfg)
    return net


def focus_check(run: Path, work: Path, phantom: Path) -> dict:
    """Clip-level AUROC of the focus branch alone, against microcalcification truth and label."""
    import pandas as pd

    from thyrovid.clips.dataset import to_model_input
    from thyrovid.evaluation.baseline import FEATURES, work_features
    from thyrovid.runs import load_run
    from thyrovid.stats.roc import auc

    model, _ = load_run(run)
    clips = pd.read_csv(work / "clips.csv")
    clips = clips[clips.split.isin(["test", "external"])].reset_index(drop=True)
    truth = pd.read_csv(phantom / "truth.csv").set_index("nodule_id")
    scores = []
    with torch.no_grad():
        for i in range(0, len(clips), 32):
            x = np.stack([np.load(work / p) for p in clips.clip_path[i : i + 32]])
            x = to_model_input(torch.from_numpy(x))
            scores.append(model.focus_score(x[:, None] if x.ndim == 4 else x)[:, 0].numpy())
    s = np.concatenate(scores)
    # the fixed reference on the same clips: the hand-made baseline's top-hat maximum over the clip
    tophat = work_features(work, clips)[:, FEATURES.index("focus_tophat_max_clip")]
    micro = (truth.loc[clips.nodule_id, "n_micro"].to_numpy() > 0).astype(int)
    out = {}
    for split in ("test", "external"):
        k = (clips.split == split).to_numpy()
        out[split] = {
            "clips": int(k.sum()),
            "auroc_vs_microcalcification": round(float(auc(micro[k], s[k])), 3),
            "auroc_vs_label": round(float(auc(clips.label.to_numpy()[k], s[k])), 3),
            "tophat_max_auroc_vs_microcalcification": round(float(auc(micro[k], tophat[k])), 3),
            "tophat_max_auroc_vs_label": round(float(auc(clips.label.to_numpy()[k], tophat[k])), 3),
        }
    return out


def demo_config(seed: int, over: dict, **fixed) -> TrainConfig:
    """The demo's 3D recipe for `seed` on one CPU thread, then `fixed`, then `--set` `over`."""
    from thyrovid.demo import DemoSettings

    s = DemoSettings(seed=seed)
    base = {
        **s.recipe(),
        "arch": s.arch,
        "dims": 3,
        "batch_size": s.batch_size,
        "seed": seed,
        "device": "cpu",
        "num_workers": 0,
        "tensorboard": False,
        **fixed,
    }
    base.update(coerce_values(over, "--set"))
    return TrainConfig.from_dict(base)


def train_and_score(work: Path, run: Path, config: TrainConfig) -> tuple[dict, list]:
    """Train (or resume) `run`, evaluate it with noisy-or: (patient AUROC per split, val/epoch)."""
    from thyrovid.evaluation.evaluate import evaluate
    from thyrovid.training.runfolder import finished
    from thyrovid.training.train import train

    if not finished(run):
        train(work, run, config, resume=(run / "state" / "last.pt").exists())
    metrics = evaluate(run, work_dir=work, device=torch.device("cpu"), patient_vote="noisy-or")
    auroc = {}
    for split, levels in metrics["splits"].items():
        value = (levels.get("patient") or {}).get("auroc")
        auroc[split] = round(value["value"], 3) if isinstance(value, dict) else value
    with open(run / "log.csv") as f:
        val = [r["val_auroc"][:5] for r in csv.DictReader(f)]
    return auroc, val


def probe_parser(doc: str) -> argparse.ArgumentParser:
    """WORK, RUN, --seed and --set, as every probe on the demo's recipe takes them."""
    p = argparse.ArgumentParser(description=doc.split("\n")[0])
    p.add_argument("work", type=Path)
    p.add_argument("run", type=Path)
    p.add_argument("--seed", type=int, default=0, help="the demo seed whose recipe is used")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE")
    return p


def main() -> None:
    p = probe_parser(__doc__)
    p.add_argument("--focus-check", type=Path, metavar="PHANTOM")
    p.add_argument(
        "--focus-prior",
        type=Path,
        metavar="DETECTOR.pt",
        help="arch=resnet50_focus: the pretext detector (_focus_ceiling.py --save)",
    )
    a = p.parse_args()
    if a.focus_prior:
        FOCUS_PRIOR.append(a.focus_prior)
    torch.set_num_threads(1)
    over = dict(kv.split("=", 1) for kv in a.set)
    t = time.time()
    auroc, val = train_and_score(a.work, a.run, demo_config(a.seed, over))
    result = {
        "seed": a.seed,
        "set": over,
        "patient_auroc": auroc,
        "val_per_epoch": val,
        "seconds": round(time.time() - t),
    }
    if a.focus_check:
        result["focus_branch"] = focus_check(a.run, a.work, a.focus_check)
    print(json.dumps(result))


if __name__ == "__main__":
    sys.exit(main())
