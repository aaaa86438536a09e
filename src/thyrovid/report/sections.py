"""The sections of the HTML report, one builder per kind of input (see `thyrovid.report.report`).

Every builder reads only the columns and keys it shows, so that a column a user carried along
(a name, an accession number) can never reach the page. Files that cannot be read are left out
with one line each, collected in ``skipped`` and shown in the footer.
"""

from __future__ import annotations

import json
import os
import shlex
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from thyrovid.cohort.schema import SPLITS as SPLIT_ORDER
from thyrovid.report.html import Section, ci, esc, figure, limits_box, num, para, table
from thyrovid.runs import display_name, find_work_dir
from thyrovid.stats.auc_ci import AUC_CI_NAMES as _AUC_CI

METRIC_ROWS = (
    ("AUROC (95% CI)", "auroc"),
    ("Accuracy", "accuracy"),
    ("Sensitivity", "sensitivity"),
    ("Specificity", "specificity"),
    ("PPV", "ppv"),
    ("NPV", "npv"),
    ("F1", "f1"),
    ("Kappa", "kappa"),
)
CONFIG_ROWS = (
    ("Architecture", "arch"), ("Dimensions", "dims"), ("Width multiplier", "width"),
    ("Frames per clip", "input_frames"), ("Epochs", "epochs"), ("Batch size", "batch_size"),
    ("Learning rate (Adam)", "lr"), ("Adam betas", "betas"), ("Weight decay", "weight_decay"),
    ("Dropout", "dropout"), ("LR schedule", "schedule"), ("Early-stopping patience", "patience"),
    ("Class balancing", "balance"), ("Augmentation", "augment"), ("Attention block", "attention"),
    ("Mixed precision", "amp"), ("Checkpoint chosen on", "val_level"), ("Seed", "seed"),
)  # fmt: skip
TRAIN_FLAGS = {"arch": "--arch", "dims": "--dims", "width": "--width", "epochs": "--epochs",
               "batch_size": "--batch-size", "lr": "--lr", "seed": "--seed"}  # fmt: skip
CAM_COLUMNS = ("clip_id", "label", "prob", "cam_max", "warning", "energy_in_mask",
               "mask_fraction", "energy_ratio", "pointing_hit")  # fmt: skip
# cam.csv columns that need the phantom's truth (calcification masks): shown only when filled
CAM_TRUTH_COLUMNS = (("energy_in_mask", "Energy in mask"), ("mask_fraction", "Mask fraction"),
                     ("energy_ratio", "Energy ratio"), ("pointing_hit", "Pointing hit"))  # fmt: skip
MAX_MONTAGES = 24


@dataclass
class Run:
    """What the report uses of one run folder; parts that are missing or unreadable are None."""

    path: Path
    config: dict
    log: pd.DataFrame | None
    metrics: dict | None
    predictions: pd.DataFrame | None

    @property
    def name(self) -> str:
        pretty = display_name(self.config)
        return f"{pretty} ({self.path.name})" if pretty else self.path.name


def _read(path: Path, skipped: list[str], reader):
    """reader(path), or None (missing file) / None plus a line in ``skipped`` (unreadable)."""
    if not path.is_file():
        return None
    try:
        return reader(path)
    except (OSError, ValueError, yaml.YAMLError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        # folder/file only: a full path may name the user (home folder)
        cause = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        where = f"{path.parent.name}/{path.name}"
        skipped.append(f"{where}: cannot read ({type(exc).__name__}: {cause})".splitlines()[0])
        return None


def read_run(path: Path, skipped: list[str]) -> Run:
    """What the report shows of a run folder, each file read leniently (see `_read`)."""
    config = _read(path / "config.yaml", skipped, lambda p: yaml.safe_load(p.read_text()))
    pred_cols = {"level", "split", "label", "prob"}
    return Run(
        path=path,
        config=config if isinstance(config, dict) else {},
        log=_read(path / "log.csv", skipped, pd.read_csv),
        metrics=_read(path / "metrics.json", skipped, lambda p: json.loads(p.read_text())),
        predictions=_read(path / "predictions.csv", skipped,
                          lambda p: pd.read_csv(p, usecols=lambda c: c in pred_cols)),
    )  # fmt: skip


def find_work(run: Run) -> Path | None:
    """The run's work folder: config meta.work_dir / work_dir, else metrics.json work_dir."""
    return find_work_dir(run.path, run.config, run.metrics, search=True)


def show(path: Path, base: Path) -> str:
    """A path relative to the report's folder; outside it, only the last part (no home dirs)."""
    try:
        rel = os.path.relpath(Path(path).resolve(), Path(base).resolve())
    except ValueError:
        rel = ".."
    return rel if not rel.startswith("..") else Path(path).name


def _splits(names) -> list[str]:
    names = list(dict.fromkeys(str(n) for n in names))
    return [s for s in SPLIT_ORDER if s in names] + [s for s in names if s not in SPLIT_ORDER]


# --------------------------------------------------------------------------- cohort


def cohort_table(clips: pd.DataFrame) -> str:
    """Counts per split: centers, patients, malignant patients, prevalence, nodules, videos, clips."""
    clips = clips.assign(label=pd.to_numeric(clips["label"], errors="coerce"))
    rows = []
    for split in _splits(clips["split"]) + ["all"]:
        s = clips if split == "all" else clips[clips["split"] == split]
        pat = s.groupby("patient_id")["label"].max()
        count = {c: (s[c].nunique() if c in s.columns else "NA")
                 for c in ("center", "nodule_id", "video_id")}  # fmt: skip
        prev = pat.mean() if len(pat) else None
        rows.append([split, count["center"], len(pat), int(pat.sum()), num(prev),
                     count["nodule_id"], count["video_id"], len(s)])  # fmt: skip
    head = ["Split", "Centers", "Patients", "Malignant patients", "Prevalence", "Nodules",
            "Videos", "Clips"]  # fmt: skip
    return table(head, rows)


def bayes_ceilings(truth: pd.DataFrame) -> dict[str, dict]:
    """The phantom's best achievable AUROC per split (and "all"), at nodule and patient level.

    The generator's own P(malignant) is the Bayes-optimal score; a patient is malignant when any
    of its nodules is, with P = 1 - prod(1 - p_nodule) (nodules drawn independently).

    Args:
        truth: PHANTOM/truth.csv rows (patient_id, split, label, p_malignant).

    Returns:
        split -> dict patients, nodules, malignant (nodules), prevalence (nodule level),
        nodule and patient (AUROC, None with one class only).
    """
    from thyrovid.stats.roc import auc

    def ceiling(y, p):
        return auc(y, p) if len(set(y)) == 2 else None

    out = {}
    truth = truth.assign(label=pd.to_numeric(truth["label"]), p=pd.to_numeric(truth["p_malignant"]))
    for split in _splits(truth["split"]) + ["all"]:
        s = truth if split == "all" else truth[truth["split"] == split]
        pat = s.groupby("patient_id").agg(label=("label", "max"),
                                          p=("p", lambda p: 1 - np.prod(1 - p)))  # fmt: skip
        out[split] = {
            "patients": len(pat),
            "nodules": len(s),
            "malignant": int(s["label"].sum()),
            "prevalence": float(s["label"].mean()),
            "nodule": ceiling(s["label"].to_numpy(int), s["p"].to_numpy()),
            "patient": ceiling(pat["label"].to_numpy(int), pat["p"].to_numpy()),
        }
    return out


def read_truth(phantom: Path | None, skipped: list[str]) -> pd.DataFrame | None:
    """PHANTOM/truth.csv, only the columns the Bayes ceiling needs."""
    if phantom is None:
        return None
    cols = {"patient_id", "split", "label", "p_malignant"}
    truth = _read(phantom / "truth.csv", skipped,
                  lambda p: pd.read_csv(p, usecols=lambda c: c in cols, dtype={"patient_id": str}))  # fmt: skip
    if truth is not None and not cols <= set(truth.columns):
        skipped.append(f"{phantom.name}/truth.csv: needs columns {sorted(cols)}")
        return None
    return truth


def cohort_section(works: list[Path], ceilings: dict | None, base: Path, skipped) -> Section | None:
    parts = []
    id_cols = {"patient_id", "nodule_id", "video_id", "center", "label", "split"}
    for work in works:
        clips = _read(work / "clips.csv", skipped,
                      lambda p: pd.read_csv(p, usecols=lambda c: c in id_cols, dtype=str))  # fmt: skip
        if clips is None or not {"patient_id", "label", "split"} <= set(clips.columns):
            continue
        head = f"<h3>Clips per split (work folder {esc(show(work, base))})</h3>"
        parts.append(head + cohort_table(clips))
    if ceilings:
        rows = [[split, c["patients"], c["nodules"], c["malignant"], num(c["prevalence"]),
                 num(c["nodule"]), num(c["patient"])] for split, c in ceilings.items()]  # fmt: skip
        head = ["Split", "Patients", "Nodules", "Malignant nodules", "Nodule prevalence",
                "Bayes AUROC (nodule)", "Bayes AUROC (patient)"]  # fmt: skip
        parts.append("<h3>Phantom: the best any model can do</h3>" + table(head, rows))
        parts.append(para("Bayes AUROC: the phantom generator's own P(malignant) ranked "
                          "against the truth. No model can expect to beat it."))  # fmt: skip
    if not parts:
        return None
    how = ("One row per split; prevalence is the share of patients with at least one malignant "
           "nodule (label 1 = malignant). Patients never cross splits.")  # fmt: skip
    return Section("cohort", "Cohort and data", how, parts)


# --------------------------------------------------------------------------- runs


def _patient_blocks(metrics: dict) -> dict:
    return {s: lv["patient"] for s, lv in (metrics.get("splits") or {}).items()
            if isinstance(lv, dict) and isinstance(lv.get("patient"), dict)}  # fmt: skip


def metrics_table(blocks: dict) -> str:
    """Rows = metrics, columns = splits (patient level), cells "value (low, high)"."""
    splits = list(blocks)

    def row(label, fn):
        return [label] + [fn(blocks[s]) for s in splits]

    def entry(key):
        def cell(b):
            e = b.get(key) or {}
            text = ci(*(e.get(k) for k in ("value", "low", "high")))
            if e.get("clipped"):  # the warning beside the number
                text += " (CI clipped to range)"
            if e.get("note") and e.get("low") is None:
                text += f" ({e['note']})"
            return text

        return cell

    rows = [row("Patients (malignant)", lambda b: f"{b.get('n', 'NA')} ({b.get('n_pos', 'NA')})")]
    rows += [row(label, entry(key)) for label, key in METRIC_ROWS]
    rows.append(row("TP / FP / TN / FN", lambda b: " / ".join(str(b.get(k, "NA"))
                                                               for k in ("tp", "fp", "tn", "fn"))))  # fmt: skip
    rows.append(row("Brier score", lambda b: num(b.get("brier"))))
    cal = lambda key: lambda b: num((b.get("calibration") or {}).get(key))  # noqa: E731
    rows.append(row("Calibration intercept (ideal 0)", cal("intercept")))
    rows.append(row("Calibration slope (ideal 1)", cal("slope")))
    return table(["Patient level"] + splits, rows)


def config_table(config: dict) -> str:
    meta = config.get("meta") or {}
    rows = []
    for label, key in CONFIG_ROWS:
        if key in config and not (key == "input_frames" and config.get("dims") == 2):
            v = config[key]
            v = "off" if v is None and key == "patience" else v
            rows.append([label, ", ".join(map(str, v)) if isinstance(v, list) else v])
    shape = meta.get("input_shape")
    if isinstance(shape, list) and len(shape) in (3, 4):
        rows.insert(4, ["Input size", " x ".join(map(str, shape[1:]))])
    for label, key in (("Training clips", "clips_train"), ("Processes (DDP)", "world_size"),
                       ("thyrovid version", "thyrovid_version"), ("Code commit", "git_sha")):  # fmt: skip
        if meta.get(key) is not None:
            rows.append([label, str(meta[key])[:12]])
    per_line = 3  # label/value pairs side by side: a long one-column list reads badly
    lines = [sum(rows[i : i + per_line], []) for i in range(0, len(rows), per_line)]
    lines = [line + [""] * (2 * per_line - len(line)) for line in lines]
    return table([], lines, caption="Configuration (config.yaml)", cls="kv")


def run_limits(run: Run) -> list[str]:
    """The run's "limits of this result": metrics.json warnings, then why a CI is missing."""
    from thyrovid.reliability import from_json, limits

    m = run.metrics or {}
    lines = limits(from_json(m.get("warnings")))
    for split, block in _patient_blocks(m).items():
        note = (block.get("auroc") or {}).get("note")
        if note and not any(line.startswith(f"{split}/patient: AUROC") for line in lines):
            lines.append(f"{split} patients: AUROC {note}")
    return lines


def run_section(run: Run, key: str) -> Section:
    from thyrovid.report.run_figures import roc_and_reliability, training_curves

    parts = [config_table(run.config)] if run.config else []
    if run.log is not None:
        kept = (run.config.get("meta") or {}).get("selected_epoch")
        parts.append(figure(training_curves(run.log, kept), "Training: loss and validation AUROC "
                            "per epoch (log.csv); the circled epoch's weights were kept."))  # fmt: skip
    m = run.metrics or {}
    blocks = _patient_blocks(m) if m else {}
    parts.insert(0, limits_box(run_limits(run)))
    if blocks:
        thr = m.get("threshold") or {}
        parts.append(para(f"Decision threshold {num(thr.get('value'))} on P(malignant), from: "
                          f"{thr.get('source', 'not recorded')}; applied unchanged to every split "
                          "(malignant when P >= threshold).", cls="how"))  # fmt: skip
        parts.append(metrics_table(blocks))
        parts.append(para(f"AUROC CIs: {_AUC_CI.get(m.get('auc_ci', 'delong'), m.get('auc_ci'))}. "
                          f"Patient vote: {m.get('patient_vote', 'mean')} of the nodules. "
                          f"Proportion CIs: {m.get('ci', 'NA')}, level "
                          f"{num(m.get('ci_level', m.get('level')), 2)}. Test-time views per clip: {m.get('tta', 1)}."))  # fmt: skip
    elif run.metrics is None:
        parts.append(para(f"No metrics.json: run `thyrovid evaluate {run.path.name}`."))
    parts.append(figure(roc_and_reliability(run.predictions, run.metrics),
                        "ROC per split and reliability diagram (patient level); reliability "
                        "points on the diagonal mean the probabilities can be taken at face "
                        "value (point size: patients in the bin)."))  # fmt: skip
    how = ("Patient level: clip probabilities averaged to videos, nodules, then the patient "
           "(soft voting); one column per split. Brier: mean squared error of the probability "
           "(lower is better).")  # fmt: skip
    return Section(key, run.name, how, parts, level=3)


def overview_section(runs: list[Run], ceilings: dict | None) -> Section:
    blocks = {r.name: _patient_blocks(r.metrics or {}) for r in runs}
    splits = _splits(s for b in blocks.values() for s in b)
    rows = [[name] + [ci(*((b.get(s, {}).get("auroc") or {}).get(k) for k in ("value", "low", "high")))
                      for s in splits] for name, b in blocks.items()]  # fmt: skip
    if ceilings:
        rows.append(["Bayes ceiling (phantom)"]
                    + [num((ceilings.get(s) or {}).get("patient")) for s in splits])  # fmt: skip
    how = ("AUROC (95% DeLong CI) per run and split at patient level; 0.5 is chance, 1 perfect. "
           "Details of each run follow.")  # fmt: skip
    return Section("runs", "Models", how, [table(["Run"] + splits, rows)])


def train_command(run: Run, base: Path) -> list[str]:
    """`thyrovid train` and `thyrovid evaluate` lines rebuilt from config.yaml / metrics.json."""
    from thyrovid.config import TrainConfig

    cfg = {k: v for k, v in run.config.items() if k != "meta"}
    work = find_work(run)
    out = []
    if cfg:
        defaults = TrainConfig().to_dict()
        parts = [
            "thyrovid",
            "train",
            show(work, base) if work else "WORK",
            "--out",
            show(run.path, base),
        ]
        for k, flag in TRAIN_FLAGS.items():
            if k in cfg:
                parts += [flag, str(cfg[k])]
        sets = [f"{k}={json.dumps(v) if isinstance(v, list) else v}" for k, v in cfg.items()
                if k in defaults and k not in TRAIN_FLAGS and k != "input_frames" and v != defaults[k]]  # fmt: skip
        out.append(" ".join(shlex.quote(p) for p in parts + (["--set", *sets] if sets else [])))
    if run.metrics:
        m, thr = run.metrics, run.metrics.get("threshold") or {}
        parts = ["thyrovid", "evaluate", show(run.path, base), "--tta", str(m.get("tta", 1))]
        parts += ["--ci", str(m.get("ci", "wilson"))]
        if m.get("auc_ci", "delong") != "delong":
            parts += ["--auc-ci", str(m["auc_ci"])]
        if m.get("patient_vote", "mean") != "mean":
            parts += ["--patient-vote", str(m["patient_vote"])]
        if thr.get("method") == "fixed":
            parts += ["--threshold", str(thr.get("value"))]
        elif thr.get("method") == "sensitivity":
            parts += ["--target-sensitivity", str(thr.get("target"))]
        out.append(" ".join(shlex.quote(p) for p in parts))
    return out
