"""Plan a phantom cohort (patients, nodules, videos, centers, splits) and write it to disk.

Outputs in OUT_DIR: videos/<video_id>.dcm, cohort.csv (the cohort.csv contract with `split`),
truth.csv (one row per nodule: latent features, true logit, P(malignant), TI-RADS points),
masks/<video_id>.npz (per-frame calcification masks and nodule boxes in frame pixels) and,
when `thyrovid.synth.readers` is available, readers.csv.

Every random draw is seeded from (seed, purpose, index), so the output does not depend on the
number of worker processes, and no clock time is written: same seed, same bytes.
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from thyrovid.atomic import atomic_path, write_text_atomic
from thyrovid.cohort.schema import COLUMNS, SPLITS
from thyrovid.synth import anatomy
from thyrovid.synth.profiles import CenterProfile, select_centers
from thyrovid.synth.video import NoduleTask, VideoPlan, render_nodule


@dataclass(frozen=True)
class SynthConfig:
    """Settings of `thyrovid synth` (defaults = the embedded default cohort).

    Attributes:
        patients: number of patients.
        seed: master seed; same seed -> bit-identical cohort.
        centers: center names to use (None = all, see `profiles.DEFAULT_CENTERS`).
        frames: (min, max) frames per video, inclusive.
        size: base frame size (H, W) that the default 240x320 is scaled to; None = defaults.
        prevalence_internal, prevalence_external: expected fraction of malignant nodules.
        external_fraction: fraction of patients from external centers (when both kinds exist).
        workers: worker processes.
    """

    patients: int = 60
    seed: int = 0
    centers: tuple[str, ...] | None = None
    frames: tuple[int, int] = (44, 72)
    size: tuple[int, int] | None = None
    prevalence_internal: float = 0.70
    prevalence_external: float = 0.34
    external_fraction: float = 0.3
    workers: int = field(default_factory=lambda: min(2, os.cpu_count() or 1))


def _rng(seed: int, *parts: int) -> np.random.Generator:
    return np.random.default_rng([seed, *parts])


def plan_cohort(config: SynthConfig) -> tuple[pd.DataFrame, list[NoduleTask]]:
    """Draw patients, nodules (features and labels) and videos, without rendering.

    Returns:
        truth: one row per nodule (ids, center, split, label, true_logit, p_malignant, features,
            TI-RADS points); tasks: one render task per nodule, in nodule order.
    """
    centers = select_centers(
        list(config.centers) if config.centers else None,
        config.size,
        config.prevalence_internal,
        config.prevalence_external,
    )
    internal = [c for c in centers if not c.external]
    external = [c for c in centers if c.external]
    rng = _rng(config.seed, 1)
    width = max(4, len(str(config.patients)))
    rows = []
    for i in range(config.patients):
        group = internal or external
        if internal and external and rng.random() < config.external_fraction:
            group = external
        center = group[int(rng.integers(len(group)))]
        n_nod = int(rng.choice([1, 2, 3], p=[0.6, 0.3, 0.1]))
        pid = f"PH{i + 1:0{width}d}"
        for j in range(n_nod):
            rows.append(
                {
                    "patient_id": pid,
                    "nodule_id": f"{pid}_n{j + 1}",
                    "center": center.name,
                    "side": "left" if rng.random() < 0.5 else "right",
                    "n_videos": int(rng.choice([1, 2, 3], p=[0.55, 0.3, 0.15])),
                }
            )
    truth = pd.DataFrame(rows)
    truth = _draw_labels(truth, centers, config.seed)
    truth["split"] = assign_splits(truth, {c.name: c.external for c in centers}, config.seed)
    by_name = {c.name: c for c in centers}
    tasks, video_index = [], 0
    lo, hi = config.frames
    for n_idx, row in enumerate(truth.itertuples(index=False)):
        videos = []
        for k in range(row.n_videos):
            n_frames = int(_rng(config.seed, 5, video_index).integers(lo, hi + 1))
            videos.append(VideoPlan(f"{row.nodule_id}_v{k + 1}", video_index, n_frames, k + 1))
            video_index += 1
        feats = {key: int(getattr(row, key)) for key in anatomy.FEATURE_KEYS}
        tasks.append(
            NoduleTask(
                config.seed,
                n_idx,
                row.patient_id,
                row.nodule_id,
                by_name[row.center],
                feats,
                tuple(videos),
                row.side,
            )
        )
    return truth, tasks


def _draw_labels(truth: pd.DataFrame, centers: list[CenterProfile], seed: int) -> pd.DataFrame:
    """Features, true logit, P(malignant) and label per nodule, center by center."""
    parts = []
    for c_idx, center in enumerate(centers):
        sub = truth[truth["center"] == center.name].copy()
        if sub.empty:
            continue
        shift = anatomy.shift_for_prevalence(center.prevalence)
        f = anatomy.draw_features(_rng(seed, 7, c_idx), len(sub), shift)
        pts = anatomy.tirads_points(f)
        for key in (*anatomy.FEATURE_KEYS, "true_logit", "p_malignant", "label"):
            sub[key] = f[key]
        for key, val in pts.items():
            sub[key] = val
        parts.append(sub)
    out = pd.concat(parts).sort_index()
    return out


def assign_splits(
    truth: pd.DataFrame,
    external: dict[str, bool],
    seed: int,
    fractions: tuple[float, float] = (0.70, 0.15),
) -> pd.Series:
    """train/val/test (patient-grouped, stratified by patient label) or external, per nodule."""
    patients = truth.groupby("patient_id").agg(label=("label", "max"), center=("center", "first"))
    split = pd.Series("external", index=patients.index, dtype=object)
    inside = patients[~patients["center"].map(external)]
    rng = _rng(seed, 3)
    for label in (0, 1):
        ids = np.array(sorted(inside.index[inside["label"] == label]))
        rng.shuffle(ids)
        n_train = int(round(fractions[0] * len(ids)))
        n_val = int(round(fractions[1] * len(ids)))
        split[ids[:n_train]] = "train"
        split[ids[n_train : n_train + n_val]] = "val"
        split[ids[n_train + n_val :]] = "test"
    return truth["patient_id"].map(split)


def bayes_auroc(label: np.ndarray, score: np.ndarray) -> float | None:
    """AUROC (Mann-Whitney, ties count 1/2) of P(malignant) against the labels; None if one class."""
    label = np.asarray(label).astype(int)
    if label.min() == label.max():
        return None
    try:
        from thyrovid.stats.roc import auc
    except ImportError:
        return mann_whitney_auc(label, score)
    return float(auc(label, score))


def mann_whitney_auc(label: np.ndarray, score: np.ndarray) -> float:
    """AUROC as the Mann-Whitney U statistic (ties 1/2); label 1 = positive (malignant)."""
    label = np.asarray(label).astype(bool)
    score = np.asarray(score, float)
    order = np.argsort(score, kind="mergesort")
    sorted_s = score[order]
    ranks = np.empty(len(score))
    # average ranks over ties
    _, inv, counts = np.unique(sorted_s, return_inverse=True, return_counts=True)
    mean_rank = np.cumsum(counts) - (counts - 1) / 2.0
    ranks[order] = mean_rank[inv]
    n1 = int(label.sum())
    n0 = len(label) - n1
    return float((ranks[label].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def synthesize(out_dir: str | os.PathLike, config: SynthConfig, progress: bool = True) -> dict:
    """Write the phantom cohort to `out_dir` and return the summary (JSON-ready dict)."""
    start = time.perf_counter()
    out = Path(out_dir)
    (out / "videos").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    truth, tasks = plan_cohort(config)
    results = _run_tasks(tasks, out, config.workers, progress)
    split_of = dict(zip(truth["nodule_id"], truth["split"]))
    label_of = dict(zip(truth["nodule_id"], truth["label"]))
    rows, geo = [], []
    for res in results:
        geo.append(res["geometry"])
        for r in res["key_frames"]:
            rows.append(
                {**r, "label": int(label_of[r["nodule_id"]]), "split": split_of[r["nodule_id"]]}
            )
    cohort = pd.DataFrame(rows, columns=list(COLUMNS))
    truth = truth.merge(pd.DataFrame(geo), on="nodule_id", how="left")
    truth = truth.drop(columns=["n_videos"]).assign(
        composition=lambda d: d["composition"].map(dict(enumerate(anatomy.COMPOSITIONS))),
        echogenicity=lambda d: d["echogenicity"].map(anatomy.ECHOGENICITIES),
        margin=lambda d: d["margin"].map(dict(enumerate(anatomy.MARGINS))),
        rim=lambda d: d["rim"].map(dict(enumerate(anatomy.RIMS))),
    )
    truth = truth.round({"true_logit": 6, "p_malignant": 6})
    _write_csv(cohort, out / "cohort.csv")
    _write_csv(truth, out / "truth.csv")
    readers_written = _write_readers(truth, out / "readers.csv", config.seed)
    summary = summarize(truth, cohort, results)
    summary.update(seed=config.seed, readers_csv=readers_written)
    # summary.json carries no timing or path, so the folder stays bit-identical per seed
    write_text_atomic(out / "summary.json", json.dumps(summary, indent=2, sort_keys=True) + "\n")
    summary.update(out=str(out), seconds=round(time.perf_counter() - start, 2))
    return summary


def _run_tasks(tasks: list[NoduleTask], out: Path, workers: int, progress: bool) -> list[dict]:
    """Render every nodule's videos (in parallel when workers > 1), results in nodule order."""
    bar = tqdm(
        total=sum(len(t.videos) for t in tasks),
        desc="synth",
        unit="video",
        disable=not progress,
        leave=False,
    )
    results: dict[int, dict] = {}
    if workers <= 1:
        for t in tasks:
            results[t.index] = render_nodule(t, out)
            bar.update(len(t.videos))
    else:
        order = sorted(tasks, key=lambda t: -sum(v.n_frames for v in t.videos))  # big ones first
        with ProcessPoolExecutor(workers, mp_context=get_context("fork")) as pool:
            futures = {pool.submit(render_nodule, t, out): t for t in order}
            for fut in as_completed(futures):
                t = futures[fut]
                results[t.index] = fut.result()
                bar.update(len(t.videos))
    bar.close()
    return [results[i] for i in sorted(results)]


def _write_csv(df: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, lineterminator="\n")


def _write_readers(truth: pd.DataFrame, path: Path, seed: int) -> bool:
    """readers.csv from `thyrovid.synth.readers` when that module exists; False otherwise."""
    try:
        from thyrovid.synth.readers import simulate_readers
    except ImportError:
        return False
    if not (truth["split"] == "external").any():
        return False
    _write_csv(simulate_readers(truth, model_prob=None, seed=seed), path)
    return True


def summarize(truth: pd.DataFrame, cohort: pd.DataFrame, results: list[dict]) -> dict:
    """Counts per split and center, prevalence and the Bayes AUROC per split."""
    n_videos = {r["nodule_id"]: len(r["videos"]) for r in results}
    frames = sum(v["n_frames"] for r in results for v in r["videos"])
    per_split = {}
    for name in SPLITS:
        sub = truth[truth["split"] == name]
        if sub.empty:
            continue
        auc = bayes_auroc(sub["label"].to_numpy(), sub["p_malignant"].to_numpy())
        per_split[name] = {
            "patients": int(sub["patient_id"].nunique()),
            "nodules": len(sub),
            "videos": int(sum(n_videos[n] for n in sub["nodule_id"])),
            "malignant": int(sub["label"].sum()),
            "prevalence": round(float(sub["label"].mean()), 3),
            "bayes_auroc": None if auc is None else round(auc, 4),
        }
    per_center = {}
    for name, sub in truth.groupby("center"):
        per_center[name] = {
            "patients": int(sub["patient_id"].nunique()),
            "nodules": len(sub),
            "videos": int(sum(n_videos[n] for n in sub["nodule_id"])),
            "prevalence": round(float(sub["label"].mean()), 3),
        }
    overall = bayes_auroc(truth["label"].to_numpy(), truth["p_malignant"].to_numpy())
    return {
        "patients": int(truth["patient_id"].nunique()),
        "nodules": len(truth),
        "videos": int(sum(n_videos.values())),
        "frames": int(frames),
        "key_frames": len(cohort),
        "bayes_auroc": None if overall is None else round(overall, 4),
        "splits": per_split,
        "centers": per_center,
    }
