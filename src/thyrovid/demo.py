"""`thyrovid demo`: the whole flow on the phantom, end to end.

synth -> extract -> train (3D and 2D twins of one architecture) -> evaluate -> compare (DeLong
3D vs 2D) -> reader study (simulated radiologists with and without the 3D model) -> Grad-CAM
scored against the phantom's calcification masks.

The default settings are sized for a laptop CPU (a few minutes): a small cohort, 16-frame clips
at 64 px and a width-reduced network. `--full` switches to the paper's settings (32 x 224 x 224
clips, full-width networks, 100 epochs), meant for a GPU. Each stage reuses what an earlier run
of the demo wrote in the same folder, so a second `make demo` is quick; `--overwrite` redoes all.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HELP = "the whole flow on the phantom: synth, extract, train 3D+2D, evaluate, compare, readers, cam"


@dataclass(frozen=True)
class DemoSettings:
    """What the demo runs. Defaults fit a 2-core CPU in a few minutes."""

    out: str = "demo"
    patients: int = 120
    seed: int = 0
    frames: int = 16
    size: int = 64
    arch: str = "resnet50"
    width: float = 0.25
    epochs: int = 8
    batch_size: int = 16
    device: str = "auto"
    overwrite: bool = False

    @classmethod
    def full(cls, **kw) -> DemoSettings:
        """The paper's settings: 32 x 224 x 224 clips, full networks, 100 epochs."""
        base = dict(
            patients=300, frames=32, size=224, arch="inception_resnet_v2", width=1.0, epochs=100
        )
        base.update(kw)
        return cls(**base)


def _step(name: str) -> float:
    print(f"\n== {name}", file=sys.stderr, flush=True)
    return time.perf_counter()


def run_demo(s: DemoSettings) -> dict:
    """Run every stage into `s.out`; returns the summary printed by the CLI."""
    import numpy as np
    import pandas as pd

    from thyrovid.compare import compare
    from thyrovid.config import TrainConfig
    from thyrovid.distributed import resolve_device
    from thyrovid.errors import UserError
    from thyrovid.evaluate import evaluate
    from thyrovid.explain import explain_clips
    from thyrovid.extract import extract
    from thyrovid.readers import reader_study
    from thyrovid.synth.cohort import SynthConfig, synthesize
    from thyrovid.synth.readers import simulate_readers
    from thyrovid.train import train

    out = Path(s.out)
    if s.overwrite and out.exists():
        shutil.rmtree(out)
    phantom, work, runs = out / "phantom", out / "work", out / "runs"
    summary: dict = {"out": str(out), "seconds": {}}

    t = _step(f"synth: phantom cohort of {s.patients} patients")
    if not (phantom / "summary.json").exists():
        synthesize(phantom, SynthConfig(patients=s.patients, seed=s.seed))
    synth = json.loads((phantom / "summary.json").read_text())
    summary["bayes_auroc_by_split"] = {
        split: v.get("bayes_auroc") for split, v in (synth.get("splits") or {}).items()
    }
    summary["seconds"]["synth"] = round(time.perf_counter() - t, 1)

    t = _step(f"extract: ROI x1.5 clips of {s.frames} x {s.size} x {s.size} around each key frame")
    report = extract(phantom / "cohort.csv", work, frames=s.frames, size=s.size, seed=s.seed)
    summary["clips"] = report.clips
    summary["seconds"]["extract"] = round(time.perf_counter() - t, 1)

    run_dirs = {}
    for dims in (3, 2):
        name = f"{dims}d_{s.arch}"
        t = _step(f"train: {dims}D {s.arch} (width {s.width}, {s.epochs} epochs)")
        run_dir = runs / name
        if not (run_dir / "model.safetensors").exists() or s.overwrite:
            config = TrainConfig(
                arch=s.arch,
                dims=dims,
                width=s.width,
                epochs=s.epochs,
                batch_size=s.batch_size,
                seed=s.seed,
                device=s.device,
            )
            train(work, run_dir, config, resume=(run_dir / "state" / "last.pt").exists())
        summary["seconds"][f"train_{dims}d"] = round(time.perf_counter() - t, 1)
        t = _step(f"evaluate: {dims}D soft voting clip -> video -> nodule -> patient")
        metrics = evaluate(run_dir, work_dir=work, device=resolve_device(s.device))
        summary["seconds"][f"evaluate_{dims}d"] = round(time.perf_counter() - t, 1)
        summary[f"{dims}d"] = _headline(metrics)
        run_dirs[dims] = run_dir

    t = _step("compare: 3D vs 2D (DeLong), ROC curves, confusion matrices")
    summary["compare"] = {}
    for split in ("test", "external"):
        try:
            compare(
                [run_dirs[3], run_dirs[2]],
                level="patient",
                split=split,
                out=out / "compare" / split,
            )
            summary["compare"][split] = str(out / "compare" / split)
        except UserError as exc:  # e.g. a split too small for DeLong: say so, go on
            print(f"compare {split}: skipped: {exc}", file=sys.stderr)
            summary["compare"][split] = f"skipped: {exc}"
    summary["seconds"]["compare"] = round(time.perf_counter() - t, 1)

    t = _step("readers: simulated radiologists with and without the 3D model")
    preds = pd.read_csv(run_dirs[3] / "predictions.csv")
    patient = preds[(preds["level"] == "patient") & (preds["split"] == "external")]
    truth = pd.read_csv(phantom / "truth.csv")
    readers = simulate_readers(
        truth, model_prob=dict(zip(patient["id"].astype(str), patient["prob"])), seed=s.seed
    )
    readers_csv = out / "readers.csv"
    readers.to_csv(readers_csv, index=False)
    study = reader_study(
        readers_csv, model_run=run_dirs[3], split="external", out_dir=out / "readers"
    )
    summary["readers"] = _reader_headline(study)
    summary["seconds"]["readers"] = round(time.perf_counter() - t, 1)

    t = _step("cam: 3D Grad-CAM on test clips, scored on the phantom's calcification masks")
    cams = explain_clips(
        run_dirs[3],
        work,
        split="test",
        n=6,
        truth_dir=phantom,
        out_dir=out / "cam",
        device=resolve_device(s.device),
    )
    ratios = [c["energy_ratio"] for c in cams if np.isfinite(c.get("energy_ratio", np.nan))]
    summary["cam_median_energy_ratio"] = round(float(np.median(ratios)), 2) if ratios else None
    summary["seconds"]["cam"] = round(time.perf_counter() - t, 1)
    t = _step("report: one HTML file with every table and figure")
    from thyrovid.report.html import build_report

    summary["report"] = str(build_report(demo=out, out=out / "report.html"))
    summary["seconds"]["report"] = round(time.perf_counter() - t, 1)
    return summary


def _headline(metrics: dict) -> dict:
    """Patient-level AUROC (95% CI) per split from metrics.json's layout."""
    out = {}
    for split, levels in (metrics.get("splits") or {}).items():
        m = (levels or {}).get("patient") or {}
        auc = m.get("auroc")
        if isinstance(auc, dict):
            out[split] = {
                k: (round(v, 3) if isinstance(v, float) else v)
                for k, v in auc.items()
                if k in ("value", "low", "high")
            }
    return out


def _reader_headline(study: dict) -> dict:
    rrrc = study["mrmc"].get("jackknife", {}).get("rrrc", {})
    return {"group_gains": study["group_gains"], "mrmc_rrrc_p": rrrc.get("p")}


def add_arguments(parser) -> None:
    d = DemoSettings()
    parser.add_argument("--out", default=d.out, help="output folder (default: demo)")
    parser.add_argument("--patients", type=int, help=f"phantom patients (default {d.patients})")
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--epochs", type=int, help=f"training epochs (default {d.epochs})")
    parser.add_argument("--arch", help=f"architecture (default {d.arch})")
    parser.add_argument("--device", default=d.device, help="auto, cpu, cuda")
    parser.add_argument(
        "--full",
        action="store_true",
        help="the paper's settings (32x224x224, full networks, 100 epochs; a GPU)",
    )
    parser.add_argument("--overwrite", action="store_true", help="redo every stage")


def run(args) -> int:
    kw = {
        k: v
        for k, v in dict(
            out=args.out,
            patients=args.patients,
            seed=args.seed,
            epochs=args.epochs,
            arch=args.arch,
            device=args.device,
            overwrite=args.overwrite,
        ).items()
        if v is not None
    }
    settings = DemoSettings.full(**kw) if args.full else DemoSettings(**kw)
    summary = run_demo(settings)
    print(json.dumps(summary, indent=2, default=str))
    return 0
