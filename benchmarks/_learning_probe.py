"""Single-seed learning probes of BENCHMARKS.md ("second round"): not a benchmark, not run by `make bench`.

A plain in-memory training loop on an extracted work folder (`thyrovid extract` output), with the
project's `build_model` and augmentation, printing one JSON line per epoch and a final line with
the external/test AUROC per centre (and per-centre BatchNorm re-estimation with --adabn).

    python benchmarks/_learning_probe.py WORK --dims 2 --epochs 12 --aug shift --flip --adabn

Third round: `--aux W --truth PHANTOM/truth.csv` adds 11 TI-RADS feature targets (from the
phantom's truth: composition, echogenicity, shape, margin, foci) to the loss with weight W, and
prints each target's clip-level AUROC on train and external; `--auxhead` makes the malignancy
logit a linear function of those 11 feature logits (and the box aspect); `--arch plain` is an
8-convolution plain CNN (no stem downsampling) instead of a registry network; `--dump DIR`
saves the feature logits per split (DIR/aux_<split>.npy).
"""

import argparse
import copy
import json
import math
import time

import numpy as np
import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F

from _tirads import NAMES as TIRADS_NAMES  # benchmarks/_tirads.py
from _tirads import targets as tirads_targets
from thyrovid.models import build_model
from thyrovid.stats.roc import auc
from thyrovid.training.augment import AugmentParams, augment_batch

p = argparse.ArgumentParser()
p.add_argument("work")
p.add_argument("--dims", type=int, default=2)
p.add_argument("--arch", default="resnet50")
p.add_argument("--width", type=float, default=0.125)
p.add_argument("--epochs", type=int, default=10)
p.add_argument("--seed", type=int, default=0)
p.add_argument("--lr", type=float, default=1e-3)
p.add_argument("--bs", type=int, default=16)
p.add_argument("--ts", default="1,2,2,2,2")
p.add_argument("--wd", type=float, default=0.0)
p.add_argument("--aug", default="paper")
p.add_argument("--norm", default="z")
p.add_argument("--adabn", action="store_true")
p.add_argument("--flip", action="store_true")
p.add_argument("--threads", type=int, default=1)
p.add_argument("--limit", type=int, default=0)
p.add_argument("--dropout", type=float, default=0.5)
p.add_argument("--ema", type=float, default=0)
p.add_argument("--attention", action="store_true")
p.add_argument("--ls", type=float, default=0)
p.add_argument("--frametrain", type=int, default=0)
p.add_argument("--tophat", action="store_true")
p.add_argument("--aspect", action="store_true")
p.add_argument("--mixup", type=float, default=0)
p.add_argument("--warmup", type=float, default=0.05)
p.add_argument("--aux", type=float, default=0, help="weight of the TI-RADS feature targets")
p.add_argument("--auxhead", action="store_true", help="malignancy = linear(feature logits)")
p.add_argument("--truth", help="the phantom's truth.csv (for --aux)")
p.add_argument("--dump", help="folder for the feature logits per split")
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(a.seed)
RNG = np.random.default_rng(a.seed)
clips = pd.read_csv(f"{a.work}/clips.csv")
col = "clip_path" if a.dims == 3 else "image_path"
splits = {
    s: clips[clips.split == s].reset_index(drop=True) for s in ("train", "val", "test", "external")
}
if a.limit:
    pats = sorted(splits["train"].patient_id.unique())
    rng = np.random.default_rng(a.seed)
    keep = set(rng.choice(pats, a.limit, replace=False))
    splits["train"] = splits["train"][splits["train"].patient_id.isin(keep)].reset_index(drop=True)
X = {
    s: torch.from_numpy(np.stack([np.load(f"{a.work}/{q}") for q in df[col]])).unsqueeze(1)
    for s, df in splits.items()
}
Y = {s: torch.tensor(df.label.values, dtype=torch.float32) for s, df in splits.items()}
T = X["train"].shape[2] if a.dims == 3 else None
if a.frametrain:
    XC = {
        s_: torch.from_numpy(
            np.stack([np.load(f"{a.work}/{q}") for q in df["clip_path"]])
        ).unsqueeze(1)
        for s_, df in splits.items()
    }
if a.aux or a.auxhead:
    a.aspect = True  # the feature head lives in the side-input wrapper
AUX_NAMES = TIRADS_NAMES


class Plain(nn.Module):
    """Four stages of two 3x3(x3) convolutions, 16-128 channels; the first keeps full size."""

    def __init__(self, dims, channels=(16, 32, 64, 128)):
        super().__init__()
        conv = nn.Conv2d if dims == 2 else nn.Conv3d
        norm = nn.BatchNorm2d if dims == 2 else nn.BatchNorm3d
        layers, cin = [], 1
        for i, c in enumerate(channels):
            st = 1 if i == 0 else 2
            stride = st if dims == 2 else (1 if i < 2 else 2, st, st)
            layers += [conv(cin, c, 3, stride=stride, padding=1, bias=False), norm(c), nn.ReLU()]
            layers += [conv(c, c, 3, padding=1, bias=False), norm(c), nn.ReLU()]
            cin = c
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1) if dims == 2 else nn.AdaptiveAvgPool3d(1)
        self.out_channels = cin
        self.fc = nn.Linear(cin, 1)

    def forward(self, x):
        return self.fc(self.pool(self.features(x)).flatten(1))


net = (
    Plain(a.dims)
    if a.arch == "plain"
    else build_model(
        a.arch,
        dims=a.dims,
        width=a.width,
        dropout=a.dropout,
        temporal_strides=tuple(int(v) for v in a.ts.split(",")),
        attention=a.attention,
        input_frames=T,
        in_channels=2 if a.tophat else 1,
    )
)


if a.aux or a.auxhead:
    if not a.truth:
        p.error("--aux/--auxhead need --truth PHANTOM/truth.csv")
    TRUTH = pd.read_csv(a.truth).set_index("nodule_id")
    AUX = {s_: torch.from_numpy(tirads_targets(TRUTH, df)) for s_, df in splits.items()}
ASP = {
    s_: torch.tensor(np.log((df.y1 - df.y0).values / (df.x1 - df.x0).values), dtype=torch.float32)
    for s_, df in splits.items()
}


class Side(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net
        self.fc = nn.Linear((len(AUX_NAMES) if a.auxhead else net.out_channels) + 1, 1)
        self.aux = nn.Linear(net.out_channels, len(AUX_NAMES))
        self.dp = nn.Dropout(a.dropout)
        nn.init.normal_(self.fc.weight, std=0.01)
        nn.init.zeros_(self.fc.bias)

    def forward(self, x, asp):
        f = self.net.pool(self.net.features(x)).flatten(1)
        self.last = self.aux(f)
        if a.auxhead:
            return self.fc(torch.cat([self.last, 3 * asp[:, None]], 1))
        return self.fc(self.dp(torch.cat([f, 3 * asp[:, None]], 1)))


if a.aspect:
    net = Side(net)


def run(model, x, asp):
    return model(x, asp) if a.aspect else model(x)


opt = torch.optim.AdamW(net.parameters(), lr=a.lr, weight_decay=a.wd)
n = len(Y["train"])
steps_per = math.ceil(n / a.bs)
total = steps_per * a.epochs


def lr_at(step):
    w = a.warmup * total
    if step < w:
        return (step + 1) / w
    return 0.5 * (1 + math.cos(math.pi * (step - w) / max(1, total - w)))


sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
pos = Y["train"].mean().item()
pw = pos / (1 - pos)
AUG = {
    "paper": AugmentParams(),
    "none": None,
    "light": AugmentParams(
        translate=0.06, scale=(1.0, 1.0), rotate=0.0, brightness=0.0, contrast=0.0, gamma=0.0
    ),
    "shift": AugmentParams(
        translate=0.08, scale=(0.95, 1.1), rotate=5.0, brightness=0.05, contrast=0.1, gamma=0.1
    ),
}[a.aug]


def NORM(x):
    if a.norm == "fixed":
        z = x * (2 / 255) - 1
    else:
        d = tuple(range(1, x.ndim))
        m = x.mean(d, keepdim=True)
        sd = x.std(d, keepdim=True).clamp_min(1.0)
        z = (x - m) / sd
    if a.tophat:
        from thyrovid.models.attention import white_tophat

        z = torch.cat([z, white_tophat(z, a.dims, 5)], 1)
    return z


ema = None
if a.ema:
    ema = copy.deepcopy(net)
    for q in ema.parameters():
        q.requires_grad_(False)


def predict(model, x, adabn=False, asp=None):
    if adabn:
        model = copy.deepcopy(model)
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.reset_running_stats()
                m.momentum = None
        model.train()
        with torch.no_grad():
            for i in range(0, len(x), 32):
                run(model, NORM(x[i : i + 32].float()), asp[i : i + 32])
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(x), 64):
            xx = NORM(x[i : i + 64].float())
            aa = asp[i : i + 64]
            o = run(model, xx, aa).squeeze(1)
            if a.flip:
                o = 0.5 * (o + run(model, xx.flip(-1), aa).squeeze(1))
            out.append(torch.sigmoid(o))
    return torch.cat(out).numpy()


def pat_auc(df, prob):
    d = df.assign(prob=prob).groupby("patient_id").agg(y=("label", "max"), p=("prob", "mean"))
    return float(auc(d.y.values, d.p.values)) if d.y.nunique() == 2 else None


t0 = time.time()
g = torch.Generator().manual_seed(a.seed)
for ep in range(a.epochs):
    net.train()
    perm = torch.randperm(n, generator=g).repeat(max(1, a.frametrain))
    perm = perm[torch.randperm(len(perm), generator=g)]
    tl = nb = 0
    for i in range(0, len(perm) - 1, a.bs):
        idx = perm[i : i + a.bs]
        if a.frametrain:
            fr = torch.randint(0, XC["train"].shape[2], (len(idx),), generator=g)
            xb = XC["train"][idx, :, fr]
        else:
            xb = X["train"][idx]
        x = (
            augment_batch(xb, idx, a.seed, ep * 97 + int(fr[0]) if a.frametrain else ep, AUG)
            if AUG
            else xb.float()
        )
        y = Y["train"][idx]
        if a.flip:
            f = torch.rand(len(idx), generator=g) < 0.5
            x[f] = x[f].flip(-1)
        xn = NORM(x)
        w = torch.where(y > 0, torch.ones(()), torch.tensor(pw))
        yt = y * (1 - a.ls) + 0.5 * a.ls
        if a.mixup:
            lam = float(RNG.beta(a.mixup, a.mixup))
            j = torch.randperm(len(idx))
            xn = lam * xn + (1 - lam) * xn[j]
            yt = lam * yt + (1 - lam) * yt[j]
            w = lam * w + (1 - lam) * w[j]
        loss = F.binary_cross_entropy_with_logits(
            run(net, xn, ASP["train"][idx]).squeeze(1), yt, weight=w
        )
        if a.aux:
            loss = loss + a.aux * F.binary_cross_entropy_with_logits(net.last, AUX["train"][idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        tl += loss.item()
        nb += 1
        if ema is not None:
            with torch.no_grad():
                for pe, pn in zip(ema.state_dict().values(), net.state_dict().values()):
                    pe.copy_(
                        pe * a.ema + pn * (1 - a.ema)
                    ) if pe.dtype.is_floating_point else pe.copy_(pn)
    m = ema if ema is not None else net
    res = {"ep": ep + 1, "loss": round(tl / nb, 3), "s": round(time.time() - t0)}
    for s in ("val", "test", "external"):
        res[s] = round(pat_auc(splits[s], predict(m, X[s], asp=ASP[s])), 3)
    if a.frametrain and (ep + 1) % 2 == 0 or ep + 1 == a.epochs:
        if a.frametrain:
            for s in ("val", "external"):
                xc = XC[s]
                Tn = xc.shape[2]
                pf = predict(
                    m,
                    xc.permute(0, 2, 1, 3, 4).reshape(-1, 1, xc.shape[-2], xc.shape[-1]),
                    asp=ASP[s].repeat_interleave(Tn),
                ).reshape(-1, Tn)
                res[s + "_fmean"] = round(pat_auc(splits[s], pf.mean(1)), 3)
    print(json.dumps(res), flush=True)
final = dict(res)
for s in ("test", "external"):
    for ad in (False, True) if a.adabn else (False,):
        if ad:
            pr = np.zeros(len(splits[s]))
            for _cen, d in splits[s].groupby("center"):
                pr[d.index.values] = predict(
                    m, X[s][d.index.values], adabn=True, asp=ASP[s][d.index.values]
                )
            final[s + "_adabn"] = round(pat_auc(splits[s], pr), 3)
        else:
            pr = predict(m, X[s], asp=ASP[s])
        for cen, d in splits[s].assign(prob=pr).groupby("center"):
            final[f"{s}{'_adabn' if ad else ''}_{cen}"] = round(pat_auc(d, d.prob.values), 3)
if a.aux or a.auxhead:
    m.eval()
    with torch.no_grad():
        for s_ in ("train", "val", "test", "external"):
            outs = []
            for i in range(0, len(X[s_]), 64):
                run(m, NORM(X[s_][i : i + 64].float()), ASP[s_][i : i + 64])
                outs.append(m.last)
            o, y = torch.cat(outs).numpy(), AUX[s_].numpy()
            if a.dump:
                np.save(f"{a.dump}/aux_{s_}.npy", o)
            if s_ in ("train", "external"):
                final["aux_" + s_] = {
                    name: round(float(auc(y[:, k], o[:, k])), 3)
                    for k, name in enumerate(AUX_NAMES)
                    if 0 < y[:, k].mean() < 1
                }
print(json.dumps({"final": final, "args": vars(a)}))
