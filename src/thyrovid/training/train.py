"""`thyrovid train`: the paper's recipe on the extracted clips, resumable, on 1..N devices.

    thyrovid train WORK --arch resnet50 --dims 3 --out runs/r50 [--config cfg.yaml] [--set k=v ...]
    torchrun --nproc_per_node=4 -m thyrovid train WORK ... (same run, 4 GPUs; batch is global)

The run folder (`thyrovid.training.runfolder`): config.yaml (resolved, with git sha), model.safetensors
(best by validation AUROC; `meta.selected_by` says when not), state/last.pt (resume state,
tensors and plain containers only, loaded with weights_only=True), log.csv (one row per epoch),
tb/ (TensorBoard, when installed).

Determinism: the sampler order, the augmentation of each clip and dropout are all seeded from
(seed, epoch[, clip]), and the resume state is written at the end of every epoch, so a run
killed at any point and resumed with --resume ends with the weights of an uninterrupted run
(CPU; CUDA kernels are not bitwise deterministic).

The epoch itself (training pass, validation pass, loaders, loss, schedule, AMP) is
`thyrovid.training.engine`; the files of the run folder are `thyrovid.training.runfolder`; this module owns
the run: network, checks of the data, checkpoint selection, resume and the CLI.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from thyrovid import distributed as dist
from thyrovid.atomic import remove_stale_temps
from thyrovid.clips.dataset import ClipDataset, read_clips
from thyrovid.config import (
    BALANCES,
    OPTIMIZERS,
    SCHEDULES,
    TrainConfig,
    load_config,
    parse_overrides,
)
from thyrovid.errors import UserError
from thyrovid.options import add_device_argument
from thyrovid.reliability import emit, never_above_chance
from thyrovid.runs import build_network, load_run
from thyrovid.training import runfolder
from thyrovid.training.engine import (
    Engine,
    autocast_dtype,
    build_criterion,
    build_loaders,
    build_optimizer,
    build_scheduler,
    validation_auroc,
)

# ---------------------------------------------------------------- model and run folder


def initialise_from_run(net: nn.Module, config: TrainConfig) -> None:
    """Load `config.init_from`'s weights into `net`, inflating 2D -> 3D when needed."""
    from thyrovid.models import inflate_2d_to_3d

    source, src_config = load_run(config.init_from, classifier=False)
    if src_config.arch != config.arch:
        raise UserError(
            f"{config.init_from}: a {src_config.arch} run cannot start a {config.arch} network"
        )
    weights = source.state_dict()
    if (src_config.dims, config.dims) == (2, 3):
        weights = inflate_2d_to_3d(weights, net)
    elif src_config.dims != config.dims:
        raise UserError(f"{config.init_from}: a 3D run cannot start a 2D network")
    try:
        net.load_state_dict(weights)
    except RuntimeError as exc:  # e.g. another width: shapes differ
        first = str(exc).strip().splitlines()
        raise UserError(f"{config.init_from}: weights do not fit ({first[-1].strip()})") from None


# ---------------------------------------------------------------- the run


def _load_datasets(work_dir, config: TrainConfig):
    """(train set, validation set, config with input_frames set); unreadable clips reported."""
    train_ds = ClipDataset(work_dir, [config.train_split], config.dims)
    val_ds = ClipDataset(work_dir, [config.val_split], config.dims)
    skipped = train_ds.drop_unreadable() + val_ds.drop_unreadable()
    if dist.is_main():
        for line in skipped:
            print(line, file=sys.stderr)
        if skipped:
            print(
                f"skipped {len(skipped)} unreadable clip(s); see the lines above", file=sys.stderr
            )
    csv_path = Path(work_dir) / "clips.csv"
    if not len(train_ds):
        have = ", ".join(sorted(set(read_clips(work_dir)["split"]))) or "none"
        raise UserError(f"{csv_path}: no clips in split {config.train_split!r} (splits: {have})")
    _check_both_classes(train_ds, csv_path, config.train_split)
    _check_one_shape(train_ds, val_ds, csv_path)
    return train_ds, val_ds, _with_input_frames(config, train_ds)


def _with_input_frames(config: TrainConfig, train_ds: ClipDataset) -> TrainConfig:
    """input_frames from the clips (a --config from another run may carry a stale value)."""
    frames = train_ds.shape()[1] if config.dims == 3 else None
    if frames and config.input_frames not in (None, frames) and dist.is_main():
        print(
            f"note: input_frames={config.input_frames} replaced by {frames}, the clips' frames",
            file=sys.stderr,
        )
    return config.replace(input_frames=frames)


def _check_both_classes(train_ds: ClipDataset, csv_path: Path, split: str) -> None:
    """A training split of one class would train a constant: refuse it."""
    n_pos = int(train_ds.labels.sum())
    n_neg = len(train_ds) - n_pos
    if min(n_pos, n_neg) == 0:
        raise UserError(
            f"{csv_path}: split {split!r} has {n_pos} malignant and {n_neg} benign clips; "
            "training needs both classes: move patients of the missing class into it"
        )


def _check_one_shape(train_ds: ClipDataset, val_ds: ClipDataset, csv_path: Path) -> None:
    """Clips of several shapes (e.g. two extract runs merged) cannot be batched: refuse."""
    shapes: dict[tuple[int, ...], list[str]] = {}
    for ds in (train_ds, val_ds):
        for shape, ids in ds.file_shapes().items():
            shapes.setdefault(shape, []).extend(ids)
    if len(shapes) > 1:
        parts = [f"{len(v)} of {'x'.join(map(str, k))} (e.g. {v[0]})" for k, v in shapes.items()]
        raise UserError(
            f"{csv_path}: clips of {len(shapes)} shapes ({'; '.join(parts)}); "
            "re-extract them all with the same --frames and --size"
        )


def _selection(val_ds: ClipDataset, config: TrainConfig) -> str:
    """What picks model.safetensors: val_auroc, val_loss (one class) or last (no validation)."""
    labels = val_ds.clips["label"]
    if config.val_level == "patient":
        labels = val_ds.clips.groupby("patient_id")["label"].max()
    select_by = {2: "val_auroc", 1: "val_loss"}.get(labels.nunique(), "last")
    why = {
        "val_loss": f"split {config.val_split!r} has one class only ({config.val_level} level): "
        "no AUROC; "
        "model.safetensors is the epoch of lowest validation loss",
        "last": f"no clips in split {config.val_split!r}; model.safetensors is the last epoch",
    }
    if select_by in why and dist.is_main():
        print(f"note: {why[select_by]}", file=sys.stderr)
    return select_by


def _restore(state: dict, net, optimizer, scheduler, engine: Engine) -> tuple[int, float, int]:
    """Load the resume state; (first epoch to run, best metric, evaluations without gain)."""
    net.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None:
        scheduler.load_state_dict(state["scheduler"])
    engine.scaler.load_state_dict(state["scaler"])
    if engine.ema is not None:
        engine.ema.load_state_dict(state["ema"])
    torch.set_rng_state(state["rng_cpu"])
    return state["epoch"] + 1, state["best_metric"], state["bad_evals"]


def _log_scalars(writer, row: dict, step: int) -> None:
    for key in ("train_loss", "val_loss", "val_auroc", "lr", "clips_per_s"):
        value = row[key]
        if value != "" and not (isinstance(value, float) and math.isnan(value)):
            writer.add_scalar(key, value, step)


def _build_engine(config: TrainConfig, net, device: torch.device, labels: np.ndarray):
    """(Engine, optimizer, scheduler) for `net` on `device`: the optimiser, DDP when distributed, AMP."""
    net.to(device)
    if config.channels_last and device.type == "cuda":
        net.to(memory_format=torch.channels_last_3d if config.dims == 3 else torch.channels_last)
    optimizer = build_optimizer(config, net.parameters())
    scheduler = build_scheduler(config, optimizer)
    runner = dist.wrap_ddp(net, device)
    if config.compile:
        runner = torch.compile(runner)
    criterion = build_criterion(config, labels).to(device)
    engine = Engine(
        config, device, net, runner, optimizer, criterion, autocast_dtype(config, device)
    )
    return engine, optimizer, scheduler


def train(
    work_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    config: TrainConfig,
    resume: bool = False,
) -> Path:
    """Train `config` on WORK/clips.csv (train split), keep the best by validation AUROC.

    Under torchrun every rank calls this; rank 0 writes the run folder. Selection metric:
    validation AUROC (config.val_level); validation loss when the validation split holds one
    class only; the last epoch when there is no validation split.

    Returns:
        The run folder.
    """
    rank, world_size, device = dist.setup(config.device)
    out = Path(out_dir)
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)
    train_ds, val_ds, config = _load_datasets(work_dir, config)

    # Rank 0 owns the run folder (other nodes may not see it): it checks and reads, then shares.
    problem, state = (
        runfolder.open_run(out, config, resume, train_ds) if dist.is_main() else (None, None)
    )
    problem, state = dist.broadcast_object((problem, state))
    if problem:
        raise UserError(problem)
    if dist.is_main():  # what a killed run left: .model.tmp-*, .log.tmp-*, state/.last.tmp-*
        remove_stale_temps(out, out / "state")
    net = build_network(config)  # before writing anything: it checks the architecture options
    if config.init_from and state is None:
        initialise_from_run(net, config)
    select_by = _selection(val_ds, config)
    kept_by = "last" if config.keep == "last" else select_by  # what model.safetensors holds
    if dist.is_main():
        runfolder.write_config(out, config, work_dir, train_ds, world_size, kept_by)
    if world_size > 1:
        net = dist.convert_batchnorm(net, device)
    engine, optimizer, scheduler = _build_engine(config, net, device, train_ds.labels)
    train_loader, val_loader, sampler = build_loaders(
        train_ds, val_ds, config, rank, world_size, device
    )

    start, best, bad_evals = 0, -math.inf, 0
    if state is not None:
        start, best, bad_evals = _restore(state, net, optimizer, scheduler, engine)
    log_rows = runfolder.read_log(out / "log.csv", start)  # rows are numbered from 1
    writer = runfolder.tensorboard_writer(config, out)

    for epoch in range(start, config.epochs):
        sampler.set_epoch(epoch)
        t0 = time.perf_counter()
        train_loss, n_clips, train_s = engine.train_epoch(train_loader, epoch)
        row = {"epoch": epoch + 1, "train_loss": train_loss, "val_loss": "", "val_auroc": ""}
        row["lr"] = optimizer.param_groups[0]["lr"]
        row["clips_per_s"] = n_clips / max(train_s, 1e-9)
        evaluate_now = (epoch + 1) % config.eval_every == 0 or epoch + 1 == config.epochs
        improved, metric = select_by == "last", None
        if evaluate_now and select_by != "last":
            preds = engine.predict(val_loader)
            row["val_loss"] = float(np.mean([loss for _, loss in preds.values()]))
            if select_by == "val_auroc":
                row["val_auroc"] = validation_auroc(
                    val_ds.clips, preds, config.val_level, config.patient_vote
                )
            metric = row["val_auroc"] if select_by == "val_auroc" else -row["val_loss"]
            improved = metric > best
            best, bad_evals = (metric, 0) if improved else (best, bad_evals + 1)
        improved = improved or config.keep == "last"  # keep=last: every epoch replaces it
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            if metric is not None:
                scheduler.step(metric)
        elif scheduler is not None:
            scheduler.step()
        row["seconds"] = time.perf_counter() - t0
        if dist.is_main():
            if improved:
                runfolder.save_weights(engine.scored_net, out / "model.safetensors")
            log_rows.append(row)
            runfolder.write_log(log_rows, out / "log.csv")
            resume_state = runfolder.resume_state(
                epoch, net, optimizer, scheduler, engine.scaler, best, bad_evals
            )
            if engine.ema is not None:
                resume_state["ema"] = engine.ema.state_dict()
            runfolder.save_state(resume_state, out / "state" / "last.pt")
            if writer is not None:
                _log_scalars(writer, row, epoch + 1)
            print(json.dumps({k: _round(v) for k, v in row.items()}), file=sys.stderr)
        dist.barrier()
        if config.patience is not None and bad_evals >= config.patience:
            if dist.is_main():
                print(
                    f"early stop: no better {select_by} for {bad_evals} evaluations",
                    file=sys.stderr,
                )
            break
    if writer is not None:
        writer.close()
    if dist.is_main():  # which weights model.safetensors holds, and how sure that choice is
        kept = runfolder.kept_epoch(log_rows, kept_by)
        runfolder.record_selected_epoch(out, kept)
        emit(never_above_chance([r.get("val_auroc") for r in log_rows]))
        if config.keep == "last":
            best_epoch = (
                runfolder.kept_epoch(log_rows, select_by) if select_by == "val_auroc" else None
            )
            line = runfolder.kept_last_line(kept, best_epoch, log_rows)
        else:
            line = runfolder.kept_epoch_line(kept, select_by, len(log_rows), config)
        print(line, file=sys.stderr)
    return out


def _round(v):
    """An epoch-line value: floats to 5 decimals, an empty cell (not evaluated) as null."""
    return round(v, 5) if isinstance(v, float) else (None if v == "" else v)


# ---------------------------------------------------------------- command line


def _epilog() -> str:
    """The --help epilog: every option --set/--config take, and what keeps a checkpoint."""
    defaults = TrainConfig().to_dict()
    pairs = [f"{k}={'none' if v is None else v}".replace(" ", "") for k, v in defaults.items()]
    options = textwrap.fill(" ".join(pairs), width=88, initial_indent="  ", subsequent_indent="  ")
    return (
        "options of --set KEY=VALUE and --config (defaults: the paper's recipe; each is\n"
        "documented in thyrovid.config.TrainConfig):\n"
        f"{options}\n"
        f"  schedule: {'|'.join(SCHEDULES)}; balance (skewed prevalence): {'|'.join(BALANCES)};\n"
        "  val_level: clip|patient; patient_vote: mean|max|noisy-or; pool: avg|avgmax;\n"
        "  keep: best|last (last: the final epoch is kept; validation is still logged);\n"
        f"  optimizer: {'|'.join(OPTIMIZERS)} (weight_decay: L2 for adam/sgd, decoupled for adamw)\n"
        "  ema: weight-average decay (0 off; e.g. 0.999): validation scores and keeps the average\n\n"
        "model.safetensors is the epoch of best validation AUROC (split val_split); of lowest\n"
        "validation loss when that split holds one class; the last epoch when it holds no\n"
        "clips (config.yaml meta.selected_by says which, meta.selected_epoch the epoch; the last\n"
        "line printed names it with its validation figure). The training split must hold both\n"
        "classes. --resume continues the run in --out after a crash or with more --epochs\n"
        f"(only {', '.join(sorted(runfolder.RESUMABLE_CHANGES))} may change)."
    )


def add_arguments(parser) -> None:
    from thyrovid.models.registry import PAPER_ORDER

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = _epilog()
    parser.add_argument("work", help="work folder written by `thyrovid extract` (clips.csv)")
    parser.add_argument("--out", required=True, help="run folder to write (or resume)")
    parser.add_argument("--arch", help=f"network: {', '.join(PAPER_ORDER)} (default resnet50)")
    parser.add_argument(
        "--dims", type=int, choices=(2, 3), help="3: clips (default), 2: key-frame images"
    )
    parser.add_argument(
        "--config", help="YAML file of training options (a run's config.yaml works)"
    )
    parser.add_argument(
        "--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
        help="override any option, e.g. --set schedule=cosine patience=10 aug_rotate=10",
    )  # fmt: skip
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from state/last.pt (a new run if there is none)",
    )
    parser.add_argument("--epochs", type=int, help="epochs (paper: 100)")
    parser.add_argument("--batch-size", type=int, help="global batch size (paper: 16)")
    parser.add_argument("--lr", type=float, help="learning rate (paper: 1e-3, with Adam)")
    parser.add_argument("--width", type=float, help="channel multiplier (1.0 = published network)")
    add_device_argument(parser, default=None)
    parser.add_argument("--seed", type=int, help="random seed (default 0)")
    parser.add_argument("--amp", choices=("auto", "bf16", "fp16", "off"), help="mixed precision")
    parser.add_argument("--num-workers", type=int, help="DataLoader workers per rank")
    parser.add_argument(
        "--init-from",
        metavar="RUN",
        help="start from a trained run's weights (a 2D run is inflated to 3D)",
    )


def config_from_args(args) -> TrainConfig:
    """Defaults < --config YAML < flags < --set key=value."""
    flags = {
        "arch": args.arch,
        "dims": args.dims,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "width": args.width,
        "device": args.device,
        "seed": args.seed,
        "amp": args.amp,
        "num_workers": args.num_workers,
        "init_from": args.init_from,
    }
    overrides = {k: v for k, v in flags.items() if v is not None}
    overrides.update(parse_overrides(args.set))
    return load_config(args.config, overrides)


def run(args) -> int:
    config = config_from_args(args)
    try:
        out = train(args.work, args.out, config, resume=args.resume)
        if dist.is_main():
            print(json.dumps({"run": str(out), "model": str(out / "model.safetensors")}))
    finally:
        dist.cleanup()
    return 0
