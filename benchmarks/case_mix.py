"""Case mix or scanner? Score trained runs on the same nodules under other scanners and prevalences.

    python benchmarks/case_mix.py RUN [RUN ...]              # 120 patients a cohort, seed 77
    python benchmarks/case_mix.py RUN --patients 200 --keep DIR

Four phantom cohorts are drawn with one seed: the internal centres' scanners and the external
centres' scanners, each at the internal prevalence (default 0.70) and at the external one
(default 0.34). With one seed and one prevalence, the internal and the external cohort hold
the same nodules (features, labels and P(malignant) in truth.csv, row for row), rendered by other
scanners: a paired test of the scanner shift. The two prevalences give the case-mix shift
(a lower prevalence is a milder case mix: the phantom lowers every nodule's latent severity).

Each cohort is cut with the run's own clip shape, every clip is scored by each run (no
retraining), and the clips are voted to patients as `thyrovid evaluate` votes them
(`--patient-vote`, default noisy-or). Prints one JSON object: per cohort the Bayes AUROC of the
true P(malignant) voted the same way and each run's patient-level AUROC; and, per run, the
scanner effect (external minus internal scanners, same nodules) and the case-mix effect (low
minus high prevalence, same scanners) beside the Bayes score's own case-mix effect.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from _machine import cpu_model  # benchmarks/_machine.py

INTERNAL = ("int_a", "int_b")
EXTERNAL = ("ext_c", "ext_d")


def cohorts(high: float, low: float) -> dict[str, dict]:
    """name -> synth settings: both scanner groups at both prevalences."""
    out = {}
    for prev_name, prev in (("high", high), ("low", low)):
        out[f"internal_{prev_name}"] = {"centers": INTERNAL, "prevalence_internal": prev}
        out[f"external_{prev_name}"] = {"centers": EXTERNAL, "prevalence_external": prev}
    return out


def patient_auroc(clips: pd.DataFrame, prob: np.ndarray, vote: str) -> float:
    """Patient-level AUROC of clip probabilities voted as `thyrovid evaluate` votes them."""
    from sklearn.metrics import roc_auc_score

    from thyrovid.inference.voting import soft_vote

    voted = soft_vote(clips.assign(prob=prob, split="all"), patient_vote=vote)
    patients = voted[voted["level"] == "patient"]
    return float(roc_auc_score(patients["label"], patients["prob"]))


def bayes_auroc(truth: pd.DataFrame, vote: str) -> float:
    """The true P(malignant) of each nodule, voted to its patient the same way (one nodule,
    one video, one clip: `soft_vote`'s patient step is then the vote itself)."""
    rows = truth.assign(clip_id=truth["nodule_id"], video_id=truth["nodule_id"])
    return patient_auroc(rows, truth["p_malignant"].to_numpy(), vote)


def clip_shape(run: Path) -> tuple[int, int]:
    """(frames, size) the run was trained on (its config.yaml's meta.input_shape)."""
    from thyrovid.runs import input_shape

    shape = input_shape(run)
    if shape is None:
        raise SystemExit(
            f"{run}: config.yaml records no input shape; is it a `thyrovid train` run?"
        )
    frames = shape[0] if len(shape) == 3 else 1
    return frames, shape[-1]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="+", type=Path, help="run folders from `thyrovid train`")
    p.add_argument("--patients", type=int, default=120, help="patients per cohort (default 120)")
    p.add_argument("--seed", type=int, default=77, help="the cohorts' seed (default 77)")
    p.add_argument("--high", type=float, default=0.70, help="internal prevalence (default 0.70)")
    p.add_argument("--low", type=float, default=0.34, help="external prevalence (default 0.34)")
    p.add_argument(
        "--patient-vote", default="noisy-or", choices=("mean", "max", "noisy-or"),
        help="how nodules vote for their patient (default noisy-or, the demo's)",
    )  # fmt: skip
    p.add_argument(
        "--keep", type=Path, help="keep the cohorts and clips here (default: a temp dir)"
    )
    args = p.parse_args(argv)

    import torch

    from thyrovid.clips.dataset import read_clips
    from thyrovid.clips.extract import extract
    from thyrovid.inference.batch import predict_clips
    from thyrovid.synth.cohort import SynthConfig, synthesize

    shapes = {run: clip_shape(run) for run in args.runs}
    root = args.keep or Path(tempfile.mkdtemp(prefix="thyrovid_casemix_"))
    t0 = time.perf_counter()
    result: dict = {"patients": args.patients, "seed": args.seed, "patient_vote": args.patient_vote,
                    "prevalence": {"high": args.high, "low": args.low}, "cohorts": {}}  # fmt: skip
    try:
        for name, settings in cohorts(args.high, args.low).items():
            phantom = root / name
            if not (phantom / "summary.json").exists():
                config = SynthConfig(patients=args.patients, seed=args.seed, **settings)
                synthesize(phantom, config, progress=False)
            truth = pd.read_csv(phantom / "truth.csv")
            entry = {
                "centers": list(settings["centers"]),
                "malignant_patients": round(float(truth.groupby("patient_id")["label"].max().mean()), 3),
                "bayes": round(bayes_auroc(truth, args.patient_vote), 4),
                "runs": {},
            }  # fmt: skip
            for run, (frames, size) in shapes.items():
                work = phantom / f"work_{frames}x{size}"
                extract(phantom / "cohort.csv", work, frames=frames, size=size, seed=args.seed)
                clips = read_clips(work)
                splits = tuple(sorted(clips["split"].unique()))
                probs = predict_clips(run, work, splits=splits)
                merged = clips.merge(probs, on="clip_id", how="inner")
                entry["runs"][str(run)] = round(
                    patient_auroc(merged.drop(columns=["prob"]), merged["prob"].to_numpy(),
                                  args.patient_vote), 4)  # fmt: skip
            result["cohorts"][name] = entry
            print(f"{name}: {json.dumps(entry)}", file=sys.stderr)
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    c = result["cohorts"]
    result["effects"] = {
        "bayes": {"case_mix": round(c["internal_low"]["bayes"] - c["internal_high"]["bayes"], 4)},
        **{
            str(run): {
                "scanner_high": round(c["external_high"]["runs"][str(run)]
                                      - c["internal_high"]["runs"][str(run)], 4),
                "scanner_low": round(c["external_low"]["runs"][str(run)]
                                     - c["internal_low"]["runs"][str(run)], 4),
                "case_mix_internal": round(c["internal_low"]["runs"][str(run)]
                                           - c["internal_high"]["runs"][str(run)], 4),
                "case_mix_external": round(c["external_low"]["runs"][str(run)]
                                           - c["external_high"]["runs"][str(run)], 4),
            }
            for run in args.runs
        },
    }  # fmt: skip
    result["seconds"] = round(time.perf_counter() - t0, 1)
    result["machine"] = {"cpu": cpu_model(), "torch_threads": torch.get_num_threads()}
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
