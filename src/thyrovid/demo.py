"""`thyrovid demo`: the whole flow on the phantom, end to end.

synth -> extract -> train (3D and 2D twins of one architecture) -> evaluate -> a hand-made
baseline on the same clips (`evaluation.baseline`) -> compare (DeLong 3D vs 2D) -> reader study
(simulated radiologists with and without the 3D model) -> Grad-CAM scored against the
phantom's calcification masks.

The default settings are sized for a laptop CPU (under 10 minutes on 2 cores): 300 phantom
patients, 16-frame clips at 64 px, a width-reduced network and a CPU recipe that goes beyond the
paper's (each a named option of `thyrovid train`, recorded in config.yaml and in the summary's
"recipe"): temporal strides 1,2,2,2,2 (half the FLOPs of the default 1,1,2,2,2), cosine decay
of the learning rate, the loss weighted for the skewed prevalence (balance=pos_weight), the
last (annealed) epoch kept (keep=last; the patient-level validation AUROC of every epoch is still
logged and drawn in the report), and nodules voted to their patient by
noisy-or (patient_vote=noisy-or: a patient is malignant when any nodule is, so the paper's mean
would dilute one malignant nodule among benign ones; `evaluate --patient-vote`, the baseline and
the patient-level Bayes ceiling in the summary use the same vote). `--full` switches to the
paper's settings (32 x 224 x 224 clips, full-width networks, 100 epochs, the best validation
epoch, mean vote), meant for a GPU. Each stage reuses what an earlier run
of the demo wrote in the same folder, so a second `make demo` is quick, and a training run that
was cut short (Ctrl-C, a full disk) is resumed from its last epoch; `--overwrite` redoes all.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from thyrovid.atomic import write_text_atomic
from thyrovid.options import add_device_argument


@dataclass(frozen=True)
class DemoSettings:
    """What the demo runs. Defaults fit a 2-core CPU in a few minutes."""

    out: str = "demo"
    patients: int = 300
    seed: int = 0
    frames: int = 16
    size: int = 64
    arch: str = "resnet50"
    width: float = 0.25
    epochs: int = 10
    batch_size: int = 16
    temporal_strides: tuple[int, ...] = (1, 2, 2, 2, 2)
    schedule: str = "cosine"
    balance: str = "pos_weight"
    val_level: str = "patient"
    patient_vote: str = "noisy-or"
    keep: str = "last"
    device: str = "auto"
    overwrite: bool = False

    def recipe(self) -> dict:
        """What `train` gets beyond its defaults (the paper's recipe): TrainConfig overrides."""
        return {
            "width": self.width,
            "epochs": self.epochs,
            "temporal_strides": list(self.temporal_strides),
            "schedule": self.schedule,
            "balance": self.balance,
            "val_level": self.val_level,
            "patient_vote": self.patient_vote,
            "keep": self.keep,
        }

    @classmethod
    def full(cls, **kw) -> DemoSettings:
        """The paper's settings: 32 x 224 x 224 clips, full networks, 100 epochs."""
        base = dict(
            patients=300,
            frames=32,
            size=224,
            arch="inception_resnet_v2",
            width=1.0,
            epochs=100,
            temporal_strides=(1, 1, 2, 2, 2),
            schedule="none",
            balance="none",
            val_level="clip",
            patient_vote="mean",
            keep="best",
        )
        base.update(kw)
        return cls(**base)


@contextmanager
def _stage(summary: dict, key: str, title: str):
    """Print the stage's title, time it into summary["seconds"][key]."""
    print(f"\n== {title}", file=sys.stderr, flush=True)
    start = time.perf_counter()
    yield
    summary["seconds"][key] = round(time.perf_counter() - start, 1)


def run_demo(s: DemoSettings) -> dict:
    """Run every stage into `s.out`; returns the summary printed by the CLI."""
    from thyrovid.clips.extract import extract
    from thyrovid.synth.cohort import SynthConfig, synthesize

    out = Path(s.out)
    if s.overwrite and out.exists():
        shutil.rmtree(out)
    phantom, work = out / "phantom", out / "work"
    summary: dict = {"out": str(out), "seconds": {}, "recipe": {"arch": s.arch, **s.recipe()}}

    with _stage(summary, "synth", f"synth: phantom cohort of {s.patients} patients"):
        if not (phantom / "summary.json").exists():
            synthesize(phantom, SynthConfig(patients=s.patients, seed=s.seed))
        synth = json.loads((phantom / "summary.json").read_text())
        summary["bayes_auroc_by_split"] = {
            split: v.get("bayes_auroc") for split, v in (synth.get("splits") or {}).items()
        }
        summary["bayes_patient_auroc_by_split"] = _patient_ceilings(phantom)
    title = f"extract: ROI x1.5 clips of {s.frames} x {s.size} x {s.size} around each key frame"
    with _stage(summary, "extract", title):
        summary["clips"] = extract(
            phantom / "cohort.csv", work, frames=s.frames, size=s.size, seed=s.seed
        ).clips
    run_dirs = {dims: _train_and_evaluate(s, work, out / "runs", dims, summary) for dims in (3, 2)}
    title = "baseline: logistic regression on 5 hand-made clip features (no deep learning)"
    with _stage(summary, "baseline", title):
        from thyrovid.evaluation.baseline import handmade_baseline

        # train needs both classes, so the fit has them
        baseline = handmade_baseline(work, patient_vote=s.patient_vote)
        write_text_atomic(out / "baseline.json", json.dumps(baseline, indent=2) + "\n")
        summary["handmade_baseline"] = baseline["patient_auroc"]
    with _stage(summary, "compare", "compare: 3D vs 2D (DeLong), ROC curves, confusion matrices"):
        summary["compare"] = _compare_splits(run_dirs, out / "compare")
    with _stage(
        summary, "readers", "readers: simulated radiologists with and without the 3D model"
    ):
        summary["readers"] = _reader_study(s, phantom, run_dirs[3], out)
    title = "cam: 3D Grad-CAM on test clips, scored on the phantom's calcification masks"
    with _stage(summary, "cam", title):
        summary["cam_median_energy_ratio"] = _grad_cam(s, phantom, work, run_dirs[3], out)
    with _stage(summary, "report", "report: one HTML file with every table and figure"):
        from thyrovid.report.report import build_report

        summary["report"] = str(build_report(demo=out, out=out / "report.html"))
    return summary


def _train_and_evaluate(s: DemoSettings, work: Path, runs: Path, dims: int, summary: dict) -> Path:
    """Train (or reuse) the `dims`-D twin, evaluate it; its headline goes into `summary`."""
    from thyrovid.config import TrainConfig
    from thyrovid.distributed import resolve_device
    from thyrovid.evaluation.evaluate import evaluate
    from thyrovid.training.runfolder import finished
    from thyrovid.training.train import train

    run_dir = runs / f"{dims}d_{s.arch}"
    with _stage(
        summary, f"train_{dims}d", f"train: {dims}D {s.arch} (width {s.width}, {s.epochs} epochs)"
    ):
        if not finished(run_dir) or s.overwrite:
            resume = (run_dir / "state" / "last.pt").exists()  # --overwrite removed the folder
            if resume:
                print(f"train: resuming the unfinished run in {run_dir}", file=sys.stderr)
            config = TrainConfig.from_dict(
                {
                    **s.recipe(),
                    "arch": s.arch,
                    "dims": dims,
                    "batch_size": s.batch_size,
                    "seed": s.seed,
                    "device": s.device,
                },
                source="demo recipe",
            )
            train(work, run_dir, config, resume=resume)
    title = f"evaluate: {dims}D soft voting clip -> video -> nodule -> patient"
    with _stage(summary, f"evaluate_{dims}d", title):
        metrics = evaluate(
            run_dir, work_dir=work, device=resolve_device(s.device), patient_vote=s.patient_vote
        )
    summary[f"{dims}d"] = _headline(metrics)
    return run_dir


def _patient_ceilings(phantom: Path) -> dict:
    """The Bayes ceiling at the patient level per split: P(any nodule malignant) from truth.csv."""
    import pandas as pd

    from thyrovid.report.sections import bayes_ceilings

    ceilings = bayes_ceilings(pd.read_csv(phantom / "truth.csv"))
    return {
        split: (None if c["patient"] is None else round(float(c["patient"]), 4))
        for split, c in ceilings.items()
    }


def _compare_splits(run_dirs: dict, out: Path) -> dict:
    """3D vs 2D on the test and external splits; a split too small for DeLong is skipped."""
    from thyrovid.errors import UserError
    from thyrovid.evaluation.compare import compare

    result = {}
    for split in ("test", "external"):
        try:
            compare([run_dirs[3], run_dirs[2]], level="patient", split=split, out=out / split)
            result[split] = str(out / split)
        except UserError as exc:  # say so, go on
            print(f"compare {split}: skipped: {exc}", file=sys.stderr)
            result[split] = f"skipped: {exc}"
    return result


def _reader_study(s: DemoSettings, phantom: Path, run_3d: Path, out: Path) -> dict:
    """Simulated readers on the external split, unaided and aided by the 3D model."""
    import pandas as pd

    from thyrovid.atomic import atomic_path
    from thyrovid.readers.readers import reader_study
    from thyrovid.synth.readers import simulate_readers

    preds = pd.read_csv(run_3d / "predictions.csv")
    patient = preds[(preds["level"] == "patient") & (preds["split"] == "external")]
    truth = pd.read_csv(phantom / "truth.csv")
    readers = simulate_readers(
        truth, model_prob=dict(zip(patient["id"].astype(str), patient["prob"])), seed=s.seed
    )
    readers_csv = out / "readers.csv"
    with atomic_path(readers_csv) as tmp:
        readers.to_csv(tmp, index=False)
    study = reader_study(readers_csv, model_run=run_3d, split="external", out_dir=out / "readers")
    return _reader_headline(study)


def _grad_cam(s: DemoSettings, phantom: Path, work: Path, run_3d: Path, out: Path):
    """Grad-CAM on 6 test clips; the median share of CAM energy on the calcification masks."""
    import numpy as np

    from thyrovid.distributed import resolve_device
    from thyrovid.explain.cam import explain_clips

    cams = explain_clips(
        run_3d,
        work,
        split="test",
        n=6,
        truth_dir=phantom,
        out_dir=out / "cam",
        device=resolve_device(s.device),
    )
    ratios = [c["energy_ratio"] for c in cams if np.isfinite(c.get("energy_ratio", np.nan))]
    return round(float(np.median(ratios)), 2) if ratios else None


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


def _recipe_text(settings: DemoSettings) -> str:
    return " ".join(
        f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}"
        for k, v in settings.recipe().items()
    )


def add_arguments(parser) -> None:
    import argparse
    import textwrap

    d, f = DemoSettings(), DemoSettings.full()
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    wrap = dict(width=88, initial_indent="  ", subsequent_indent="  ")
    parser.epilog = (
        "what train gets (each a `thyrovid train --set` option, recorded in config.yaml and in\n"
        "the summary's recipe; evaluate and the hand-made baseline vote patients the same way):\n"
        f"{textwrap.fill(_recipe_text(d), **wrap)}\n"
        "with --full (the paper's recipe):\n"
        f"{textwrap.fill(_recipe_text(f), **wrap)}"
    )
    parser.add_argument("--out", default=d.out, help="output folder (default: demo)")
    parser.add_argument(
        "--patients", type=int, help=f"phantom patients (default {d.patients}; --full {f.patients})"
    )
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument(
        "--epochs", type=int, help=f"training epochs (default {d.epochs}; --full {f.epochs})"
    )
    parser.add_argument("--arch", help=f"architecture (default {d.arch}; --full {f.arch})")
    add_device_argument(parser, default=d.device)
    parser.add_argument(
        "--full",
        action="store_true",
        help=f"the paper's settings ({f.frames}x{f.size}x{f.size} clips, full-width {f.arch}, "
        f"{f.epochs} epochs; a GPU)",
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
