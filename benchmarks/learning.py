"""Learning diagnosis: what the networks reach on the phantom, against what the phantom allows.

    python benchmarks/learning.py                 # the full sweep (about 30 min on 2 cores)
    python benchmarks/learning.py --quick         # one seed, two training points (a few min)
    python benchmarks/learning.py --baselines-only OUT/work ...   # the baselines of work folders

One phantom cohort (`--patients`, seed 0) is drawn and cut once per input size. Patient-level
AUROC on the external split (soft voting: clip -> video -> nodule -> patient means, as
`thyrovid evaluate`) is reported for:

- ceilings from the phantom's ground truth (truth.csv, masks/): the Bayes score (true
  P(malignant)) voted the same way, and a logistic model of the true TI-RADS features fitted on
  train+val, with microcalcifications counted (a) as present, (b) only where a focus is in the
  key frame's plane (what one static frame allows), (c) only where a focus is in some frame of the
  cut clip (what the 3D clip allows);
- two non-deep baselines in the same run: logistic regression on hand-made clip features (bright-
  focus pixels, frames in which a bright focus persists, nodule echo against its surround, box
  aspect), fitted on train+val clips; and the same families measured better (focus strength as
  a white top-hat over the clip and at the key frame, its persistence, the nodule's median echo,
  log box aspect: `tophat_features`);
- the project's own `train` + `evaluate` over a sweep of what decides learning: training
  patients (a patient-grouped subset of the train split; val, test and external fixed), input
  size, epochs, for several seeds; 2D beside 3D at the centre point. Each point records the
  validation curve, the kept epoch and the CPU seconds. No seed or epoch is picked by looking
  at the external split: the kept epoch is the one `train` selects on validation.

Prints one JSON object (medians, spreads, every seed's figure, the machine).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

from _machine import cpu_model  # benchmarks/_machine.py

BRIGHT = 230  # uint8 level above which a pixel counts as a bright (hyperechoic) focus
VOTE = {"patient": "mean"}  # nodules -> patient for every figure (--patient-vote)


def patient_auc(frame: pd.DataFrame, score: str, split: str = "external") -> float | None:
    """Patient-level AUROC of `score` on `split`, voted by the project's `soft_vote`.

    `frame` has patient_id, nodule_id, video_id, label, split and `score`; rows without a
    clip_id (truth.csv's nodules) count as one clip each.
    """
    from thyrovid.evaluation.baseline import patient_auroc

    d = frame.assign(
        clip_id=frame.get("clip_id", frame["video_id"]), center=frame.get("center", "")
    )
    value = patient_auroc(d, d[score].to_numpy(), split, VOTE["patient"])
    return None if value is None else round(value, 3)


# ------------------------------------------------------------------ ceilings and baseline


def truth_design(truth: pd.DataFrame, micro: np.ndarray) -> np.ndarray:
    """The true visible features as a design matrix (TI-RADS categories, micro as given)."""
    comp = truth["composition"].map({"spongiform": 0, "mixed": 1, "solid": 2}).to_numpy()
    echo = truth["echogenicity"].map({"iso_hyper": 1, "hypo": 2, "very_hypo": 3}).to_numpy()
    margin = truth["margin"].to_numpy()
    rim = truth["rim"].to_numpy()
    return np.column_stack(
        [
            comp,
            echo,
            truth["taller_than_wide"].to_numpy(),
            np.isin(margin, ("lobulated", "irregular")),
            margin == "extrathyroidal",
            micro,
            truth["n_macro"].to_numpy() > 0,
            rim == "continuous",
            rim == "interrupted",
        ]
    ).astype(float)


def focus_seen(phantom: Path, clips: pd.DataFrame) -> tuple[dict[str, bool], dict[str, bool]]:
    """Per nodule: is a focus in the plane of one of its key frames, of some frame of its clips?"""
    in_key: dict[str, bool] = {}
    in_clip: dict[str, bool] = {}
    seen_in: dict[str, np.ndarray] = {}  # video -> (T,) a focus visible in the frame
    for video in clips["video_id"].unique():
        with np.load(phantom / "masks" / f"{video}.npz") as z:
            seen_in[video] = z["micro"].reshape(len(z["micro"]), -1).any(axis=1)
    for row in clips.itertuples(index=False):
        seen = seen_in[row.video_id]
        n = row.nodule_id
        in_key[n] = in_key.get(n, False) or bool(seen[row.key_frame])
        stop = row.first_frame + row.n_frames
        in_clip[n] = in_clip.get(n, False) or bool(seen[row.first_frame : stop].any())
    return in_key, in_clip


def ceilings(phantom: Path, clips: pd.DataFrame) -> dict:
    """Bayes, all-features, key-frame and clip ceilings (patient level, external)."""
    from sklearn.linear_model import LogisticRegression

    truth = pd.read_csv(phantom / "truth.csv")
    in_key, in_clip = focus_seen(phantom, clips)
    present = truth["n_micro"].to_numpy() > 0
    fit = truth["split"].isin(["train", "val"]).to_numpy()
    nod = truth.assign(video_id=truth["nodule_id"])
    out = {"bayes": patient_auc(nod, "p_malignant")}
    for name, micro in (
        ("all_features", present),
        ("key_frame", present & truth["nodule_id"].map(in_key).fillna(False).to_numpy()),
        ("clip", present & truth["nodule_id"].map(in_clip).fillna(False).to_numpy()),
    ):
        x = truth_design(truth, micro)
        model = LogisticRegression(max_iter=2000).fit(x[fit], truth["label"][fit])
        out[name] = patient_auc(nod.assign(s=model.predict_proba(x)[:, 1]), "s")
    has = present & (truth["split"] == "external").to_numpy()
    key = truth["nodule_id"].map(in_key).fillna(False).to_numpy()
    clip = truth["nodule_id"].map(in_clip).fillna(False).to_numpy()
    out["micro_nodules_seen_in_a_key_frame"] = round(float(key[has].mean()), 3)
    out["micro_nodules_seen_in_the_clip"] = round(float(clip[has].mean()), 3)
    return out


def clip_features(work: Path, clips: pd.DataFrame) -> np.ndarray:
    """Hand-made features per clip (the box is the central 2/3 of the x1.5 ROI)."""
    rows = []
    for r in clips.itertuples(index=False):
        a = np.load(work / r.clip_path).astype(np.float32)
        t, h, w = a.shape
        inner = a[:, h // 6 : h - h // 6, w // 6 : w - w // 6]
        ring = a.copy()
        ring[:, h // 6 : h - h // 6, w // 6 : w - w // 6] = np.nan
        per_frame = (inner >= BRIGHT).reshape(t, -1).sum(axis=1)
        rows.append(
            [
                np.log1p(per_frame.max()),
                np.log1p(per_frame.sum()),
                float((per_frame > 0).sum()),
                float(np.median(inner) - np.nanmedian(ring)),
                (r.y1 - r.y0) / max(1, r.x1 - r.x0),
            ]
        )
    return np.asarray(rows)


def tophat_features(work: Path, clips: pd.DataFrame) -> np.ndarray:
    """The same families measured better: the package's baseline (thyrovid.evaluation.baseline)."""
    from thyrovid.evaluation.baseline import work_features

    return work_features(work, clips)


def handmade_baseline(work: Path, clips: pd.DataFrame, features=None) -> float | None:
    """Patient-level external AUROC of a logistic regression on hand-made clip features."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = (features or clip_features)(work, clips)
    fit = clips["split"].isin(["train", "val"]).to_numpy()
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    model.fit(x[fit], clips["label"][fit])
    return patient_auc(clips.assign(s=model.predict_proba(x)[:, 1]), "s")


# ------------------------------------------------------------------ the project's training


def subset_work(work: Path, patients: int | None, seed: int, root: Path) -> Path:
    """A work folder whose train split keeps `patients` train patients (stratified by label).

    The others move to split "unused"; val, test and external are untouched. Clip files are
    linked, not copied.
    """
    if patients is None:
        return work
    clips = pd.read_csv(work / "clips.csv")
    train = clips[clips["split"] == "train"].groupby("patient_id")["label"].max()
    rng = np.random.default_rng([seed, 29])
    keep: list[str] = []
    for label in (0, 1):
        ids = np.array(sorted(train.index[train == label]))
        rng.shuffle(ids)
        keep += list(ids[: int(round(patients * len(ids) / len(train)))])
    out = root / f"{work.name}_p{patients}_s{seed}"
    out.mkdir(parents=True, exist_ok=True)
    for name in ("clips", "images"):
        if not (out / name).exists():
            (out / name).symlink_to((work / name).resolve())
    for name in ("extract.json", "videos.json"):
        if (work / name).exists():
            (out / name).write_bytes((work / name).read_bytes())
    drop = (clips["split"] == "train") & ~clips["patient_id"].isin(keep)
    clips.loc[drop, "split"] = "unused"
    clips.to_csv(out / "clips.csv", index=False)
    return out


def train_point(work: Path, root: Path, dims: int, seed: int, recipe: dict) -> dict:
    """Train and evaluate one configuration; the external AUROC at patient level."""
    from thyrovid.config import TrainConfig
    from thyrovid.evaluation.evaluate import evaluate
    from thyrovid.training.train import train

    run = root / f"run_{work.name}_{dims}d_s{seed}_e{recipe.get('epochs')}"
    config = TrainConfig(dims=dims, seed=seed, device="cpu", tensorboard=False, **recipe)
    start = time.process_time()
    wall = time.perf_counter()
    train(work, run, config)
    metrics = evaluate(run, work_dir=work, device="cpu", patient_vote=VOTE["patient"])
    log = pd.read_csv(run / "log.csv")
    meta = yaml.safe_load((run / "config.yaml").read_text())
    pat = {s: (v.get("patient") or {}).get("auroc") for s, v in metrics["splits"].items()}
    val = log["val_auroc"].round(3).tolist() if "val_auroc" in log else []
    return {
        "external": _value(pat.get("external")),
        "test": _value(pat.get("test")),
        "external_by_center": _by_center(run / "predictions.csv"),
        "val_curve": val,
        "train_loss_last": round(float(log["train_loss"].iloc[-1]), 3),
        "kept": meta.get("meta", {}).get("selected_by"),
        "cpu_s": round(time.process_time() - start, 1),
        "wall_s": round(time.perf_counter() - wall, 1),
    }


def _by_center(predictions: Path) -> dict:
    """Patient-level AUROC per external center (where the domain shift shows)."""
    from thyrovid.stats.roc import auc

    p = pd.read_csv(predictions)
    p = p[(p["level"] == "patient") & (p["split"] == "external")]
    return {
        str(c): round(float(auc(d["label"].to_numpy(), d["prob"].to_numpy())), 3)
        for c, d in p.groupby("center")
        if d["label"].nunique() == 2
    }


def _value(auroc) -> float | None:
    if isinstance(auroc, dict) and auroc.get("value") is not None:
        return round(float(auroc["value"]), 3)
    return None


def summarise(points: list[dict]) -> dict:
    ext = [p["external"] for p in points if p["external"] is not None]
    return {
        "external_median": round(statistics.median(ext), 3) if ext else None,
        "external_range": [min(ext), max(ext)] if ext else None,
        "per_seed": points,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--patients", type=int, default=480, help="phantom cohort (default 480)")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--sizes", default="64,96", help="input sizes in px (clips of 16 frames)")
    p.add_argument("--train-patients", default="60,120,all", help="train-split subsets")
    p.add_argument("--epochs", default="4,8", help="training budgets (epochs)")
    p.add_argument("--recipe", default="", help="extra TrainConfig key=value,... (the demo's)")
    p.add_argument("--quick", action="store_true", help="one seed, two training points")
    p.add_argument("--out", help="folder to keep (default: a temporary one)")
    p.add_argument(
        "--baselines-only",
        nargs="+",
        metavar="WORK",
        help="only score the two hand-made baselines on these extracted work folders "
        "(e.g. a demo's OUT/work), no synth, no training",
    )
    p.add_argument(
        "--patient-vote",
        default="mean",
        choices=("mean", "max", "noisy-or"),
        help="how nodules vote for their patient in every figure (default mean, the paper's; "
        "the demo votes noisy-or: add patient_vote=noisy-or to --recipe for its validation)",
    )
    args = p.parse_args(argv)
    VOTE["patient"] = args.patient_vote
    if args.baselines_only:
        out = {}
        for folder in args.baselines_only:
            work = Path(folder)
            clips = pd.read_csv(work / "clips.csv")
            out[str(work)] = {
                "external_patients": int(
                    clips.loc[clips["split"] == "external", "patient_id"].nunique()
                ),
                "handmade_baseline": handmade_baseline(work, clips),
                "handmade_baseline_tophat": handmade_baseline(work, clips, tophat_features),
            }
        print(json.dumps(out, indent=1))
        return 0
    seeds = [int(s) for s in args.seeds.split(",")]
    sizes = [int(s) for s in args.sizes.split(",")]
    subsets = [None if s == "all" else int(s) for s in args.train_patients.split(",")]
    budgets = [int(e) for e in args.epochs.split(",")]
    if args.quick:
        seeds, sizes, subsets, budgets = seeds[:1], sizes[:1], [None], budgets[-1:]
    from thyrovid.config import coerce_values

    pairs = [kv.split("=", 1) for kv in args.recipe.split(",") if kv]
    recipe = dict(arch="resnet50", width=0.125, temporal_strides=(1, 2, 2, 2, 2), batch_size=16)
    recipe.update(coerce_values(dict(pairs), "--recipe"))
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    root = Path(args.out or tempfile.mkdtemp(prefix="thyrovid_learning_"))
    root.mkdir(parents=True, exist_ok=True)
    report: dict = {"machine": {"cpu": cpu_model(), "cores": os.cpu_count()}, "recipe": {}}
    t0 = time.perf_counter()

    from thyrovid.clips.extract import extract
    from thyrovid.synth.cohort import SynthConfig, synthesize

    phantom = root / "phantom"
    if not (phantom / "summary.json").exists():
        synthesize(phantom, SynthConfig(patients=args.patients, seed=0), progress=False)
    report["synth_s"] = round(time.perf_counter() - t0, 1)
    works = {}
    for size in sizes:
        works[size] = root / f"work_{size}"
        if not (works[size] / "clips.csv").exists():
            extract(phantom / "cohort.csv", works[size], frames=16, size=size, seed=0)
    clips = pd.read_csv(works[sizes[0]] / "clips.csv")
    report["cohort"] = {
        s: int(clips.loc[clips["split"] == s, "patient_id"].nunique())
        for s in ("train", "val", "test", "external")
    }
    report["ceilings"] = ceilings(phantom, clips)
    report["handmade_baseline"] = {
        str(size): handmade_baseline(works[size], pd.read_csv(works[size] / "clips.csv"))
        for size in sizes
    }
    report["handmade_baseline_tophat"] = {
        str(size): handmade_baseline(
            works[size], pd.read_csv(works[size] / "clips.csv"), tophat_features
        )
        for size in sizes
    }
    print(json.dumps({"progress": report}), file=sys.stderr, flush=True)

    sweep: dict = {}
    centre = dict(size=sizes[0], patients=None, epochs=budgets[-1])
    grid = [dict(centre, dims=3)]
    grid += [dict(centre, dims=3, patients=n) for n in subsets if n is not None]
    grid += [dict(centre, dims=3, size=s) for s in sizes[1:]]
    grid += [dict(centre, dims=3, epochs=e) for e in budgets[:-1]]
    grid += [dict(centre, dims=2)]
    for point in grid:
        key = (
            f"{point['dims']}d_{point['size']}px_"
            f"{point['patients'] or 'all'}train_{point['epochs']}ep"
        )
        results = []
        for seed in seeds:
            work = subset_work(works[point["size"]], point["patients"], seed, root)
            results.append(
                dict(
                    seed=seed,
                    **train_point(
                        work, root, point["dims"], seed, dict(recipe, epochs=point["epochs"])
                    ),
                )
            )
            print(json.dumps({key: results[-1]}), file=sys.stderr, flush=True)
        sweep[key] = summarise(results)
    report["recipe"] = {k: list(v) if isinstance(v, tuple) else v for k, v in recipe.items()}
    report["sweep"] = sweep
    report["seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
