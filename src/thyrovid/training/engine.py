"""The epoch engine of `thyrovid train`: one training pass, one validation pass, and their parts.

`Engine` runs an epoch (seeded dropout, per-clip seeded augmentation, AMP with a gradient scaler,
channels-last on CUDA) and gathers validation predictions over ranks; `build_loaders`,
`build_criterion` and `build_scheduler` make the DataLoaders, the BCE loss and the learning-rate
schedule a `TrainConfig` describes; `validation_auroc` is the selection metric.
"""

from __future__ import annotations

import copy
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from thyrovid import distributed as dist
from thyrovid.clips.dataset import BalancedSampler, collate, to_model_input
from thyrovid.config import TrainConfig
from thyrovid.errors import UserError
from thyrovid.training.augment import AugmentParams, augment_batch

__all__ = [
    "Engine",
    "autocast_dtype",
    "build_criterion",
    "build_loaders",
    "build_scheduler",
    "prepare_input",
    "validation_auroc",
]


def autocast_dtype(config: TrainConfig, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of `config.amp` on `device`; None: full float32."""
    if config.amp == "off" or (config.amp == "auto" and device.type != "cuda"):
        return None
    if config.amp == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if config.amp == "bf16" else torch.float16


def prepare_input(x: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    """A model-input batch (B, 1, T, H, W) or (B, 1, H, W), in channels-last layout if asked."""
    if channels_last:
        fmt = torch.channels_last_3d if x.dim() == 5 else torch.channels_last
        x = x.contiguous(memory_format=fmt)
    return x


class WeightEMA:
    """An exponential moving average of a network's weights and buffers (BatchNorm statistics).

    `update(net)` after each optimiser step: every floating-point entry of the state dict moves
    towards the network's by (1 - d), d = min(decay, (1 + n) / (10 + n)) at the n-th update;
    integer entries (BatchNorm's batch counters) are copied. `model` is the averaged network,
    in eval mode, with no gradients.
    """

    def __init__(self, net: nn.Module, decay: float):
        self.decay, self.updates = float(decay), 0
        self.model = copy.deepcopy(net).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, net: nn.Module) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        current = net.state_dict()
        for name, avg in self.model.state_dict().items():
            if avg.dtype.is_floating_point:
                avg.lerp_(current[name].detach(), 1.0 - d)
            else:
                avg.copy_(current[name])

    def state_dict(self) -> dict:
        return {"updates": self.updates, "model": self.model.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.updates = int(state["updates"])
        self.model.load_state_dict(state["model"])


class Engine:
    """What one epoch of training or evaluation needs, bundled."""

    def __init__(self, config, device, net, runner, optimizer, criterion, amp_dtype):
        self.config, self.device, self.net, self.runner = config, device, net, runner
        self.optimizer, self.criterion, self.amp_dtype = optimizer, criterion, amp_dtype
        self.channels_last = config.channels_last and device.type == "cuda"
        self.scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
        self.aug = AugmentParams.from_config(config)
        self.ema = WeightEMA(net, config.ema) if config.ema > 0 else None

    @property
    def scored_net(self) -> nn.Module:
        """The network that validation scores and model.safetensors holds: the EMA when on."""
        return self.ema.model if self.ema is not None else self.net

    def autocast(self):
        return torch.autocast(
            self.device.type,
            dtype=self.amp_dtype or torch.float32,
            enabled=self.amp_dtype is not None,
        )

    def train_epoch(self, loader: DataLoader, epoch: int) -> tuple[float, int, float]:
        """One pass; returns (mean loss over all ranks' clips, clips seen globally, seconds)."""
        cfg = self.config
        rank, _ = dist.world()
        torch.manual_seed(cfg.seed * 100_003 + epoch * 1_009 + rank)  # dropout masks
        self.runner.train()
        total = torch.zeros(2, dtype=torch.float64)
        start = time.perf_counter()
        bar = tqdm(loader, desc=f"epoch {epoch + 1}", disable=not dist.is_main(), leave=False)
        for step, batch in enumerate(bar):
            if cfg.max_train_batches is not None and step >= cfg.max_train_batches:
                break
            x = batch["x"].to(self.device, non_blocking=True)
            y = batch["y"].to(self.device, non_blocking=True)
            if cfg.augment:
                x = augment_batch(x, batch["index"], cfg.seed, epoch, self.aug)
            x = prepare_input(to_model_input(x), self.device, self.channels_last)
            with self.autocast():
                logits = self.runner(x)[:, 0]
            loss = self.criterion(logits.float(), y)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            if self.ema is not None:
                self.ema.update(self.net)
            total += torch.tensor([loss.item() * len(y), len(y)], dtype=torch.float64)
            bar.set_postfix(loss=f"{loss.item():.4f}")
        seconds = time.perf_counter() - start
        parts = dist.gather_objects(total.tolist())
        loss_sum, n = (sum(p[i] for p in parts) for i in (0, 1))
        return loss_sum / max(n, 1), int(n), seconds

    @torch.no_grad()
    def predict(self, loader: DataLoader) -> dict[str, tuple[float, float]]:
        """clip_id -> (P(malignant), BCE loss) for every clip once, gathered over ranks.

        The DistributedSampler pads the last ranks with repeated clips; keeping the first
        prediction per clip_id drops those duplicates.
        """
        net = self.scored_net
        net.eval()
        local = []
        for batch in tqdm(loader, desc="validate", disable=not dist.is_main(), leave=False):
            x = prepare_input(
                to_model_input(batch["x"].to(self.device)), self.device, self.channels_last
            )
            with self.autocast():
                logits = net(x)[:, 0].float().cpu()
            losses = F.binary_cross_entropy_with_logits(logits, batch["y"], reduction="none")
            local += zip(batch["clip_id"], torch.sigmoid(logits).tolist(), losses.tolist())
        out: dict[str, tuple[float, float]] = {}
        for part in dist.gather_objects(local):
            for clip_id, prob, loss in part:
                out.setdefault(clip_id, (prob, loss))
        return out


def validation_auroc(
    clips, preds: dict[str, tuple[float, float]], level: str, patient_vote: str = "mean"
) -> float:
    """AUROC of P(malignant) over clips, or over patients (any-malignant label).

    At the patient level with `patient_vote` "mean" the patient's probability is the mean of
    its clips; with "max" or "noisy-or" a nodule's probability is the mean of its clips and the
    patient's that vote over its nodules, as `evaluate --patient-vote` votes them (clips without
    a nodule_id count as one nodule per patient).
    """
    from thyrovid.stats.roc import auc

    cols = ["clip_id", "patient_id", "label"]
    df = clips[cols + (["nodule_id"] if "nodule_id" in clips.columns else [])].copy()
    df["prob"] = [preds[c][0] for c in df["clip_id"]]
    if level == "patient" and patient_vote == "mean":
        df = df.groupby("patient_id").agg(label=("label", "max"), prob=("prob", "mean"))
    elif level == "patient":
        if "nodule_id" not in df.columns:
            df["nodule_id"] = ""
        df["nodule_id"] = df["nodule_id"].fillna("").astype(str)
        nodules = df.groupby(["patient_id", "nodule_id"]).agg(
            label=("label", "max"), prob=("prob", "mean")
        )
        agg = {"max": "max", "noisy-or": _noisy_or}[patient_vote]
        df = nodules.groupby(level="patient_id").agg(label=("label", "max"), prob=("prob", agg))
    if df["label"].nunique() < 2:
        return float("nan")
    return float(auc(df["label"].to_numpy(), df["prob"].to_numpy()))


def _noisy_or(p) -> float:
    return float(1.0 - np.prod(1.0 - np.asarray(p, np.float64)))


def build_loaders(train_ds, val_ds, config, rank, world_size, device):
    """(train loader, validation loader, train sampler) of this rank; batch_size is global."""
    if config.batch_size % world_size:
        raise UserError(f"batch_size {config.batch_size} is not divisible by {world_size} ranks")
    local = config.batch_size // world_size
    if config.balance == "sampler":
        sampler = BalancedSampler(train_ds.labels, world_size, rank, config.seed)
    else:
        sampler = DistributedSampler(train_ds, world_size, rank, shuffle=True, seed=config.seed)
    common = dict(
        collate_fn=collate,
        num_workers=config.num_workers,
        pin_memory=device.type == "cuda",
        persistent_workers=config.num_workers > 0,
    )
    # A last batch of one clip would break BatchNorm (one value per channel on a 1x1 map).
    drop_last = len(sampler) > local and len(sampler) % local == 1
    train_loader = DataLoader(
        train_ds, batch_size=local, sampler=sampler, drop_last=drop_last, **common
    )
    val_sampler = (
        DistributedSampler(val_ds, world_size, rank, shuffle=False) if len(val_ds) else None
    )
    val_loader = DataLoader(val_ds, batch_size=local, sampler=val_sampler, **common)
    return train_loader, val_loader, sampler


class SmoothedBCE(nn.Module):
    """BCE on logits against targets pulled towards 1/2: y (1 - e) + e / 2."""

    def __init__(self, smoothing: float, pos_weight: torch.Tensor | None = None):
        super().__init__()
        self.smoothing = smoothing
        self.bce = nn.BCEWithLogitsLoss(pos_weight=pos_weight)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.bce(logits, target * (1.0 - self.smoothing) + 0.5 * self.smoothing)


def build_criterion(config: TrainConfig, labels: np.ndarray) -> nn.Module:
    """BCE on logits; with balance=pos_weight, malignant clips weighted n_benign / n_malignant;
    label_smoothing > 0 pulls the targets towards 1/2."""
    pos_weight = None
    if config.balance == "pos_weight":
        n_pos, n_neg = float(labels.sum()), float(len(labels) - labels.sum())
        pos_weight = torch.tensor(n_neg / max(n_pos, 1.0))
    if config.label_smoothing > 0:
        return SmoothedBCE(config.label_smoothing, pos_weight)
    return nn.BCEWithLogitsLoss(pos_weight=pos_weight)


def build_optimizer(config: TrainConfig, params) -> torch.optim.Optimizer:
    """The optimiser of `config.optimizer`: Adam (the paper's), AdamW or SGD (Nesterov, 0.9)."""
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=config.lr, momentum=0.9, nesterov=True, weight_decay=config.weight_decay
        )
    adam = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    return adam(params, lr=config.lr, betas=config.betas, weight_decay=config.weight_decay)


def build_scheduler(config: TrainConfig, optimizer):
    """The learning-rate schedule of `config.schedule` (cosine, or plateau on the selection metric), or None."""
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    if config.schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="max", factor=0.5, patience=5
        )
    return None
