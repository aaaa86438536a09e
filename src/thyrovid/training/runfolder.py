"""The run folder of `thyrovid train`: what is written, read and resumed.

    config.yaml        resolved TrainConfig + meta (input shape, work folder, selection, ...)
    model.safetensors  the selected weights (safetensors: loading never unpickles)
    state/last.pt      resume state: tensors and plain containers, loaded with weights_only=True
    log.csv            one row per epoch (LOG_FIELDS)
    tb/                TensorBoard event files, when tensorboard is installed

Every file is written under a temporary name and renamed, so a killed run leaves whole files.
"""

from __future__ import annotations

import csv
import math
import sys
from pathlib import Path

import torch
from torch import nn

from thyrovid import distributed as dist
from thyrovid.atomic import atomic_path
from thyrovid.clips.dataset import ClipDataset
from thyrovid.config import TrainConfig, read_yaml, save_config
from thyrovid.runs import read_extract_json

LOG_FIELDS = ("epoch", "train_loss", "val_loss", "val_auroc", "lr", "clips_per_s", "seconds")
# May differ between the first start and a --resume of the same run.
RESUMABLE_CHANGES = {"device", "num_workers", "epochs", "patience", "tensorboard", "eval_every"}


def save_weights(model: nn.Module, path: Path) -> None:
    from safetensors.torch import save_file

    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp))


def save_state(state: dict, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def read_log(path: Path, upto_epoch: int) -> list[dict]:
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        return [r for r in csv.DictReader(f) if int(r["epoch"]) <= upto_epoch]


def write_log(rows: list[dict], path: Path) -> None:
    with atomic_path(path) as tmp, tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=LOG_FIELDS)
        writer.writeheader()
        writer.writerows(rows)


def tensorboard_writer(config: TrainConfig, out: Path):
    if not (config.tensorboard and dist.is_main()):
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional
        return None
    return SummaryWriter(str(out / "tb"))


def open_run(
    out: Path, config: TrainConfig, resume: bool, train_ds: ClipDataset
) -> tuple[str | None, dict | None]:
    """(problem message or None, resume state or None) for the run folder `out`."""
    if not (out / "config.yaml").is_file():
        if resume:
            print(f"note: {out} holds no run yet; starting a new one", file=sys.stderr)
        return None, None
    if not resume:
        return f"{out}: already holds a run; pass --resume or choose a new --out", None
    saved, now = read_yaml(out / "config.yaml"), config.to_dict()
    changed = sorted(k for k in now if k not in RESUMABLE_CHANGES and saved.get(k) != now[k])
    if changed:
        return f"{out}: --resume with different {', '.join(changed)}; use a new --out", None
    meta = saved.get("meta") or {}
    data = {"input_shape": list(train_ds.shape()), "clips_train": len(train_ds)}
    moved = [f"{k} {meta[k]} -> {v}" for k, v in data.items() if k in meta and meta[k] != v]
    if moved:
        return f"{out}: --resume on other training data ({', '.join(moved)}); use a new --out", None
    path = out / "state" / "last.pt"
    if not path.is_file():
        print(f"note: {path}: not found (stopped in epoch 1); starting again", file=sys.stderr)
        return None, None
    try:
        return None, torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or overwritten file: torch raises many types
        why = " ".join(str(exc).split())[:120] or type(exc).__name__
        return (
            f"{path}: corrupt resume state ({why}); delete it to restart from epoch 1, or "
            "train into a new --out",
            None,
        )


def write_config(
    out: Path, config: TrainConfig, work_dir, train_ds, world_size: int, select_by: str
) -> None:
    (out / "state").mkdir(parents=True, exist_ok=True)
    meta = {
        "selected_by": select_by,
        "input_shape": list(train_ds.shape()),
        "world_size": world_size,
        "clips_train": len(train_ds),
        "work_dir": str(Path(work_dir).resolve()),
        "extract": read_extract_json(work_dir),
    }
    save_config(config, out / "config.yaml", meta)


def resume_state(epoch: int, net, optimizer, scheduler, scaler, best, bad_evals) -> dict:
    """What state/last.pt holds after `epoch` (0-based): enough to continue bit-exactly (CPU)."""
    return {
        "epoch": epoch,
        "model": net.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else {},
        "scaler": scaler.state_dict(),
        "rng_cpu": torch.get_rng_state(),
        "best_metric": best,
        "bad_evals": bad_evals,
    }


def _number(value) -> float | None:
    """A log.csv cell as a float; None for a blank (not evaluated) or NaN cell."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(x) else x


def kept_epoch(rows: list[dict], select_by: str) -> dict | None:
    """The epoch whose weights model.safetensors holds, as `train` chose it from `rows`.

    Mirrors the loop's rule: the first epoch of highest validation AUROC (val_auroc), of lowest
    validation loss (val_loss), or the last epoch (last). Returns dict epoch (1-based, as in
    log.csv), value (the figure it was kept for, or None), evaluated (epochs with a figure);
    None when no epoch qualifies (e.g. the AUROC was never defined).
    """
    if not rows:
        return None
    if select_by == "last":
        return {"epoch": int(rows[-1]["epoch"]), "value": None, "evaluated": 0}
    column, sign = ("val_auroc", 1.0) if select_by == "val_auroc" else ("val_loss", -1.0)
    scored = [(int(r["epoch"]), v) for r in rows if (v := _number(r.get(column))) is not None]
    if not scored:
        return None
    epoch, value = max(scored, key=lambda ev: (sign * ev[1], -ev[0]))  # ties: the first
    return {"epoch": epoch, "value": value, "evaluated": len(scored)}


def kept_epoch_line(kept: dict | None, select_by: str, n_epochs: int, config: TrainConfig) -> str:
    """The one line `train` ends with: which epoch's weights it kept, its figure, and why."""
    if kept is None:
        return (
            f"kept no epoch: validation {select_by} was never defined; model.safetensors "
            "holds the weights of the first epoch saved, if any"
        )
    head = f"kept epoch {kept['epoch']} of {n_epochs}"
    if select_by == "val_auroc":
        return (
            f"{head}: validation AUROC {kept['value']:.3f} ({config.val_level} level, split "
            f"{config.val_split!r}), the highest of {kept['evaluated']} evaluated epoch(s)"
        )
    if select_by == "val_loss":
        return (
            f"{head}: validation loss {kept['value']:.4f}, the lowest of {kept['evaluated']} "
            f"evaluated epoch(s) (split {config.val_split!r} has one class: no AUROC to choose by)"
        )
    return f"{head}: the last epoch (no clips in split {config.val_split!r} to choose by)"


def kept_last_line(kept: dict | None, best: dict | None, rows: list[dict]) -> str:
    """The closing line under keep=last: the last epoch, with its validation AUROC beside the best."""
    if kept is None:
        return "kept no epoch: no epoch finished"
    head = f"kept epoch {kept['epoch']} of {len(rows)}: the last epoch (keep=last)"
    last = _number(rows[-1].get("val_auroc")) if rows else None
    if last is None or best is None or best.get("value") is None:
        return head
    return (
        f"{head}; validation AUROC {last:.3f} at it, the highest {best['value']:.3f} at epoch "
        f"{best['epoch']}"
    )


def finished(out: Path) -> bool:
    """Whether the run in `out` ran to its end, so its model.safetensors is the one it keeps.

    model.safetensors is written during training (the best or the last epoch so far), so its
    presence alone does not say the run ended: `train` writes ``meta.selected_epoch`` into
    config.yaml last. A folder with weights but no resume state has nothing to continue.
    """
    if not (out / "model.safetensors").is_file():
        return False
    if not (out / "state" / "last.pt").is_file() or not (out / "config.yaml").is_file():
        return True
    return "selected_epoch" in (read_yaml(out / "config.yaml").get("meta") or {})


def record_selected_epoch(out: Path, kept: dict | None) -> None:
    """Write ``meta.selected_epoch`` (1-based, as in log.csv; null when none) into config.yaml."""
    import yaml

    from thyrovid.atomic import write_text_atomic

    path = out / "config.yaml"
    doc = read_yaml(path)
    doc.setdefault("meta", {})["selected_epoch"] = None if kept is None else int(kept["epoch"])
    write_text_atomic(path, yaml.safe_dump(doc, sort_keys=False))
