"""Eighth-round probe: `thyrovid pretrain` (nodule-contrastive, labels unread), then the demo's
3D recipe started from it, on one demo phantom.

    OMP_NUM_THREADS=1 python benchmarks/_pretrain_probe.py D SEED

D is a demo folder (`thyrovid demo --seed SEED --out D` leaves D/phantom and D/work; when they
are missing, this script synthesises and extracts them as the demo does). It runs, each only if
its output is missing:
1. `pretrain` on D/work's training clips with the demo's 3D network (ResNet50 x0.25, the demo's
   temporal strides and batch size), 10 epochs, temperature 0.2 -> D/pretrained;
2. `train` with the demo's 3D recipe for SEED and `init_from=D/pretrained` -> D/probe_pre;
3. `evaluate` with the noisy-or patient vote;
4. a linear probe: logistic regression (C = 0.01 and 0.1, standardised features) on the pooled
   last feature map of the pretrained network and of a randomly initialised one, fitted on the
   train + val clips' labels, scored as patient-level external AUROC (noisy-or): does the
   pretrained representation hold more of the malignancy than random features?
One thread, no DataLoader workers. Prints one JSON line.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch


def pooled_features(net, ds) -> np.ndarray:
    from thyrovid.clips.dataset import to_model_input
    from thyrovid.training.pretrain import pooled

    out = []
    with torch.no_grad():
        for i in range(0, len(ds), 32):
            x = torch.stack([ds[j]["x"] for j in range(i, min(i + 32, len(ds)))])
            out.append(pooled(net, to_model_input(x)).numpy())
    return np.concatenate(out)


def linear_probe(d: Path) -> dict:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from thyrovid.clips.dataset import ClipDataset
    from thyrovid.runs import build_network, load_run
    from thyrovid.training.engine import validation_auroc

    pre, cfg = load_run(d / "pretrained", classifier=False)
    networks = {"pretrained": pre.eval(), "random": build_network(cfg).eval()}
    fit = ClipDataset(d / "work", ["train", "val"], 3)
    ext = ClipDataset(d / "work", ["external"], 3)
    res = {}
    for name, net in networks.items():
        a, b = pooled_features(net, fit), pooled_features(net, ext)
        scaler = StandardScaler().fit(a)
        for c in (0.01, 0.1):
            model = LogisticRegression(C=c, max_iter=2000).fit(scaler.transform(a), fit.labels)
            p = model.predict_proba(scaler.transform(b))[:, 1]
            preds = {k: (float(q), 0.0) for k, q in zip(ext.clips["clip_id"], p)}
            auroc = validation_auroc(ext.clips, preds, "patient", "noisy-or")
            res[f"{name}_C{c}"] = round(auroc, 4)
    return res


def main() -> None:
    d, seed = Path(sys.argv[1]), int(sys.argv[2])
    from thyrovid.clips.extract import extract
    from thyrovid.config import TrainConfig
    from thyrovid.demo import DemoSettings
    from thyrovid.evaluation.evaluate import evaluate
    from thyrovid.synth.cohort import SynthConfig, synthesize
    from thyrovid.training.pretrain import pretrain
    from thyrovid.training.train import train

    torch.set_num_threads(1)
    s = DemoSettings(seed=seed)
    phantom, work = d / "phantom", d / "work"
    seconds = {}
    t0 = time.perf_counter()
    if not (phantom / "summary.json").exists():
        synthesize(phantom, SynthConfig(patients=s.patients, seed=s.seed))
    if not (work / "clips.csv").exists():
        extract(phantom / "cohort.csv", work, frames=s.frames, size=s.size, seed=s.seed)
    seconds["data"] = time.perf_counter() - t0
    recipe = {**s.recipe(), "arch": s.arch, "dims": 3, "batch_size": s.batch_size}
    cfg = TrainConfig.from_dict(
        {**recipe, "seed": s.seed, "device": "cpu", "num_workers": 0}, source="demo recipe"
    )
    pre, run = d / "pretrained", d / "probe_pre"
    t0 = time.perf_counter()
    if not (pre / "model.safetensors").exists():
        pretrain(work, pre, cfg.replace(epochs=10), temperature=0.2)
    seconds["pretrain"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    if not (run / "config.yaml").exists():
        train(work, run, cfg.replace(init_from=str(pre)))
    seconds["train"] = time.perf_counter() - t0
    metrics = evaluate(run, work_dir=work, device="cpu", patient_vote="noisy-or")
    auroc = {
        split: round(m["patient"]["auroc"]["value"], 4) for split, m in metrics["splits"].items()
    }
    losses = [float(r.split(",")[1]) for r in (pre / "log.csv").read_text().splitlines()[1:]]
    out = {"seed": seed, "patient_auroc": auroc, "pretrain_loss": losses, "seconds": seconds}
    out["linear_probe_external"] = linear_probe(d)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
