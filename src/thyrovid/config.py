"""Training configuration: one frozen dataclass whose defaults are the paper's recipe.

The paper trains every network with Adam (lr 1e-3, betas 0.9/0.999), batch 16, 100 epochs and
dropout 0.5. Everything else here is what a careful user adds (best checkpoint by validation
AUROC, early stopping, schedules, class balancing, mixed precision) and is off or neutral by
default. A config is read from YAML, overridden from the command line (`key=value`) and saved,
resolved, as `config.yaml` in the run folder together with the git commit of the code.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from thyrovid.atomic import write_text_atomic
from thyrovid.errors import UserError

SCHEDULES = ("none", "cosine", "plateau")
BALANCES = ("none", "pos_weight", "sampler")
#: How nodules vote for their patient (`train`'s patient-level validation, `evaluate`).
PATIENT_VOTES = ("mean", "max", "noisy-or")
#: The head's global pooling (`thyrovid.models.network`).
POOLS = ("avg", "avgmax")
KEEPS = ("best", "last")
#: The optimiser (`thyrovid.training.train`): the paper's Adam, AdamW or SGD with Nesterov momentum.
OPTIMIZERS = ("adam", "adamw", "sgd")
AMP_MODES = ("auto", "bf16", "fp16", "off")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run.

    Attributes:
        arch: network name from `thyrovid.models.list_models()`.
        dims: 3 for clips (B,1,T,H,W), 2 for key-frame images (B,1,H,W).
        width: channel multiplier of the network (1.0 = the published network).
        dropout: dropout before the classifier (paper: 0.5).
        temporal_strides: per-stage temporal strides of the 3D network.
        attention: add the attention block of `thyrovid.models`.
        pool: the head's global pooling, "avg" (the published networks) or "avgmax" (average and
            maximum over space and time concatenated: a focus seen in a few positions of the
            last feature map is not averaged away).
        input_frames: frames per clip; filled in from the data when the run starts.
        epochs: number of epochs (paper: 100).
        batch_size: GLOBAL batch size over all ranks (paper: 16).
        optimizer: "adam" (the paper's), "adamw" (Adam with the weight decay decoupled from the
            gradient, Loshchilov & Hutter) or "sgd" (momentum 0.9, Nesterov).
        lr: learning rate (paper: 1e-3, Adam).
        betas: Adam betas (paper: 0.9, 0.999).
        weight_decay: weight decay: an L2 term in the gradient for adam and sgd, decoupled for
            adamw (paper: none).
        label_smoothing: the BCE targets become y (1 - e) + e / 2 (paper: 0): the phantom's and a
            cohort's labels are draws, so a clip's label is never certain.
        ema: decay of an exponential moving average of the weights and BatchNorm statistics,
            updated after every optimiser step (0: off, the paper's; 0.999 is usual). When on,
            validation scores the average and model.safetensors holds it; the decay ramps up
            as min(ema, (1 + n) / (10 + n)) over the first n steps, so early weights fade fast
            (over a few hundred steps the ramp, about the last n / 9 steps, sets the window).
        schedule: learning-rate schedule, "none" (paper), "cosine" or "plateau".
        patience: stop after this many evaluations without a better validation AUROC (None: off).
        balance: skewed prevalence handling: "none", "pos_weight" (loss weight n_benign/n_malignant
            on malignant clips) or "sampler" (draw classes equally often, with replacement).
        val_level: "clip" (AUROC over clips) or "patient" (P(malignant) voted per patient first:
            clips -> nodule by their mean, nodules -> patient by `patient_vote`).
        patient_vote: how nodules vote for their patient at val_level "patient": "mean" (the
            paper's soft voting), "max" or "noisy-or" (see `thyrovid.inference.voting`).
        keep: which epoch's weights model.safetensors holds: "best" (the paper's: the epoch of
            best validation AUROC, see `train --help`) or "last" (the final epoch, as nnU-Net
            keeps its final checkpoint; validation is still computed and logged, so the curve
            shows whether the run had levelled off: with a cosine schedule the last epoch is
            the annealed one, and a pick on a few dozen validation patients picks noise).
        seed: seeds the sampler, the augmentation, dropout and the initial weights.
        amp: "auto" (bf16 on CUDA when supported, off on CPU), "bf16", "fp16" or "off".
        channels_last: use channels-last memory format on CUDA.
        compile: wrap the model in torch.compile.
        device: "auto" (CUDA when available), "cpu", "cuda" or "cuda:N".
        num_workers: DataLoader worker processes per rank.
        augment: apply the on-device augmentation to training batches.
        aug_translate: maximal shift, fraction of the image side.
        aug_scale: (min, max) zoom; >1 crops into the image (the paper's random crop).
        aug_rotate: maximal in-plane rotation, degrees.
        aug_brightness: maximal additive brightness change, fraction of full scale.
        aug_contrast: maximal relative contrast change.
        aug_gamma: maximal relative change of the gamma exponent.
        eval_every: validate every this many epochs (and after the last one).
        max_train_batches: stop each epoch after this many batches (tests, benchmarks).
        train_split: split name trained on.
        val_split: split name that selects the best checkpoint.
        tensorboard: also write TensorBoard event files when tensorboard is installed.
        init_from: a run folder whose weights start this run: a 2D run of the same architecture
            and width is inflated to 3D (I3D: each kernel repeated over time / its depth), a run
            of the same dims is loaded as it is (fine-tuning). None: random initialisation.
    """

    arch: str = "resnet50"
    dims: int = 3
    width: float = 1.0
    dropout: float = 0.5
    temporal_strides: tuple[int, ...] = (1, 1, 2, 2, 2)
    attention: bool = False
    pool: str = "avg"
    input_frames: int | None = None
    epochs: int = 100
    batch_size: int = 16
    optimizer: str = "adam"
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    label_smoothing: float = 0.0
    ema: float = 0.0
    schedule: str = "none"
    patience: int | None = None
    balance: str = "none"
    val_level: str = "clip"
    patient_vote: str = "mean"
    keep: str = "best"
    seed: int = 0
    amp: str = "auto"
    channels_last: bool = True
    compile: bool = False
    device: str = "auto"
    num_workers: int = 2
    augment: bool = True
    aug_translate: float = 0.1
    aug_scale: tuple[float, float] = (0.9, 1.2)
    aug_rotate: float = 15.0
    aug_brightness: float = 0.1
    aug_contrast: float = 0.2
    aug_gamma: float = 0.2
    eval_every: int = 1
    max_train_batches: int | None = None
    train_split: str = "train"
    val_split: str = "val"
    tensorboard: bool = True
    init_from: str | None = None

    def __post_init__(self) -> None:
        checks = [
            (self.dims in (2, 3), "dims must be 2 or 3"),
            (self.epochs >= 1, "epochs must be >= 1"),
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (self.lr > 0, "lr must be > 0"),
            (0.0 <= self.dropout < 1.0, "dropout must be in [0, 1)"),
            (self.width > 0, "width must be > 0"),
            (self.schedule in SCHEDULES, f"schedule must be one of {SCHEDULES}"),
            (self.balance in BALANCES, f"balance must be one of {BALANCES}"),
            (self.amp in AMP_MODES, f"amp must be one of {AMP_MODES}"),
            (self.val_level in ("clip", "patient"), "val_level must be clip or patient"),
            (self.pool in POOLS, f"pool must be one of {', '.join(POOLS)}"),
            (self.keep in KEEPS, f"keep must be one of {', '.join(KEEPS)}"),
            (self.optimizer in OPTIMIZERS, f"optimizer must be one of {', '.join(OPTIMIZERS)}"),
            (self.weight_decay >= 0, "weight_decay must be >= 0"),
            (0.0 <= self.label_smoothing < 1.0, "label_smoothing must be in [0, 1)"),
            (0.0 <= self.ema < 1.0, "ema must be in [0, 1) (0: off)"),
            (
                self.patient_vote in PATIENT_VOTES,
                f"patient_vote must be one of {', '.join(PATIENT_VOTES)}",
            ),
            (self.patience is None or self.patience >= 1, "patience must be >= 1 or None"),
            (self.eval_every >= 1, "eval_every must be >= 1"),
            (
                self.max_train_batches is None or self.max_train_batches >= 1,
                "max_train_batches must be >= 1 or None",
            ),
            (self.num_workers >= 0, "num_workers must be >= 0"),
            (len(self.aug_scale) == 2 and 0 < self.aug_scale[0] <= self.aug_scale[1], "aug_scale"),
        ]
        for ok, message in checks:
            if not ok:
                raise UserError(f"training config: {message}")

    def to_dict(self) -> dict[str, Any]:
        """Plain YAML-friendly dict (tuples become lists)."""
        out = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], source: str = "config") -> TrainConfig:
        """Build from a mapping; unknown keys are a UserError, lists become tuples."""
        return cls(**coerce_values(values, source))

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with some fields changed (validated like the original)."""
        return dataclasses.replace(self, **changes)


def coerce_values(values: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Check option names (suggesting the closest for a typo) and convert values to their types."""
    known = {f.name: f for f in fields(TrainConfig)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        names = []
        for name in unknown:
            close = difflib.get_close_matches(name, known, n=1)
            names.append(f"{name} (did you mean {close[0]}?)" if close else name)
        raise UserError(f"{source}: unknown training option(s) {', '.join(names)}")
    return {k: _coerce(known[k], v, source) for k, v in values.items()}


def _coerce(field: dataclasses.Field, value: Any, source: str) -> Any:
    """Convert a YAML/CLI value to the field's type (lists -> tuples, '16' -> 16, 'none' -> None)."""
    kind = str(field.type)
    if value is None or (isinstance(value, str) and value.lower() in ("null", "~")):
        if "None" in kind:
            return None
        raise UserError(f"{source}: {field.name} cannot be empty")
    if isinstance(value, str) and "None" in kind and value.lower() == "none" and "str" not in kind:
        return None
    try:
        if kind.startswith("tuple"):
            if isinstance(value, str):
                value = yaml.safe_load(value if value.startswith("[") else f"[{value}]")
            item = float if "float" in kind else int
            return tuple(item(v) for v in value)
        if kind.startswith("bool"):
            if isinstance(value, str):
                if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(value)
                return value.lower() in ("true", "1", "yes")
            return bool(value)
        if kind.startswith("int"):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)
        if kind.startswith("float"):
            return float(value)
        return str(value)
    except (TypeError, ValueError) as exc:
        raise UserError(f"{source}: {field.name}={value!r} is not a valid {kind}") from exc


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """Parse `key=value` strings from the command line (value parsed as YAML scalar/list)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--set {item!r}: expected key=value, e.g. --set lr=3e-4")
        out[key.strip()] = yaml.safe_load(raw) if raw.strip() else None
    return out


def load_config(
    path: str | os.PathLike | None = None, overrides: Mapping[str, Any] | None = None
) -> TrainConfig:
    """Defaults < YAML file < overrides.

    Args:
        path: YAML file with a mapping of TrainConfig fields (a saved `config.yaml` works:
            its `meta` section is ignored).
        overrides: field -> value, applied last.
    """
    values: dict[str, Any] = {}
    if path is not None:
        from_file = read_yaml(path)
        from_file.pop("meta", None)
        values.update(coerce_values(from_file, str(path)))
    values.update(coerce_values(overrides or {}, "--set"))
    return TrainConfig(**values)


def read_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML mapping; missing or malformed files are a UserError."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from exc
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping of option: value")
    return data


def git_sha() -> str | None:
    """The commit of the code that runs (None outside a git checkout)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def save_config(config: TrainConfig, path: str | os.PathLike, meta: Mapping[str, Any]) -> None:
    """Write the resolved config plus a `meta` section (git sha, version, data shape) atomically."""
    from thyrovid import __version__

    path = Path(path)
    doc = config.to_dict()
    doc["meta"] = {"thyrovid_version": __version__, "git_sha": git_sha(), **dict(meta)}
    write_text_atomic(path, yaml.safe_dump(doc, sort_keys=False))
