"""`thyrovid pretrain`: self-supervised pretraining on the clips, without reading a label.

    thyrovid pretrain WORK --out runs/pre --config demo/runs/3d_resnet50/config.yaml
    thyrovid train WORK --config demo/runs/3d_resnet50/config.yaml --init-from runs/pre --out runs/r50

Every group has far more cine than labels. This stage learns from the clips alone: two views of
a nodule (a clip, and another clip of the same nodule when the cohort has one: another key
frame or another video; else the same clip) are augmented independently (an affine warp,
intensity jitter and, in 3D, a random sweep direction) and the network is trained so that the
views of one nodule lie close together and those of other nodules apart: the supervised
contrastive loss of Khosla et al. (NeurIPS 2020) with the nodule as the class, i.e. SimCLR's
NT-Xent (Chen et al., ICML 2020) where every view of the same nodule in the batch is a
positive, so two clips of one nodule are never pushed apart. A two-layer projection head sits on
the globally pooled last feature map during pretraining and is dropped afterwards.

The run folder has the layout `thyrovid train` writes (config.yaml, model.safetensors,
log.csv), so `train --init-from RUN` starts from it (same architecture, width and dims); its
config.yaml ``meta.pretrain`` records the objective, the splits read and the temperature, and
``meta.selected_by`` is ``pretrain``, so it is never mistaken for a classifier: every stage
that predicts refuses it (its classification layer is the untrained one). model.safetensors is
written once, at the end, so a run cut short leaves no weights to start from by mistake;
state/last.pt, written after every epoch, lets `--resume` continue it.

Which clips: `--splits` (default: the training split). Labels are never read, so adding the
unlabelled clips of a cohort is honest; adding the clips of the splits a model is evaluated on
would let it see their images before the test, and is refused unless `--allow-eval-splits`.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from thyrovid.atomic import atomic_path
from thyrovid.clips.dataset import ClipDataset, collate, read_clips, to_model_input
from thyrovid.config import TrainConfig, read_yaml, save_config
from thyrovid.distributed import checked_device
from thyrovid.errors import UserError
from thyrovid.options import add_device_argument
from thyrovid.runs import build_network, read_extract_json
from thyrovid.training import runfolder
from thyrovid.training.augment import AugmentParams, augment_batch
from thyrovid.training.engine import build_optimizer

#: Splits a model is usually evaluated on: pretraining on their images needs --allow-eval-splits.
EVAL_SPLITS = ("val", "test", "external")
LOG_FIELDS = ("epoch", "loss", "lr", "clips_per_s", "seconds")
#: The views' augmentation: a little stronger than the supervised recipe's (SimCLR's lesson:
#: the views must differ enough that matching them needs more than the pixels).
VIEW_AUGMENT = AugmentParams(
    translate=0.1, scale=(0.8, 1.25), rotate=15.0, brightness=0.15, contrast=0.3, gamma=0.3
)


def nodule_contrastive_loss(
    z: torch.Tensor, groups: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Supervised contrastive loss with the nodule as the class (SupCon, the "out" form).

    Args:
        z: (N, D) projections of N views.
        groups: (N,) integer nodule ids; views of one id are positives of each other. Every
            view needs at least one positive besides itself.
        temperature: the softmax temperature tau.

    Returns:
        mean over views i of -mean_{p in P(i)} log(exp(s_ip / tau) / sum_{a != i} exp(s_ia / tau)),
        s the cosine similarity. When every similarity is equal it is log(N - 1).
    """
    z = F.normalize(z.float(), dim=1)
    n = len(z)
    eye = torch.eye(n, dtype=torch.bool, device=z.device)
    sim = (z @ z.T / temperature).masked_fill(eye, float("-inf"))
    log_prob = sim - torch.logsumexp(sim, dim=1, keepdim=True)
    positive = (groups[:, None] == groups[None, :]) & ~eye
    counts = positive.sum(dim=1)
    if bool((counts == 0).any()):
        raise ValueError("every view needs a positive (another view of its nodule)")
    return (-(log_prob.masked_fill(~positive, 0.0).sum(dim=1) / counts)).mean()


class ProjectionHead(nn.Module):
    """Linear -> BatchNorm -> ReLU -> Linear, on the pooled last feature map (SimCLR's head)."""

    def __init__(self, channels: int, out: int = 64):
        super().__init__()
        hidden = max(out, channels // 2)
        self.net = nn.Sequential(
            nn.Linear(channels, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, out),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def pooled(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The network's globally averaged last feature map, (B, channels)."""
    return net.features(x).flatten(2).mean(dim=2)


def nodule_groups(clips) -> np.ndarray:
    """(N,) int: one id per (patient_id, nodule_id); a clip without a nodule_id is its own."""
    keys = [
        f"{p}\x00{n}" if str(n) else f"clip\x00{c}"
        for p, n, c in zip(clips["patient_id"], clips["nodule_id"].astype(str), clips["clip_id"])
    ]
    _, ids = np.unique(np.array(keys, dtype=object), return_inverse=True)
    return ids.astype(np.int64)


def epoch_pairs(groups: np.ndarray, seed: int, epoch: int) -> list[tuple[int, int]]:
    """(anchor, partner) for every clip once, in a seeded order; the partner is another clip of
    the anchor's nodule when there is one, else the anchor itself."""
    rng = np.random.default_rng([seed, epoch, 0x5E1F])
    members: dict[int, list[int]] = {}
    for i, g in enumerate(groups.tolist()):
        members.setdefault(g, []).append(i)
    pairs = []
    for i in rng.permutation(len(groups)).tolist():
        others = [j for j in members[int(groups[i])] if j != i]
        pairs.append((i, int(rng.choice(others)) if others else i))
    return pairs


class _Views(Dataset):
    """Items of `base` in the order of `flat` (anchors and partners interleaved by the caller)."""

    def __init__(self, base: ClipDataset, flat: list[int]):
        self.base, self.flat = base, flat

    def __len__(self) -> int:
        return len(self.flat)

    def __getitem__(self, k: int) -> dict:
        return self.base[self.flat[k]]


def _reverse_some(x: torch.Tensor, indices: torch.Tensor, seed: int, epoch: int, view: int):
    """Play about half of the clips backwards (the sonographer sweeps either way); 3D only."""
    if x.dim() != 5:
        return x
    flags = [
        bool(np.random.default_rng([seed, epoch, view, int(i)]).random() < 0.5)
        for i in indices.tolist()
    ]
    if not any(flags):
        return x
    out = x.clone()
    sel = torch.tensor(flags, device=x.device)
    out[sel] = torch.flip(x[sel], dims=[2])
    return out


def _view_batch(x, indices, seed, epoch, view, n_total):
    """One augmented view of a batch; view 1 draws its warps from indices shifted past view 0's."""
    x = _reverse_some(x, indices, seed, epoch, view)
    x = augment_batch(x, indices + view * n_total, seed, epoch, VIEW_AUGMENT)
    return to_model_input(x)


def _load(work_dir, splits: list[str], dims: int, allow_eval: bool) -> ClipDataset:
    clips = read_clips(work_dir)
    csv_path = Path(work_dir) / "clips.csv"
    present = sorted(set(clips["split"]))
    unknown = [s for s in splits if s not in present]
    if unknown:
        raise UserError(
            f"{csv_path}: no clips in split(s) {', '.join(unknown)} (splits: "
            f"{', '.join(present) or 'none'})"
        )
    evaluated = [s for s in splits if s in EVAL_SPLITS]
    if evaluated and not allow_eval:
        raise UserError(
            f"--splits {','.join(splits)}: {', '.join(evaluated)} is a split models are "
            "evaluated on; pretraining on its images (even without labels) lets the model see "
            "them before the test. Pass --allow-eval-splits to do it anyway"
        )
    ds = ClipDataset(work_dir, splits, dims)
    skipped = ds.drop_unreadable()
    for line in skipped:
        print(line, file=sys.stderr)
    if skipped:
        print(f"skipped {len(skipped)} unreadable clip(s); see the lines above", file=sys.stderr)
    if len(ds) < 2:
        raise UserError(f"{csv_path}: pretraining needs at least 2 readable clips, found {len(ds)}")
    shapes = ds.file_shapes()
    if len(shapes) > 1:
        raise UserError(
            f"{csv_path}: clips of {len(shapes)} shapes; re-extract them all with the same "
            "--frames and --size"
        )
    return ds


def _write_log(rows: list[dict], path: Path) -> None:
    with atomic_path(path) as tmp, tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=LOG_FIELDS)
        writer.writeheader()
        writer.writerows(rows)


def pretrain(
    work_dir,
    out_dir,
    config: TrainConfig,
    splits: list[str] | None = None,
    temperature: float = 0.2,
    allow_eval_splits: bool = False,
    resume: bool = False,
) -> Path:
    """Pretrain `config`'s network on the clips of `splits` (labels unread); returns the run folder.

    Uses from `config`: the network options, epochs, batch_size (anchors per batch: each brings
    two views), the optimiser options (lr, betas, weight_decay), seed, device, num_workers;
    the learning rate decays by a cosine over the epochs. `resume` continues the run in
    `out_dir` from its state/last.pt (written after every epoch), ending with the weights of an
    uninterrupted run (CPU).
    """
    if temperature <= 0:
        raise UserError(f"--temperature must be > 0, got {temperature}")
    if config.batch_size < 2:
        raise UserError("batch_size must be >= 2: a contrastive batch needs other nodules")
    out = Path(out_dir)
    splits = list(splits or [config.train_split])
    ds = _load(work_dir, splits, config.dims, allow_eval_splits)
    config = config.replace(input_frames=ds.shape()[1] if config.dims == 3 else None)
    device = checked_device(config.device)
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)
    net = build_network(config).to(device)
    torch.manual_seed(config.seed + 1)
    head = ProjectionHead(net.out_channels).to(device)
    params = list(net.parameters()) + list(head.parameters())
    optimizer = build_optimizer(config, params)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    groups = nodule_groups(ds.clips)
    n_groups = len(np.unique(groups))
    meta = {
        "selected_by": "pretrain",
        "input_shape": list(ds.shape()),
        "clips_train": len(ds),
        "work_dir": str(Path(work_dir).resolve()),
        "extract": read_extract_json(work_dir),
        "pretrain": {
            "objective": "nodule-contrastive (SupCon, nodule as class)",
            "splits": splits,
            "clips": len(ds),
            "nodules": int(n_groups),
            "temperature": float(temperature),
            "labels_read": False,
        },
    }
    state = _open(out, config, meta, resume)
    if state is None:
        (out / "state").mkdir(parents=True, exist_ok=True)
        save_config(config, out / "config.yaml", meta)
    rows: list[dict] = []
    start_epoch = 0
    if state is not None:
        net.load_state_dict(state["net"])
        head.load_state_dict(state["head"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        rows, start_epoch = list(state["rows"]), int(state["epoch"]) + 1
        print(f"pretrain: resuming {out} after epoch {start_epoch}", file=sys.stderr)
    print(
        f"pretrain: {len(ds)} clips of {n_groups} nodules (splits {', '.join(splits)}), "
        f"{config.epochs} epochs, {2 * config.batch_size} views per batch",
        file=sys.stderr,
    )
    b = config.batch_size
    for epoch in range(start_epoch, config.epochs):
        torch.manual_seed(config.seed * 100_003 + epoch * 1_009)
        pairs = epoch_pairs(groups, config.seed, epoch)
        if len(pairs) % b == 1:  # a last batch of one nodule has no negatives
            pairs = pairs[:-1]
        flat = [i for k in range(0, len(pairs), b) for i in _interleave(pairs[k : k + b])]
        loader = DataLoader(
            _Views(ds, flat), batch_size=2 * b, shuffle=False, collate_fn=collate,
            num_workers=config.num_workers, pin_memory=device.type == "cuda",
        )  # fmt: skip
        net.train()
        head.train()
        total, seen, start = 0.0, 0, time.perf_counter()
        bar = tqdm(loader, desc=f"pretrain epoch {epoch + 1}", leave=False)
        for step, batch in enumerate(bar):
            if config.max_train_batches is not None and step >= config.max_train_batches:
                break
            x = batch["x"].to(device)
            idx = batch["index"]
            k = len(idx) // 2
            g = torch.as_tensor(groups[idx.numpy()], device=device)
            v0 = _view_batch(x[:k], idx[:k], config.seed, epoch, 0, len(ds))
            v1 = _view_batch(x[k:], idx[k:], config.seed, epoch, 1, len(ds))
            z = head(pooled(net, torch.cat([v0, v1])))
            loss = nodule_contrastive_loss(z, torch.cat([g[:k], g[k:]]), temperature)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
            seen += len(idx)
            bar.set_postfix(loss=f"{loss.item():.4f}")
        seconds = time.perf_counter() - start
        row = {
            "epoch": epoch + 1,
            "loss": round(total / max(seen, 1), 5),
            "lr": optimizer.param_groups[0]["lr"],
            "clips_per_s": round(seen / max(seconds, 1e-9), 3),
            "seconds": round(seconds, 2),
        }
        scheduler.step()
        rows.append(row)
        _write_log(rows, out / "log.csv")
        runfolder.save_state(
            {
                "epoch": epoch,
                "net": net.state_dict(),
                "head": head.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "rows": rows,
            },
            out / "state" / "last.pt",
        )
        print(json.dumps(row), file=sys.stderr)
    runfolder.save_weights(net, out / "model.safetensors")
    runfolder.record_selected_epoch(out, {"epoch": config.epochs})
    print(
        f"pretrain: wrote {out / 'model.safetensors'} (epoch {config.epochs}); start a classifier "
        f"from it with `thyrovid train WORK --init-from {out} ...`",
        file=sys.stderr,
    )
    return out


def _open(out: Path, config: TrainConfig, meta: dict, resume: bool) -> dict | None:
    """The resume state of the run in `out` (None: a new run); a UserError when it cannot go on."""
    if not (out / "config.yaml").is_file():
        if resume:
            print(f"note: {out} holds no run yet; starting a new one", file=sys.stderr)
        return None
    if not resume:
        raise UserError(f"{out}: already holds a run; pass --resume or choose a new --out")
    if runfolder.finished(out):
        raise UserError(f"{out}: this pretraining run has finished; choose a new --out")
    saved = read_yaml(out / "config.yaml")
    changed = sorted(
        k
        for k, v in config.to_dict().items()
        if k not in runfolder.RESUMABLE_CHANGES - {"epochs"} and saved.get(k) != v
    )
    old = (saved.get("meta") or {}).get("pretrain") or {}
    changed += [k for k in ("splits", "temperature", "clips") if old.get(k) != meta["pretrain"][k]]
    if changed:
        raise UserError(f"{out}: --resume with different {', '.join(changed)}; use a new --out")
    path = out / "state" / "last.pt"
    if not path.is_file():
        print(f"note: {path}: not found (stopped in epoch 1); starting again", file=sys.stderr)
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated file: torch raises many types
        why = " ".join(str(exc).split())[:120] or type(exc).__name__
        raise UserError(f"{path}: corrupt resume state ({why}); use a new --out") from None


def _interleave(chunk: list[tuple[int, int]]) -> list[int]:
    """[a1..ak, p1..pk]: a batch's first half are the anchors, its second half their partners."""
    return [a for a, _ in chunk] + [p for _, p in chunk]


# ---------------------------------------------------------------- command line


def add_arguments(parser) -> None:
    from thyrovid.models.registry import PAPER_ORDER

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = (
        "Labels are never read. --config takes a training config (a run's config.yaml works),\n"
        "so the pretrained network has the shape the classifier will have; --set overrides any\n"
        "of its options (see `thyrovid train --help`). Then:\n"
        "  thyrovid train WORK --config CFG --init-from OUT --out RUN\n"
        "model.safetensors is written at the end only; a run cut short (Ctrl-C, a full disk)\n"
        "continues from its last finished epoch with --resume (same options)."
    )
    parser.add_argument("work", help="work folder written by `thyrovid extract` (clips.csv)")
    parser.add_argument("--out", required=True, help="run folder to write (or resume)")
    parser.add_argument(
        "--resume", action="store_true", help="continue the run in --out from state/last.pt"
    )
    parser.add_argument(
        "--config", help="YAML file of training options (a run's config.yaml works)"
    )
    parser.add_argument(
        "--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
        help="override a training option, e.g. --set width=0.25",
    )  # fmt: skip
    parser.add_argument("--arch", help=f"network: {', '.join(PAPER_ORDER)} (default resnet50)")
    parser.add_argument("--dims", type=int, choices=(2, 3), help="3: clips (default), 2: images")
    parser.add_argument("--width", type=float, help="channel multiplier (1.0 = published network)")
    parser.add_argument("--epochs", type=int, default=10, help="pretraining epochs (default 10)")
    parser.add_argument(
        "--batch-size", type=int, help="nodules per batch, two views each (default: the config's)"
    )
    parser.add_argument("--lr", type=float, help="learning rate (default: the config's)")
    parser.add_argument(
        "--splits",
        default=None,
        help="comma-separated splits whose clips are read (default: the training split)",
    )
    parser.add_argument(
        "--allow-eval-splits",
        action="store_true",
        help=f"allow {', '.join(EVAL_SPLITS)} in --splits (their images, never their labels)",
    )
    parser.add_argument(
        "--temperature", type=float, default=0.2, help="contrastive temperature (default 0.2)"
    )
    add_device_argument(parser, default=None)
    parser.add_argument("--seed", type=int, help="random seed (default 0)")
    parser.add_argument("--num-workers", type=int, help="DataLoader workers")


def run(args) -> int:
    from thyrovid.config import load_config, parse_overrides

    flags = {
        "arch": args.arch,
        "dims": args.dims,
        "width": args.width,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "device": args.device,
        "seed": args.seed,
        "num_workers": args.num_workers,
    }
    overrides = {k: v for k, v in flags.items() if v is not None}
    overrides.update(parse_overrides(args.set))
    overrides["init_from"] = None  # pretraining starts from random weights
    config = load_config(args.config, overrides)
    splits = [s.strip() for s in args.splits.split(",") if s.strip()] if args.splits else None
    out = pretrain(
        args.work, args.out, config, splits, args.temperature, args.allow_eval_splits, args.resume
    )
    print(json.dumps({"run": str(out), "model": str(out / "model.safetensors")}))
    return 0
