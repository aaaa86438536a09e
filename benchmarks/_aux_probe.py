"""Tenth-round probe: the demo's 3D recipe plus auxiliary heads for the report's TI-RADS features.

    python benchmarks/_aux_probe.py D RUN --seed N --aux report   # noisy simulated reports
    python benchmarks/_aux_probe.py D RUN --seed N --aux truth    # the phantom's truth (bound)
    python benchmarks/_aux_probe.py D RUN --seed N --aux none     # the demo's recipe, same loop
    python benchmarks/_aux_probe.py D RUN --seed N --aux report --arch plain

D is a folder with D/phantom (synth) and D/work (extract) made with the demo's settings for
seed N. Every real thyroid cohort has a radiology report per nodule that states its ACR TI-RADS
features (composition, echogenicity, shape, margin, echogenic foci): a far denser supervision
than one malignancy label. The probe trains the demo's ResNet50 x0.25 (3D, the demo's recipe,
one thread) with 1 + 7 logits: the malignancy logit, and seven auxiliary logits trained by BCE
(mean over the seven, weight `--weight`) on the nodule's reported features scaled to [0, 1]:
solid composition (points / 2), echogenicity (0-3) / 3, taller than wide, suspicious margin
(lobulated, irregular or extrathyroidal), punctate echogenic foci present, macrocalcification
present, rim calcification present. `--arch plain` trains the seventh round's `plain` network
(`_arch_probe.plain`, a full-resolution first stage) at the same width and recipe instead.
Only the malignancy logit is evaluated by `thyrovid evaluate`; RUN/heads.csv keeps every
head's nodule-level mean, and the JSON line gives each auxiliary head's external nodule AUROC
against the phantom's truth (echogenicity: very hypoechoic or not).

`--aux report`: each feature of each nodule is what a simulated radiologist reports: with
probability q the truth is replaced by a draw from that feature's distribution in the cohort,
which makes Cohen's kappa against the truth 1 - q and between two such readers (1 - q)^2. The
q's come from the interobserver kappas of Hoang et al., AJR 2018 (eight radiologists, 100
nodules, ACR TI-RADS): shape 0.61, macrocalcifications 0.73, margin and the other echogenic foci
0.25-0.39 (0.32 taken), the rest "fair to moderate" (0.50 taken for composition and
echogenicity): q = 1 - sqrt(kappa). Drawn once per nodule from `--seed`, before training.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

from thyrovid.models.network import StagedNet
from thyrovid.models.registry import register
from thyrovid.models.resnet import resnet50

AUX = (
    "solid",
    "echogenicity",
    "taller_than_wide",
    "margin_suspicious",
    "micro",
    "macro",
    "rim",
)
INTEROBSERVER_KAPPA = {
    "solid": 0.50,
    "echogenicity": 0.50,
    "taller_than_wide": 0.61,
    "margin_suspicious": 0.32,
    "micro": 0.32,
    "macro": 0.73,
    "rim": 0.32,
}


def truth_targets(truth: pd.DataFrame) -> pd.DataFrame:
    """(nodule_id -> seven features in [0, 1]) from the phantom's truth.csv."""
    t = pd.DataFrame(index=truth.nodule_id.to_numpy())
    t["solid"] = truth.tirads_composition.to_numpy() / 2.0
    t["echogenicity"] = truth.tirads_echogenicity.to_numpy() / 3.0
    t["taller_than_wide"] = (truth.taller_than_wide.to_numpy() > 0).astype(float)
    t["margin_suspicious"] = (truth.tirads_margin.to_numpy() > 0).astype(float)
    t["micro"] = (truth.n_micro.to_numpy() > 0).astype(float)
    t["macro"] = (truth.n_macro.to_numpy() > 0).astype(float)
    t["rim"] = (truth.rim.astype(str).to_numpy() != "none").astype(float)
    return t


def truth_binary(t: pd.DataFrame, col: str, nodules) -> np.ndarray:
    """The feature as a 0/1 truth: present, or (echogenicity) very hypoechoic."""
    v = t.loc[nodules, col].to_numpy()
    return (v >= 0.99 if col == "echogenicity" else v > 0.5).astype(int)


def clip_batches(work: Path, clips: pd.DataFrame, size: int = 32):
    """The clips of `clips`, in its order, as model inputs (B, 1, T, H, W), `size` at a time."""
    from thyrovid.clips.dataset import to_model_input

    for i in range(0, len(clips), size):
        x = np.stack([np.load(work / q) for q in clips.clip_path[i : i + size]])
        yield to_model_input(torch.from_numpy(x))[:, None]


def head_outputs(run: Path, work: Path, clips: pd.DataFrame) -> pd.DataFrame:
    """Malignancy logit and auxiliary logits per nodule (mean over its clips), every split."""
    from thyrovid.runs import load_run

    model, _ = load_run(run)
    model.eval()
    rows = []
    with torch.no_grad():
        for x in clip_batches(work, clips):
            logit = model(x)
            rows.append(torch.cat([logit, model.last_aux], 1).numpy())
    df = pd.DataFrame(np.concatenate(rows), columns=["malignancy", *AUX])
    df["nodule_id"], df["split"] = clips.nodule_id.to_numpy(), clips.split.to_numpy()
    df["patient_id"], df["label"] = clips.patient_id.to_numpy(), clips.label.to_numpy()
    cols = ["malignancy", *AUX]
    agg = {**{c: "mean" for c in cols}, "split": "first", "patient_id": "first", "label": "first"}
    return df.groupby("nodule_id").agg(agg)


def reported(t: pd.DataFrame, seed: int) -> pd.DataFrame:
    """A simulated radiologist's report of `t` (marginal-replacement noise, see the docstring)."""
    rng = np.random.default_rng([seed, 2018])
    out = t.copy()
    for col in AUX:
        q = 1.0 - np.sqrt(INTEROBSERVER_KAPPA[col])
        swap = rng.random(len(t)) < q
        draw = rng.choice(t[col].to_numpy(), size=len(t), replace=True)
        out[col] = np.where(swap, draw, t[col].to_numpy())
    return out


class AuxNet(StagedNet):
    """A network with 1 + len(AUX) outputs; forward returns the first, keeps the rest."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = super().forward(x)
        self.last_aux = out[:, 1:]
        return out[:, :1]


@register("plain_aux")
def plain_aux(cfg) -> StagedNet:
    """The seventh round's `plain` network (`_arch_probe.plain`: a full-resolution first stage)."""
    from dataclasses import replace

    from _arch_probe import plain

    net = plain(replace(cfg, num_classes=1 + len(AUX)))
    net.__class__ = AuxNet
    return net


@register("resnet50_aux")
def resnet50_aux(cfg) -> StagedNet:
    from dataclasses import replace

    net = resnet50(replace(cfg, num_classes=1 + len(AUX)))
    net.__class__ = AuxNet
    return net


def patch_engine(targets: dict[str, np.ndarray], weight: float) -> None:
    """Engine.train_epoch with the auxiliary BCE added (a copy of the engine's loop)."""
    from tqdm import tqdm

    from thyrovid import distributed as dist
    from thyrovid.clips.dataset import to_model_input
    from thyrovid.training import engine as eng
    from thyrovid.training.augment import augment_batch

    def train_epoch(self, loader, epoch):
        cfg = self.config
        torch.manual_seed(cfg.seed * 100_003 + epoch * 1_009)
        self.runner.train()
        total = torch.zeros(2, dtype=torch.float64)
        start = time.perf_counter()
        for step, batch in enumerate(tqdm(loader, desc=f"epoch {epoch + 1}", leave=False)):
            if cfg.max_train_batches is not None and step >= cfg.max_train_batches:
                break
            x, y = batch["x"], batch["y"]
            if cfg.augment:
                x = augment_batch(x, batch["index"], cfg.seed, epoch, self.aug)
            x = eng.prepare_input(to_model_input(x), self.device, False)
            logits = self.runner(x)[:, 0]
            loss = self.criterion(logits.float(), y)
            if weight > 0:
                tgt = torch.from_numpy(np.stack([targets[c] for c in batch["clip_id"]])).float()
                loss = loss + weight * F.binary_cross_entropy_with_logits(self.net.last_aux, tgt)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            if self.ema is not None:
                self.ema.update(self.net)
            total += torch.tensor([loss.item() * len(y), len(y)], dtype=torch.float64)
        parts = dist.gather_objects(total.tolist())
        loss_sum, n = (sum(p[i] for p in parts) for i in (0, 1))
        return loss_sum / max(n, 1), int(n), time.perf_counter() - start

    eng.Engine.train_epoch = train_epoch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("d", type=Path, help="folder with phantom/ and work/")
    p.add_argument("run", type=Path)
    p.add_argument("--seed", type=int, default=0, help="the demo seed whose recipe is used")
    p.add_argument("--aux", choices=("report", "truth", "none"), default="report")
    p.add_argument("--weight", type=float, default=1.0)
    p.add_argument(
        "--arch",
        choices=("resnet50", "plain"),
        default="resnet50",
        help="plain: _arch_probe.plain (full-resolution first stage), same width and recipe",
    )
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE")
    a = p.parse_args()
    torch.set_num_threads(1)
    from _arch_probe import demo_config, train_and_score
    from thyrovid.stats.roc import auc

    work = a.d / "work"
    truth = pd.read_csv(a.d / "phantom" / "truth.csv")
    t = truth_targets(truth)
    rep = reported(t, a.seed) if a.aux == "report" else t
    agree = {c: round(float((rep[c] == t[c]).mean()), 3) for c in AUX}
    clips = pd.read_csv(work / "clips.csv")
    targets = {
        cid: rep.loc[nid, list(AUX)].to_numpy(float)
        for cid, nid in zip(clips.clip_id, clips.nodule_id)
    }
    patch_engine(targets, 0.0 if a.aux == "none" else a.weight)

    over = dict(kv.split("=", 1) for kv in a.set)
    config = demo_config(a.seed, over, arch=f"{a.arch}_aux", width=0.25)
    start = time.time()
    auroc, val = train_and_score(work, a.run, config)
    heads = head_outputs(a.run, work, clips)
    heads.to_csv(a.run / "heads.csv")  # nodule-level means, for _perception_probe.py --with-3d
    ext = heads[heads.split == "external"]
    head_auc = {
        c: round(float(auc(truth_binary(t, c, ext.index), ext[c].to_numpy())), 3) for c in AUX
    }
    print(
        json.dumps(
            {
                "seed": a.seed,
                "aux": a.aux,
                "weight": a.weight,
                "arch": a.arch,
                "set": over,
                "report_agreement_with_truth": agree if a.aux == "report" else None,
                "patient_auroc": auroc,
                "heads_external_nodule_auroc_vs_truth": head_auc,
                "val_per_epoch": val,
                "seconds": round(time.time() - start),
            }
        )
    )


if __name__ == "__main__":
    sys.exit(main())
