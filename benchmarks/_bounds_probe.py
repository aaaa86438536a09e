"""Thirteenth-round probe: the issue's bar against what perfect perception of each sign would give.

    python benchmarks/_bounds_probe.py DEMO RUN [DEMO RUN ...]

DEMO holds a demo's phantom and clips (DEMO/phantom, DEMO/work: `thyrovid demo --seed N --out
DEMO`, or synth + extract with the demo's settings); RUN is a 3D run of the demo's recipe on
them (DEMO/runs/3d_resnet50, or `_arch_probe.py DEMO/work RUN --seed N`). No training: one
pass over the clips (about 20 s per demo).

Each line is a logistic regression on per-nodule columns (standardised, C = 1), external
patients voted by noisy-or (`_perception_probe.nodule_patients`, the project's vote). Columns:
- `net`: the run's 3D logit, the mean over the nodule's clips (`network_own_output`: its
  sigmoid voted as is, the figure the run itself reports);
- measured from the pixels with no learning: `echo`, the log ratio of the median of the crop's
  central third (the nodule) to the median of its outer eighth (the parenchyma around the box);
  `aspect`, log(box height / width) of the clinician's box;
- from the phantom's truth (perception no model has): `foci` (has punctate echogenic foci),
  `n_foci`, `very_hypo`/`echogenicity`, `taller`, `macro`, `rim` (continuous, interrupted),
  `margin` (lobulated or irregular), `extension`, `composition` points.

Rows with `net` are fitted on the val + test nodules: the run never selected on them (the
demo's recipe keeps its last epoch), and its logits on the train nodules are fitted ones. Rows
of truth columns only are fitted on the train + val nodules. Printed beside them: how well the
two measurements read the truth on the external nodules (AUROC).

`information_3d_vs_2d`: the paper's 3D argument at perfect perception. Two regressions on the
true signs, fitted on the train + val nodules: the clip's (punctate foci counted where a focus is
in the plane of some frame of the nodule's 16-frame clips) and the key frame's (counted only
where one is in a key frame's plane), as `learning.py`'s ceilings; their external patient
AUROCs and the paired DeLong p between them (`stats.auc_compare.delong_test`), once with every
sign and once with the visible ones (no margin, extension or composition); and, with the
visible ones, what the p would be had the key frames shown the foci of only half or a third of
the nodules with foci (a phantom with fewer foci per nodule, simulated by thinning).

Last line, `pass_probability`: how often each model would clear the issue's bar (3D external
patient AUROC >= 0.85 on every demo given and >= 0.88 on their mean) when only the external
patients are redrawn: 4,000 stratified bootstrap resamples of each demo's external patients,
drawn independently per demo (seed 0). It says how far the bar sits above each model's
sampling noise, not how the model would fare on new phantoms.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _foci_probe import network_logits  # noqa: E402
from _perception_probe import nodule_patients  # noqa: E402
from learning import focus_seen  # noqa: E402

VISIBLE = ["echogenicity", "taller", "foci", "n_foci", "macro", "rim_continuous", "rim_interrupted"]
STACKS = {
    "network": ["net"],
    "network+measured_echo+aspect": ["net", "echo", "aspect"],
    "network+true_foci": ["net", "foci"],
    "network+true_foci+measured_echo+aspect": ["net", "foci", "echo", "aspect"],
    "network+true_foci+echo+shape": ["net", "foci", "echogenicity", "taller"],
}
TRUTH = {
    "truth_every_sign": [*VISIBLE, "margin", "extension", "composition"],
    "truth_without_extension": [*VISIBLE, "margin", "composition"],
    "truth_without_margin_extension_composition": VISIBLE,
    "truth_without_margin_composition": [*VISIBLE, "extension"],
}


def measured(work: Path, clips: pd.DataFrame) -> pd.DataFrame:
    """Per clip: relative nodule echo and box aspect, read from the pixels and the box."""
    echo = []
    for path in clips.clip_path:
        a = np.load(work / path).astype(np.float32)
        _, h, w = a.shape
        centre = np.median(a[:, h // 3 : h - h // 3, w // 3 : w - w // 3])
        ring = np.ones((h, w), bool)
        ring[h // 8 : h - h // 8, w // 8 : w - w // 8] = False
        echo.append(np.log((centre + 1.0) / (np.median(a[:, ring]) + 1.0)))
    aspect = np.log((clips.y1 - clips.y0).clip(lower=1) / (clips.x1 - clips.x0).clip(lower=1))
    return pd.DataFrame({"echo": echo, "aspect": aspect.to_numpy()}, index=clips.index)


def nodules(demo: Path, run: Path) -> pd.DataFrame:
    """One row per nodule of every split: label, split, patient, the columns of the docstring."""
    work = demo / "work"
    clips = pd.read_csv(work / "clips.csv")
    clips = clips.join(measured(work, clips))
    clips = clips.merge(network_logits(run), on="clip_id", how="left")
    nod = clips.groupby("nodule_id").agg(
        patient_id=("patient_id", "first"),
        split=("split", "first"),
        label=("label", "first"),
        net=("net", "mean"),
        echo=("echo", "mean"),
        aspect=("aspect", "mean"),
    )
    t = pd.read_csv(demo / "phantom" / "truth.csv").set_index("nodule_id").loc[nod.index]
    nod["foci"] = (t.n_micro > 0).astype(float)
    nod["n_foci"] = t.n_micro.astype(float)
    nod["echogenicity"] = t.tirads_echogenicity.astype(float)
    nod["taller"] = (t.taller_than_wide > 0).astype(float)
    nod["macro"] = (t.n_macro > 0).astype(float)
    nod["rim_continuous"] = (t.rim == "continuous").astype(float)
    nod["rim_interrupted"] = (t.rim == "interrupted").astype(float)
    nod["margin"] = t.margin.isin(["lobulated", "irregular"]).astype(float)
    nod["extension"] = (t.margin == "extrathyroidal").astype(float)
    nod["composition"] = t.tirads_composition.astype(float)
    nod["very_hypo"] = (t.echogenicity == "very_hypo").astype(float)
    nod["p_malignant"] = t.p_malignant.astype(float)
    return nod


def external_prob(nod: pd.DataFrame, cols: list[str], fit_splits: tuple[str, ...]) -> np.ndarray:
    """Per nodule P(malignant) of a regression on `cols` fitted on `fit_splits`; 0 off external."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    fit = nod[nod.split.isin(fit_splits)].dropna(subset=cols)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=5000))
    model.fit(fit[cols], fit.label)
    ext = (nod.split == "external").to_numpy()
    prob = np.zeros(len(nod))
    prob[ext] = model.predict_proba(nod.loc[ext, cols])[:, 1]
    return prob


def bootstrap(y: np.ndarray, q: np.ndarray, n: int, rng) -> np.ndarray:
    """`n` AUROCs of stratified resamples of the patients (y, q)."""
    from thyrovid.stats.roc import auc

    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    out = np.empty(n)
    for b in range(n):
        i = np.concatenate([rng.choice(pos, len(pos)), rng.choice(neg, len(neg))])
        out[b] = auc(y[i], q[i])
    return out


def pass_probability(draws: list[np.ndarray]) -> float:
    """Share of joint draws (one per demo) with every demo >= 0.85 and their mean >= 0.88."""
    a = np.stack(draws)
    return round(float(((a >= 0.85).all(0) & (a.mean(0) >= 0.88)).mean()), 3)


def _clip_vs_key(nod: pd.DataFrame, cols: list[str], clip: np.ndarray, key: np.ndarray) -> dict:
    """Paired DeLong between truth regressions with the foci shown as `clip` and as `key`."""
    from thyrovid.stats.auc_compare import delong_test

    scores = []
    for shown in (clip, key):
        view = nod.assign(foci=nod.foci * shown, n_foci=nod.n_foci * shown)
        y, q = nodule_patients(view, external_prob(view, cols, ("train", "val")), "external")
        scores.append(q)
    return delong_test(y, scores[0], scores[1])


def information_3d_vs_2d(demo: Path, nod: pd.DataFrame, reps: int = 10) -> dict:
    """External AUROCs of the clip's and the key frame's truth regressions, DeLong p between.

    `if_key_frames_showed_foci_in`: the same with the visible signs, had the key frames shown
    the foci of only that share of the nodules with foci (the nodules where they do, thinned at
    random, `reps` draws, seed 0): median difference of AUROC and median p.
    """
    clips = pd.read_csv(demo / "work" / "clips.csv")
    in_key, in_clip = focus_seen(demo / "phantom", clips)
    clip = nod.index.map(in_clip).fillna(False).to_numpy(bool)
    key = nod.index.map(in_key).fillna(False).to_numpy(bool)
    out: dict = {}
    for name, cols in (("every_sign", TRUTH["truth_every_sign"]), ("visible_signs", VISIBLE)):
        test = _clip_vs_key(nod, cols, clip, key)
        out[name] = {
            "clip": round(float(test["auc1"]), 3),
            "key_frame": round(float(test["auc2"]), 3),
            "delong_p": round(float(test["p"]), 3),
        }
    has = nod.foci.to_numpy() > 0
    out["foci_nodules_shown_in_a_key_frame"] = round(float(key[has].mean()), 3)
    rng = np.random.default_rng(0)
    thinned = {}
    for share in (0.5, 0.3):
        keep = min(1.0, share / max(float(key[has].mean()), 1e-9))
        tests = []
        for _ in range(reps):
            k = key.copy()
            k[has & key] = rng.random(int((has & key).sum())) < keep
            tests.append(_clip_vs_key(nod, VISIBLE, clip, k))
        thinned[str(share)] = {
            "auroc_difference": round(float(np.median([t["diff"] for t in tests])), 3),
            "delong_p": round(float(np.median([t["p"] for t in tests])), 3),
        }
    out["if_key_frames_showed_foci_in"] = thinned
    return out


def main() -> None:
    from sklearn.metrics import roc_auc_score

    from thyrovid.stats.roc import auc

    args = [Path(a) for a in sys.argv[1:]]
    if not args or len(args) % 2:
        raise SystemExit("usage: _bounds_probe.py DEMO RUN [DEMO RUN ...]")
    rng = np.random.default_rng(0)
    draws: dict[str, list[np.ndarray]] = {}
    for demo, run in zip(args[::2], args[1::2]):
        nod = nodules(demo, run)
        ext = nod[nod.split == "external"]
        out: dict = {"demo": str(demo), "run": str(run)}
        out["measured_echo_vs_very_hypo"] = round(roc_auc_score(ext.very_hypo, -ext.echo), 3)
        out["measured_aspect_vs_taller"] = round(roc_auc_score(ext.taller, ext.aspect), 3)
        probs = {
            "bayes": nod.p_malignant.to_numpy(),
            "network_own_output": 1 / (1 + np.exp(-nod.net.fillna(0.0).to_numpy())),
            **{k: external_prob(nod, c, ("val", "test")) for k, c in STACKS.items()},
            **{k: external_prob(nod, c, ("train", "val")) for k, c in TRUTH.items()},
        }
        for name, prob in probs.items():
            y, q = nodule_patients(nod, prob, "external")
            out[name] = round(float(auc(y, q)), 3)
            draws.setdefault(name, []).append(bootstrap(y, q, 4000, rng))
        out["information_3d_vs_2d"] = information_3d_vs_2d(demo, nod)
        out["fitted_on_val_test"] = list(STACKS)
        out["fitted_on_train_val"] = list(TRUTH)
        print(json.dumps(out), flush=True)
    print(json.dumps({"pass_probability": {k: pass_probability(v) for k, v in draws.items()}}))


if __name__ == "__main__":
    main()
