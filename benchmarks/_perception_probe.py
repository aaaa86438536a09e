"""Tenth-round probe: what a small 2D CNN perceives when every frame carries the report's features.

    python benchmarks/_perception_probe.py D --targets truth  --epochs 1 --seed N
    python benchmarks/_perception_probe.py D --targets report --epochs 3 --seed N [--with-3d RUN]
    python benchmarks/_perception_probe.py D --targets label --epochs 3 --seed N
    python benchmarks/_perception_probe.py D --ceiling

D holds D/phantom and D/work (the demo's settings for seed N). The network: four blocks of two
3x3 convolutions (16/32/64/96 channels, BatchNorm, ReLU), max-pooling between blocks, the first
block at the full 64 px, then the average and the maximum over space side by side and one linear
layer to the seven features of `_aux_probe.AUX`. It is trained by BCE on random single frames of
the train split's clips (batches of 64, a random horizontal flip, AdamW, one-cycle learning rate
up to 2e-3), each frame with its nodule's features: the phantom's truth (`--targets truth`, a
bound no cohort has) or the simulated radiologist's report of `_aux_probe.reported`
(`--targets report`, what a cohort's reports give), or the nodule's malignancy label alone
(`--targets label`: a 2D network trained and scored on every frame of the clip, the frames'
mean logit per nodule) or beside the report (`--targets report+label`). Prints one JSON line:

- with a label output: its noisy-or patient AUROC per split (`frame_network_patient_auroc`);
- each feature's external nodule-level AUROC against the truth (the frames' mean per nodule);
- a second stage: a logistic regression (standardised inputs, C = 1) fitted on the train
  nodules' seven outputs and their malignancy labels, voted by noisy-or, patient AUROC on val,
  test and external;
- `--ceiling`, no network: a logistic regression (C = 1) on the phantom's own truth features
  (those seven, extrathyroidal extension and the foci count), fitted on the train nodules, noisy-
  or, external patient AUROC, with all of them and without margin and/or composition;
- with `--with-3d RUN` (an `_aux_probe.py` run on the same D): the same second stage on a
  choice fixed before any run: the 3D network's malignancy logit and micro head with this
  network's echogenicity, shape, macrocalcification and rim outputs.
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
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _aux_probe as aux  # noqa: E402

COMBINED_3D = ["malignancy", "micro"]
COMBINED_2D = ["echogenicity", "taller_than_wide", "macro", "rim"]


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(True),
    )


class FrameNet(nn.Module):
    def __init__(self, outputs: int):
        super().__init__()
        chans, layers, cin = (16, 32, 64, 96), [], 1
        for i, c in enumerate(chans):
            layers += ([nn.MaxPool2d(2)] if i else []) + [_block(cin, c)]
            cin = c
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(2 * cin, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x)
        return self.fc(torch.cat([f.mean((2, 3)), f.amax((2, 3))], 1))


def _frames(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(x).float()[:, None] / 127.5 - 1.0


def nodule_outputs(net: FrameNet, work: Path, clips: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    """The network's outputs `cols` per nodule: the mean over every frame of every clip of it."""
    rows = []
    with torch.no_grad():
        for i in range(0, len(clips), 8):
            x = np.stack([np.load(work / p) for p in clips.clip_path[i : i + 8]])
            n, t = x.shape[:2]
            rows.append(net(_frames(x.reshape(n * t, *x.shape[2:]))).reshape(n, t, -1).mean(1))
    df = pd.DataFrame(torch.cat(rows).numpy(), columns=cols)
    df["nodule_id"], df["split"] = clips.nodule_id.to_numpy(), clips.split.to_numpy()
    df["patient_id"], df["label"] = clips.patient_id.to_numpy(), clips.label.to_numpy()
    agg = {
        **{c: "mean" for c in cols},
        "split": "first",
        "patient_id": "first",
        "label": "first",
    }
    return df.groupby("nodule_id").agg(agg)


def nodule_patients(
    nodules: pd.DataFrame, prob: np.ndarray, split: str
) -> tuple[np.ndarray, np.ndarray]:
    """`split`'s patients as (label, P) from one probability per nodule, voted by noisy-or.

    The nodules go through the project's own vote (`inference.voting.soft_vote`, which
    `evaluate --patient-vote noisy-or` uses), each nodule as a clip of its own.
    """
    from thyrovid.inference.voting import soft_vote

    rows = nodules.reset_index().rename(columns={"index": "nodule_id"})
    rows = rows.assign(
        clip_id=rows.nodule_id, video_id=rows.nodule_id, center="", prob=np.asarray(prob)
    )
    p = soft_vote(rows[rows["split"] == split], patient_vote="noisy-or")
    p = p[p["level"] == "patient"]
    return p["label"].to_numpy(int), p["prob"].to_numpy(float)


def nodule_vote(nodules: pd.DataFrame, prob: np.ndarray, split: str) -> float:
    """Patient AUROC on `split` of one probability per nodule, voted by noisy-or."""
    from thyrovid.stats.roc import auc

    return round(float(auc(*nodule_patients(nodules, prob, split))), 3)


def second_stage(nodules: pd.DataFrame, cols: list[str]) -> dict:
    """Logistic regression on the train nodules' `cols`, noisy-or patient AUROC per split."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    train = nodules[nodules.split == "train"]
    scale = StandardScaler().fit(train[cols].to_numpy())
    lr = LogisticRegression(C=1.0, max_iter=5000)
    lr.fit(scale.transform(train[cols].to_numpy()), train.label.to_numpy())
    prob = lr.predict_proba(scale.transform(nodules[cols].to_numpy()))[:, 1]
    return {split: nodule_vote(nodules, prob, split) for split in ("val", "test", "external")}


def vote(nodules: pd.DataFrame) -> dict:
    """Noisy-or patient AUROC of the network's own malignancy output, per split."""
    prob = 1.0 / (1.0 + np.exp(-nodules.malignancy.to_numpy()))
    return {split: nodule_vote(nodules, prob, split) for split in ("val", "test", "external")}


def ceiling(d: Path) -> dict:
    """External patient AUROC of a regression on the truth features, with subsets left out."""
    from sklearn.linear_model import LogisticRegression

    raw = pd.read_csv(d / "phantom" / "truth.csv")
    t = aux.truth_targets(raw)
    t["extrathyroidal"] = (raw.margin == "extrathyroidal").to_numpy(float)
    t["n_micro"] = raw.n_micro.to_numpy(float)
    t["label"], t["patient_id"], t["split"] = (
        raw.label.values,
        raw.patient_id.values,
        raw.split.values,
    )
    every = [*aux.AUX, "extrathyroidal", "n_micro"]
    margin = ["margin_suspicious", "extrathyroidal"]
    subsets = {
        "all": every,
        "without_margin": [c for c in every if c not in margin],
        "without_composition": [c for c in every if c != "solid"],
        "without_margin_and_composition": [c for c in every if c not in [*margin, "solid"]],
    }
    train = t[t.split == "train"]
    out = {}
    for name, cols in subsets.items():
        lr = LogisticRegression(C=1.0, max_iter=5000).fit(train[cols].to_numpy(), train.label)
        out[name] = nodule_vote(t, lr.predict_proba(t[cols].to_numpy())[:, 1], "external")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("d", type=Path, help="folder with phantom/ and work/")
    p.add_argument(
        "--targets", choices=("truth", "report", "label", "report+label"), default="report"
    )
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--with-3d", type=Path, metavar="RUN", help="an _aux_probe.py run on D")
    p.add_argument("--ceiling", action="store_true", help="truth-feature regressions only")
    a = p.parse_args()
    if a.ceiling:
        print(json.dumps({"d": str(a.d), "truth_feature_external_patient_auroc": ceiling(a.d)}))
        return
    torch.set_num_threads(1)
    torch.manual_seed(a.seed)
    from thyrovid.stats.roc import auc

    work = a.d / "work"
    truth = aux.truth_targets(pd.read_csv(a.d / "phantom" / "truth.csv"))
    targets = aux.reported(truth, a.seed) if a.targets.startswith("report") else truth.copy()
    features = [] if a.targets == "label" else list(aux.AUX)
    cols = features + (["malignancy"] if a.targets.endswith("label") else [])
    clips = pd.read_csv(work / "clips.csv")
    train = clips[clips.split == "train"].reset_index(drop=True)
    x = np.stack([np.load(work / q) for q in train.clip_path])
    targets["malignancy"] = pd.read_csv(a.d / "phantom" / "truth.csv").set_index("nodule_id")[
        "label"
    ]
    y = torch.from_numpy(targets.loc[train.nodule_id, cols].to_numpy(np.float32))
    n, t = x.shape[:2]
    net = FrameNet(len(cols))
    opt = torch.optim.AdamW(net.parameters(), 1e-3, weight_decay=1e-4)
    steps = a.epochs * (n * t // 64)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 2e-3, total_steps=steps)
    rng = np.random.default_rng(a.seed)
    start = time.time()
    net.train()
    for _ in range(steps):
        ci, fi = rng.integers(0, n, 64), rng.integers(0, t, 64)
        batch = _frames(x[ci, fi])
        if rng.random() < 0.5:
            batch = batch.flip(3)
        loss = F.binary_cross_entropy_with_logits(net(batch), y[ci])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    net.eval()
    nodules = nodule_outputs(net, work, clips, cols)
    ext = nodules[nodules.split == "external"]
    perceived = {
        c: round(float(auc(aux.truth_binary(truth, c, ext.index), ext[c].to_numpy())), 3)
        for c in features
    }
    result = {
        "seed": a.seed,
        "targets": a.targets,
        "epochs": a.epochs,
        "external_nodule_auroc_vs_truth": perceived,
        "second_stage_patient_auroc": second_stage(nodules, features) if features else None,
        "seconds": round(time.time() - start),
    }
    if "malignancy" in cols:
        result["frame_network_patient_auroc"] = vote(nodules)
    if a.with_3d:
        heads = pd.read_csv(a.with_3d / "heads.csv", index_col="nodule_id")
        both = heads[COMBINED_3D + ["split", "patient_id", "label"]].join(
            nodules[COMBINED_2D].add_prefix("2d_")
        )
        cols = COMBINED_3D + ["2d_" + c for c in COMBINED_2D]
        result["combined_with_3d"] = {"features": cols, "patient_auroc": second_stage(both, cols)}
        result["3d_malignancy_alone"] = second_stage(both, ["malignancy"])
    print(json.dumps(result))


if __name__ == "__main__":
    sys.exit(main())
