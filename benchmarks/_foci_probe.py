"""Twelfth-round probe: a full-resolution focus detector learnt from the report, beside the network.

    python benchmarks/_foci_probe.py DEMO RUN --seed N [--targets report|truth] [--epochs 4]

DEMO holds the demo's phantom and clips (DEMO/phantom, DEMO/work: `thyrovid demo --seed N --out
DEMO`, or synth + extract with the demo's settings); RUN is a 3D run of the demo's recipe on
them (DEMO/runs/3d_resnet50, or `_arch_probe.py DEMO/work RUN --seed N`). The question: the
demo's 3D network plus the phantom's *true* "has punctate echogenic foci" per nodule, in a
logistic regression, gains 0.04-0.08 external patient AUROC over the network alone (printed as
`bound_network_plus_true_foci`; BENCHMARKS.md, "Twelfth round"). How much of that does a
focus detector get that is learnt only from what a cohort has: the radiology report's
punctate-foci statement, at the interobserver agreement of Hoang et al. (kappa 0.32,
`_aux_probe.reported`), one bit per nodule, no masks?

The detector is a 2D network run on every frame at the full 64 x 64 px (three 3x3 convolutions
of 8 channels, the third dilated by 2, BatchNorm, ReLU, a 1x1 convolution to one focus logit
per pixel). A clip's score is the mean of its 8 largest logits over its 16 frames, inside the
crop's central 5/8 (the box: the crop is the box x 1.5): a multiple-instance reading of "a few
bright foci in a few frames". It is trained with BCE on the train split's clips against their
nodule's reported foci (or, `--targets truth`, the phantom's truth: a bound no cohort has),
class-balanced, Adam 1e-3, batch 16, flips in space and time, each clip standardised to zero
mean and unit sd. Nothing is selected: the last epoch is scored.

Printed (one JSON line): the detector's nodule-level AUROC (mean of the clip scores) against the
truth on the test and external splits; the external patient AUROC (nodules by mean of clips,
patients by noisy-or, as the demo votes) of the network alone, of network + detector and of
network + true foci, each a logistic regression on [network logit, second column] fitted on
the val + test nodules (the network never selected on them: the demo keeps the last epoch).
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _aux_probe import reported, truth_binary, truth_targets  # noqa: E402
from _perception_probe import nodule_vote  # noqa: E402

TOP_K = 8
LO, HI = 12, 52  # the crop's central 5/8 at 64 px


class FocusNet(nn.Module):
    """Per-pixel focus logits of every frame, (B, T, H, W) from (B, T, H, W)."""

    def __init__(self, channels: int = 8):
        super().__init__()
        c = channels

        def block(cin, cout, dilation=1):
            return [
                nn.Conv2d(cin, cout, 3, padding=dilation, dilation=dilation, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
            ]

        self.body = nn.Sequential(*block(1, c), *block(c, c), *block(c, c, 2), nn.Conv2d(c, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, h, w = x.shape
        return self.body(x.reshape(b * t, 1, h, w)).reshape(b, t, h, w)


def clip_score(maps: torch.Tensor) -> torch.Tensor:
    """Mean of the TOP_K largest logits inside the box, per clip: (B,)."""
    inner = maps[:, :, LO:HI, LO:HI].flatten(1)
    return inner.topk(TOP_K, dim=1).values.mean(1)


def load(work: Path, clips: pd.DataFrame) -> torch.Tensor:
    """Every clip of `clips`, standardised per clip: float32 (N, T, H, W)."""
    x = np.stack([np.load(work / p) for p in clips.clip_path]).astype(np.float32)
    x -= x.mean(axis=(1, 2, 3), keepdims=True)
    x /= x.std(axis=(1, 2, 3), keepdims=True) + 1e-6
    return torch.from_numpy(x)


def train_detector(x: torch.Tensor, y: torch.Tensor, epochs: int, seed: int) -> FocusNet:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = FocusNet()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    pos = float(y.mean())
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=torch.tensor((1 - pos) / max(pos, 1e-6)))
    for epoch in range(epochs):
        net.train()
        order, total = rng.permutation(len(x)), 0.0
        for i in range(0, len(x), 16):
            idx = order[i : i + 16]
            xb = x[idx]
            if rng.random() < 0.5:
                xb = xb.flip(3)
            if rng.random() < 0.5:
                xb = xb.flip(1)
            loss = loss_fn(clip_score(net(xb)), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        print(f"epoch {epoch + 1}: loss {total / len(x):.4f}", file=sys.stderr, flush=True)
    return net


def score(net: FocusNet, x: torch.Tensor) -> np.ndarray:
    net.eval()
    with torch.no_grad():
        return np.concatenate(
            [clip_score(net(x[i : i + 32])).numpy() for i in range(0, len(x), 32)]
        )


def network_logits(run: Path) -> pd.DataFrame:
    """clip_id and the run's malignancy logit `net` per clip, from RUN/predictions.csv."""
    pred = pd.read_csv(run / "predictions.csv")
    pred = pred[pred.level == "clip"].rename(columns={"id": "clip_id"})
    prob = pred.prob.clip(1e-6, 1 - 1e-6)
    return pd.DataFrame({"clip_id": pred.clip_id, "net": np.log(prob / (1 - prob))})


def main() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("demo", type=Path)
    p.add_argument("run", type=Path, help="the 3D run whose predictions.csv is stacked")
    p.add_argument("--seed", type=int, default=0, help="the demo's seed (reports, training)")
    p.add_argument("--targets", choices=("report", "truth"), default="report")
    p.add_argument("--epochs", type=int, default=4)
    a = p.parse_args()
    torch.set_num_threads(1)
    start = time.perf_counter()
    work, phantom = a.demo / "work", a.demo / "phantom"
    clips = pd.read_csv(work / "clips.csv")
    truth = truth_targets(pd.read_csv(phantom / "truth.csv"))
    targets = truth if a.targets == "truth" else reported(truth, a.seed)
    train = clips[clips.split == "train"].reset_index(drop=True)
    y = torch.tensor(truth_binary(targets, "micro", train.nodule_id), dtype=torch.float32)
    net = train_detector(load(work, train), y, a.epochs, a.seed)
    rest = clips[clips.split != "train"].reset_index(drop=True)
    rest["focus"] = score(net, load(work, rest))

    rest = rest.merge(network_logits(a.run), on="clip_id")
    nod = rest.groupby("nodule_id").agg(
        patient_id=("patient_id", "first"),
        split=("split", "first"),
        label=("label", "first"),
        net=("net", "mean"),
        focus=("focus", "mean"),
    )
    nod["micro"] = truth_binary(truth, "micro", nod.index).astype(float)
    out: dict = {"seed": a.seed, "targets": a.targets, "epochs": a.epochs}
    trained = train.nodule_id.unique()
    agree = truth_binary(targets, "micro", trained) == truth_binary(truth, "micro", trained)
    out["reported_agreement_train"] = round(float(agree.mean()), 3)
    for split in ("test", "external"):
        s = nod[nod.split == split]
        out[f"detector_vs_truth_{split}"] = round(roc_auc_score(s.micro, s.focus), 3)
    fit, ext = nod[nod.split.isin(["val", "test"])], nod[nod.split == "external"]

    def patients(p_nodule: np.ndarray) -> float:
        return nodule_vote(ext, p_nodule, "external")

    out["external_network"] = patients(1 / (1 + np.exp(-ext.net.to_numpy())))
    for name, col in (
        ("external_network_plus_detector", "focus"),
        ("bound_network_plus_true_foci", "micro"),
    ):
        lr = LogisticRegression(max_iter=1000).fit(fit[["net", col]], fit.label)
        out[name] = patients(lr.predict_proba(ext[["net", col]])[:, 1])
    out["seconds"] = round(time.perf_counter() - start)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
