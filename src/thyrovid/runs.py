"""The one reader of a run folder (`thyrovid train --out`) and of a work folder (`extract --out`).

Every stage after training reads a run through this module:

- `load_run`: config.yaml + model.safetensors -> (network in eval mode, TrainConfig);
  `build_network` is the network a config describes (training starts from it too);
  `read_config` is the TrainConfig alone (no torch: the ONNX engine of `predict` uses it);
- `work_dir` / `find_work_dir`: the work folder a run was trained on (config.yaml
  ``meta.work_dir``, relative paths against the run folder);
- `ClipSpec`: how clips are cut (frames, size, box expansion), the one description that
  `extract` writes to WORK/extract.json (`read_extract_json`), that training records in
  ``meta.extract`` and that `run_preprocessing` finds again for predict and export;
- `run_threshold` / `require_threshold`: the decision threshold that `thyrovid evaluate` chose,
  RUN/metrics.json ``threshold.value``, range-checked by `check_threshold` (as every
  ``--threshold`` is); there is no fallback value: a caller without one says so;
- `display_name`: "3D ResNet50" from a run's config;
- `run_onnx`: RUN/model.onnx when `thyrovid export` wrote it from the weights the run holds now
  (its sidecar records `weights_fingerprint` of model.safetensors), else None and why.

Nothing here imports a stage: this module stands right above the config, the models and io.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from thyrovid.config import TrainConfig, read_yaml
from thyrovid.errors import UserError

EXTRACT_FORMAT = 1  # WORK/extract.json "format"
WEIGHTS = "model.safetensors"  # RUN/: the selected weights
ONNX = "model.onnx"  # RUN/: written by `thyrovid export RUN`, with RUN/model.onnx.json beside it
DISPLAY_NAMES = {
    "inception_resnet_v2": "InceptionResNetV2",
    "xception": "Xception",
    "inception_v3": "InceptionV3",
    "densenet121": "DenseNet121",
    "resnet50": "ResNet50",
}


# ---------------------------------------------------------------- how clips are cut


@dataclass(frozen=True)
class ClipSpec:
    """How clips are cut around a key frame; the defaults are the paper's.

    Attributes:
        frames: clip length T (frames).
        size: clip height = width (pixels).
        expand: box expansion about its centre.
    """

    frames: int = 32
    size: int = 224
    expand: float = 1.5

    def check(self) -> ClipSpec:
        """This spec, or a UserError when a value is out of range."""
        if self.frames < 1 or self.size < 1 or not self.expand > 0:
            raise UserError(
                f"need frames >= 1, size >= 1, expand > 0 "
                f"(got {self.frames}, {self.size}, {self.expand})"
            )
        return self

    def to_json(self) -> dict:
        """The content of WORK/extract.json."""
        return {
            "frames": self.frames,
            "size": self.size,
            "expand": self.expand,
            "format": EXTRACT_FORMAT,
        }


@dataclass(frozen=True)
class Preprocessing(ClipSpec):
    """The ClipSpec of a run, with its dims and where the values were found.

    Attributes:
        dims: 3 (clip (T, size, size)) or 2 (key-frame image (size, size)).
        source: where the values come from (for the user).
    """

    dims: int = 3
    source: str = ""


def read_extract_json(work: str | os.PathLike) -> dict | None:
    """WORK/extract.json as written by `extract` (None when there is none; bad JSON: UserError)."""
    path = Path(work) / "extract.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError as exc:
        raise UserError(f"{path}: not valid JSON ({exc})") from None


# ---------------------------------------------------------------- config, work folder


def run_meta(run_dir: str | os.PathLike) -> dict:
    """config.yaml's ``meta`` section (input shape, work folder, extract parameters, ...)."""
    return read_yaml(Path(run_dir) / "config.yaml").get("meta") or {}


def input_shape(run_dir: str | os.PathLike) -> tuple[int, ...] | None:
    """The (T, H, W) / (H, W) of the clips a run was trained on (config.yaml meta), if known."""
    shape = run_meta(run_dir).get("input_shape")
    return tuple(shape[1:]) if shape else None


def _recorded_work(doc: dict, metrics: dict | None = None) -> list[Path]:
    """The work folders a run records, in order: config meta.work_dir, work_dir, metrics.json."""
    meta = doc.get("meta") or {}
    found = [meta.get("work_dir"), doc.get("work_dir"), (metrics or {}).get("work_dir")]
    return [Path(str(w)) for w in found if w]


def find_work_dir(
    run_dir: str | os.PathLike,
    doc: dict,
    metrics: dict | None = None,
    marker: str = "clips.csv",
    search: bool = False,
) -> Path | None:
    """The first recorded work folder (see `_recorded_work`) that holds `marker`, else None.

    A relative path is taken from the run folder; with `search` also from its parents and the
    current folder (a report over copied folders), and the folder found is resolved.
    """
    run_dir = Path(run_dir)
    for w in _recorded_work(doc, metrics):
        if w.is_absolute():
            here = [w]
        elif search:
            here = [run_dir / w, run_dir.parent / w, run_dir.parent.parent / w, Path.cwd() / w]
        else:
            here = [run_dir / w]
        for cand in here:
            if (cand / marker).is_file():
                return cand.resolve() if search else cand
    return None


def work_dir(run_dir: str | os.PathLike) -> Path:
    """The work folder recorded in RUN/config.yaml (``meta.work_dir`` or ``work_dir``)."""
    run_dir = Path(run_dir)
    cfg_path = run_dir / "config.yaml"
    if not cfg_path.is_file():
        raise UserError(
            f"{cfg_path}: not found; is {run_dir} a run folder written by `thyrovid train`?"
        )
    doc = read_yaml(cfg_path)
    recorded = _recorded_work(doc)[:1]  # the config's own record, as `thyrovid train` wrote it
    if not recorded:
        raise UserError(f"{cfg_path}: no work_dir recorded; pass --work WORK")
    work = recorded[0] if recorded[0].is_absolute() else (run_dir / recorded[0]).resolve()
    if not (work / "clips.csv").is_file():
        raise UserError(
            f"{work}/clips.csv: not found; the work folder recorded in {cfg_path} has moved "
            "or gone: pass --work WORK"
        )
    return work


def display_name(doc: dict) -> str | None:
    """ "3D ResNet50" from a run's config (arch, dims); None when it records no architecture."""
    arch = doc.get("arch")
    if not arch:
        return None
    dims = doc.get("dims")
    pretty = DISPLAY_NAMES.get(str(arch), str(arch))
    return f"{dims}D {pretty}" if dims else pretty


# ---------------------------------------------------------------- network and weights


def build_network(config: TrainConfig):
    """The network a config describes, freshly initialised from `config.seed`."""
    import torch

    from thyrovid.models import build_model

    torch.manual_seed(config.seed)
    return build_model(
        config.arch,
        dims=config.dims,
        in_channels=1,
        num_classes=1,
        width=config.width,
        dropout=config.dropout,
        temporal_strides=config.temporal_strides,
        attention=config.attention,
        input_frames=config.input_frames,
        pool=config.pool,
    )


def weights_path(run_dir: str | os.PathLike) -> Path:
    """RUN/model.safetensors of a finished run; a UserError saying why when there is none."""
    run_dir = Path(run_dir)
    weights = run_dir / WEIGHTS
    if not weights.is_file() and (run_dir / "config.yaml").is_file():
        raise UserError(
            f"{weights}: not found; the run stopped before its first epoch ended: "
            f"continue it with `thyrovid train WORK --out {run_dir} --resume`"
        )
    if not weights.is_file():
        raise UserError(f"{weights}: not found; is {run_dir} a finished `thyrovid train` run?")
    return weights


def read_config(run_dir: str | os.PathLike, classifier: bool = True) -> TrainConfig:
    """The TrainConfig of a finished run (config.yaml without meta); imports no torch.

    With `classifier` (every stage that predicts), a `thyrovid pretrain` run is refused: its
    classification layer was never trained.
    """
    run_dir = Path(run_dir)
    weights_path(run_dir)
    values = read_yaml(run_dir / "config.yaml")
    meta = values.pop("meta", None) or {}
    if classifier and meta.get("selected_by") == "pretrain":
        raise UserError(
            f"{run_dir}: a `thyrovid pretrain` run; its network has no trained classifier. "
            f"Train one from it: thyrovid train WORK --init-from {run_dir} --out RUN"
        )
    return TrainConfig.from_dict(values, source=str(run_dir / "config.yaml"))


def load_run(run_dir: str | os.PathLike, device="cpu", classifier: bool = True):
    """Rebuild a trained network from config.yaml + model.safetensors (never unpickles).

    `classifier=False` also loads a `thyrovid pretrain` run (to start training from it).

    Returns:
        (model in eval mode on `device`, TrainConfig). The model maps to_model_input(x) with x
        (B,1,T,H,W) or (B,1,H,W) to (B,1) logits of P(malignant).
    """

    run_dir = Path(run_dir)
    weights = weights_path(run_dir)
    config = read_config(run_dir, classifier=classifier)
    try:
        model = build_network(config)
    except (ValueError, TypeError, KeyError) as exc:
        raise UserError(
            f"{run_dir / 'config.yaml'}: describes no network this version builds "
            f"({_one_line(exc)}); restore the run's own config.yaml"
        ) from None
    state = _read_weights(weights)
    _check_weights(state, model.state_dict(), weights, config)
    model.load_state_dict(state)
    return model.to(device).eval(), config


def _one_line(exc: BaseException, limit: int = 160) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _read_weights(weights: Path) -> dict:
    """model.safetensors as tensors; an empty, truncated or corrupt file is one line."""
    from safetensors.torch import load_file

    if weights.stat().st_size == 0:
        raise UserError(f"{weights}: empty file; copy the run's weights again or retrain")
    try:
        return load_file(str(weights))
    except Exception as exc:  # safetensors raises its own error types on a damaged header
        raise UserError(
            f"{weights}: not a readable safetensors file ({_one_line(exc)}); the weights are "
            "damaged or truncated: copy them again or retrain"
        ) from None


def _check_weights(state: dict, expected: dict, weights: Path, config) -> None:
    """The weights fit the network config.yaml describes, or one line says how they do not."""
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shape = [
        k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)
    ]
    if missing or unexpected or shape:
        what = f"{config.arch} {config.dims}D width {config.width:g}"
        raise UserError(
            f"{weights}: does not fit the network its config.yaml describes ({what}): "
            f"{len(missing)} missing, {len(unexpected)} unexpected and {len(shape)} mis-shaped "
            "tensors; config.yaml and model.safetensors come from different runs"
        )


def run_preprocessing(
    run_dir: str | os.PathLike,
    config,
    work_dir: str | os.PathLike | None = None,
    expand: float | None = None,
) -> tuple[Preprocessing, list[str]]:
    """The extract parameters of a run, and notes on how they were found.

    Looked up in this order: `work_dir`/extract.json (given by the user); config.yaml
    `meta.extract` ({frames, size, expand}); config.yaml `meta.work_dir`/extract.json; else
    frames and size from `meta.input_shape` and expand = 1.5 (extract's default), with a note.
    `expand` overrides the expansion found. The frames and size must match the network input.

    Returns:
        (Preprocessing, notes: list of one-line remarks for the user).
    """
    run_dir = Path(run_dir)
    doc = read_yaml(run_dir / "config.yaml")
    meta = doc.get("meta") or {}
    shape = list(meta.get("input_shape") or [])
    default = ClipSpec().expand
    notes: list[str] = []
    params, source = None, None
    if work_dir is not None:
        params = read_extract_json(work_dir)
        if params is None:
            raise UserError(f"{Path(work_dir) / 'extract.json'}: not found; is it a work folder?")
        source = f"{Path(work_dir) / 'extract.json'}"
    elif isinstance(meta.get("extract"), dict):
        params, source = meta["extract"], f"{run_dir / 'config.yaml'} meta.extract"
    else:
        work = find_work_dir(run_dir, {"meta": meta}, marker="extract.json")
        params = read_extract_json(work) if work is not None else None
        source = f"{work / 'extract.json'}" if params else None
    if params is None:
        if not shape:
            raise UserError(
                f"{run_dir / 'config.yaml'}: records neither the extract parameters nor the "
                "input shape; pass --work WORK (the folder the run was trained on)"
            )
        params = {"frames": shape[1] if len(shape) == 4 else 1, "size": shape[-1]}
        source = f"{run_dir / 'config.yaml'} meta.input_shape"
        notes.append(
            f"the run does not record its box expansion; assuming {default} "
            "(pass --expand or --work WORK if it was extracted otherwise)"
        )
    dims = int(config.dims)
    frames = int(params.get("frames", config.input_frames or 0))
    size = int(params["size"])
    value = float(expand if expand is not None else params.get("expand", default))
    if not value > 0:
        raise UserError(f"--expand must be > 0, got {value}")
    if expand is not None:
        source += f"; expand {value} from --expand"
    if shape and (shape[-1] != size or (dims == 3 and len(shape) == 4 and shape[1] != frames)):
        raise UserError(
            f"{source}: frames={frames}, size={size} do not match the network input "
            f"{shape} of {run_dir}; pass the work folder it was trained on with --work"
        )
    if dims == 3 and config.input_frames and int(config.input_frames) != frames:
        raise UserError(f"{source}: frames={frames} but the run expects {config.input_frames}")
    return Preprocessing(frames, size, value, dims, source), notes


# ---------------------------------------------------------------- the exported ONNX model


def weights_fingerprint(path: str | os.PathLike, digest: bool = True) -> dict:
    """What identifies a weights file: its size, mtime and (with `digest`) its SHA-256."""
    path = Path(path)
    stat = path.stat()
    out = {"file": path.name, "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    if digest:
        sha = hashlib.sha256()
        with open(path, "rb") as fh:
            while block := fh.read(1 << 22):
                sha.update(block)
        out["sha256"] = sha.hexdigest()
    return out


def onnx_sidecar(onnx_path: str | os.PathLike) -> Path:
    """The JSON file `thyrovid export` writes beside an ONNX model: `<name>.json`."""
    onnx_path = Path(onnx_path)
    return onnx_path.with_name(onnx_path.name + ".json")


def run_onnx(run_dir: str | os.PathLike) -> tuple[Path | None, str]:
    """RUN/model.onnx if it was exported from RUN/model.safetensors as it is now, and why not.

    Fresh when the sidecar's recorded weights have the size and mtime of model.safetensors, or
    else (a copied run folder) the same SHA-256. Returns (path, "") or (None, one line).
    """
    run_dir = Path(run_dir)
    path, side = run_dir / ONNX, onnx_sidecar(run_dir / ONNX)
    export = f"run `thyrovid export {run_dir}`"
    if not path.is_file():
        return None, f"{path}: not found; {export} to write it"
    try:
        recorded = json.loads(side.read_text()).get("weights") or {}
    except (OSError, ValueError, AttributeError):
        return None, f"{side}: missing or not readable JSON; {export} again"
    weights = weights_path(run_dir)
    now = weights_fingerprint(weights, digest=False)
    if all(recorded.get(k) == now[k] for k in ("bytes", "mtime_ns")):
        return path, ""
    if recorded.get("bytes") == now["bytes"] and recorded.get("sha256"):
        if weights_fingerprint(weights)["sha256"] == recorded["sha256"]:
            return path, ""
    return None, f"{path} was exported from other weights than {weights}; {export} again"


# ---------------------------------------------------------------- the decision threshold


def check_threshold(value: float, option: str = "--threshold") -> float:
    """`value` as a float when it lies in [0, 1], else a UserError naming `option`."""
    if not 0.0 <= value <= 1.0:
        raise UserError(f"{option} must be in [0, 1], got {value}")
    return float(value)


def run_threshold(run_dir: str | os.PathLike) -> tuple[float | None, str]:
    """The run's decision threshold on P(malignant) from RUN/metrics.json, and its source.

    The threshold is the one `thyrovid evaluate` chose (``threshold.value``). Without one the
    value is None and the source says why, in one line; no default value is made up.
    """
    path = Path(run_dir) / "metrics.json"
    if not path.is_file():
        return None, f"no threshold: {path} not found (run `thyrovid evaluate`, or --threshold)"
    try:
        doc = json.loads(path.read_text())
    except (ValueError, OSError) as exc:
        return None, f"no threshold: {path} is not readable JSON ({exc}); rerun `thyrovid evaluate`"
    try:
        block = doc.get("threshold") or {}
        value = float(block["value"])
    except (ValueError, KeyError, TypeError, AttributeError):
        return None, f"no threshold: {path} has no threshold.value"
    if not 0.0 <= value <= 1.0:
        return None, f"no threshold: {path} threshold.value {value} is not in [0, 1]"
    return value, f"{path.name}: {block.get('source', 'evaluate')}"


def require_threshold(run_dir: str | os.PathLike) -> tuple[float, str]:
    """`run_threshold`, or a UserError saying why the run has none."""
    value, source = run_threshold(run_dir)
    if value is None:
        raise UserError(source)
    return value, source


# ---------------------------------------------------------------- the training log


def training_log(run_dir: str | os.PathLike) -> list[dict]:
    """RUN/log.csv (one dict of strings per epoch, as `thyrovid train` wrote it); [] without."""
    import csv

    path = Path(run_dir) / "log.csv"
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def threshold_band(run_dir: str | os.PathLike) -> dict | None:
    """RUN/metrics.json ``threshold.band`` (the bootstrap band of the threshold), or None."""
    path = Path(run_dir) / "metrics.json"
    try:
        band = (json.loads(path.read_text()).get("threshold") or {}).get("band")
    except (ValueError, OSError, AttributeError):
        return None
    if isinstance(band, dict) and {"low", "high"} <= set(band):
        return band
    return None


def run_warnings(run_dir: str | os.PathLike) -> list[dict]:
    """RUN/metrics.json ``warnings`` (what makes the run's numbers unreliable), or []."""
    path = Path(run_dir) / "metrics.json"
    try:
        items = json.loads(path.read_text()).get("warnings") or []
    except (ValueError, OSError, AttributeError):
        return []
    return [w for w in items if isinstance(w, dict) and "message" in w]
