"""`thyrovid export RUN [--out model.onnx] [--opset 17] [--check]`: a trained run as ONNX.

Without `--out` the model goes into the run folder, RUN/model.onnx, where `thyrovid predict`
and `serve` find it (`--engine auto`) and run it through onnxruntime without torch.

The exported graph takes raw clip pixels and includes the one normalisation
(`thyrovid.clips.dataset.to_model_input`), so a deployment cannot get it wrong:

    input  "pixels": float32 (B, 1, T, H, W) for a 3D run, (B, 1, H, W) for a 2D run, grey
                     values on the 0..255 scale (a uint8 clip cast to float32), B dynamic
    output "logit":  float32 (B, 1), the malignancy logit
    output "prob":   float32 (B, 1), P(malignant) = sigmoid(logit)

Next to it, `<out>.json` records how to cut the clips (frames, size, expand: the same as
`thyrovid extract` and `thyrovid predict`), the run's decision threshold, the tensor names and
the weights it came from (size, mtime, SHA-256 of model.safetensors: `predict` ignores an
export older than the run's weights).

The graph is traced once, at batch 1 with the batch axis left dynamic, with no gradient graph
kept (parameters frozen, `torch.no_grad`): a full-size 3D network exports in seconds and in a
few times its weights' memory.

Exporter: the TorchScript-based exporter (`torch.onnx.export(..., dynamo=False)`) by default;
it needs only the `onnx` package. `--exporter dynamo` uses the torch.export-based exporter,
which also needs `onnxscript`. `--check` runs onnxruntime on seeded random clips (batch 1 and
3, so the dynamic batch axis is exercised) and compares with PyTorch.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from pathlib import Path

import numpy as np

from thyrovid.errors import UserError
from thyrovid.options import add_work_argument

INSTALL = "pip install thyrovid[onnx]  (onnx, onnxruntime)"
DEFAULT_OPSET = 17


def _require(module: str, why: str, install: str = INSTALL):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise UserError(f"{why} needs the `{module}` package: {install}") from None


def _readable(path: Path) -> None:
    """Give a file the permissions a plain `open(..., "w")` would (temp files start 0600)."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)


def deployable(model, dims: int):
    """Wrap a network: pixels (0..255 float) -> (logit, prob), normalisation included."""
    import torch

    from thyrovid.clips.dataset import to_model_input

    class Deployed(torch.nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, pixels):
            logit = self.net(to_model_input(pixels))
            return logit, torch.sigmoid(logit)

    return Deployed(model).eval()


def _export(wrapped, example, path: Path, opset: int, exporter: str) -> None:
    import torch

    names = {"input_names": ["pixels"], "output_names": ["logit", "prob"]}
    for param in wrapped.parameters():  # no autograd record of the traced forward pass
        param.requires_grad_(False)
    if exporter == "legacy":
        axes = {"pixels": {0: "batch"}, "logit": {0: "batch"}, "prob": {0: "batch"}}
        with warnings.catch_warnings():  # deprecation and constant-folding chatter
            warnings.simplefilter("ignore")
            with torch.no_grad():
                torch.onnx.export(wrapped, (example,), str(path), dynamo=False,
                                  opset_version=opset, dynamic_axes=axes,
                                  do_constant_folding=True, **names)  # fmt: skip
        return
    _require("onnxscript", "--exporter dynamo", "pip install onnxscript (or use --exporter legacy)")
    shapes = {"pixels": {0: torch.export.Dim("batch", min=1, max=1024)}}
    with torch.no_grad():
        program = torch.onnx.export(
            wrapped, (example,), dynamo=True, opset_version=opset, dynamic_shapes=shapes, **names
        )
    program.save(str(path), external_data=False)


def check_onnx(path: str | os.PathLike, wrapped, shape: tuple[int, ...], seed: int = 0) -> dict:
    """Run onnxruntime and PyTorch on seeded random pixel clips (batch 1 and 3).

    Returns:
        dict batches, max_abs_diff_logit, max_rel_diff_logit (|diff| / max(1, |logit|)),
        max_abs_diff_prob, onnxruntime (version).
    """
    import torch

    ort = _require("onnxruntime", "--check")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    gen = torch.Generator().manual_seed(seed)
    diffs = {"logit": 0.0, "prob": 0.0, "rel": 0.0}
    for batch in (1, 3):
        x = torch.randint(0, 256, (batch, *shape), generator=gen).to(torch.float32)
        logit_ort, prob_ort = session.run(["logit", "prob"], {"pixels": x.numpy()})
        with torch.inference_mode():
            logit_pt, prob_pt = (t.cpu().numpy() for t in wrapped(x))
        diffs["logit"] = max(diffs["logit"], float(np.abs(logit_ort - logit_pt).max()))
        diffs["prob"] = max(diffs["prob"], float(np.abs(prob_ort - prob_pt).max()))
        rel = np.abs(logit_ort - logit_pt) / np.maximum(1.0, np.abs(logit_pt))
        diffs["rel"] = max(diffs["rel"], float(rel.max()))
    return {"batches": [1, 3], "max_abs_diff_logit": diffs["logit"],
            "max_rel_diff_logit": diffs["rel"], "max_abs_diff_prob": diffs["prob"],
            "onnxruntime": ort.__version__}  # fmt: skip


def export_onnx(
    run_dir: str | os.PathLike,
    out: str | os.PathLike | None = None,
    opset: int = DEFAULT_OPSET,
    check: bool = False,
    exporter: str = "legacy",
    work_dir: str | os.PathLike | None = None,
) -> dict:
    """Export a run's best weights (eval mode, CPU, float32) to ONNX, atomically.

    Args:
        run_dir: run folder from `thyrovid train`.
        out: the .onnx file to write (and `<out>.json` beside it); default RUN/model.onnx.
        opset: ONNX opset version.
        check: compare onnxruntime with PyTorch on random clips (see `check_onnx`).
        exporter: "legacy" (TorchScript-based, needs onnx) or "dynamo" (needs onnxscript too).
        work_dir: the run's work folder, when the run does not record its extract parameters.

    Returns:
        dict onnx, sidecar, input_shape, opset, exporter, versions, and the check's figures.
    """
    import torch

    from thyrovid.atomic import atomic_path, write_text_atomic
    from thyrovid.runs import (
        ONNX,
        load_run,
        onnx_sidecar,
        run_preprocessing,
        run_threshold,
        weights_fingerprint,
        weights_path,
    )

    if exporter not in ("legacy", "dynamo"):
        raise UserError(f"--exporter must be legacy or dynamo, got {exporter!r}")
    out = Path(run_dir) / ONNX if out is None else Path(out)
    if out.is_dir():
        raise UserError(f"--out {out}: is a folder; give the file to write, e.g. {out}/model.onnx")
    onnx = _require("onnx", "thyrovid export")
    weights = weights_fingerprint(weights_path(run_dir))  # before loading: what is exported
    model, config = load_run(run_dir, device="cpu")
    prep, notes = run_preprocessing(run_dir, config, work_dir)
    dims = int(config.dims)
    shape = (1, prep.frames, prep.size, prep.size) if dims == 3 else (1, prep.size, prep.size)
    wrapped = deployable(model, dims)
    example = torch.zeros((1, *shape), dtype=torch.float32)  # traced once, batch axis dynamic
    with atomic_path(out) as tmp:
        try:
            _export(wrapped, example, tmp, opset, exporter)
            onnx.checker.check_model(str(tmp))
        except (RuntimeError, onnx.checker.ValidationError) as exc:
            if opset == DEFAULT_OPSET:
                raise
            why = (str(exc).strip().splitlines() or ["failed"])[0][:120]
            raise UserError(f"--opset {opset}: no valid ONNX graph ({why}); try the default "
                            f"{DEFAULT_OPSET}") from None  # fmt: skip
        _readable(tmp)
    threshold, source = run_threshold(run_dir)
    sidecar = {
        "run": Path(run_dir).name, "arch": config.arch, "dims": dims,
        "input": {"name": "pixels", "dtype": "float32", "shape": ["batch", *shape],
                  "scale": "grey 0..255 (uint8 values); normalisation is inside the graph"},
        "outputs": {"logit": "malignancy logit (batch, 1)", "prob": "P(malignant) (batch, 1)"},
        "preprocessing": {"frames": prep.frames, "size": prep.size, "expand": prep.expand,
                          "source": prep.source, "notes": notes},
        "threshold": threshold, "threshold_source": source, "opset": opset,
        "weights": weights,
    }  # fmt: skip
    side = onnx_sidecar(out)
    write_text_atomic(side, json.dumps(sidecar, indent=2) + "\n")
    _readable(side)
    result = {"onnx": str(out), "sidecar": str(side), "input_shape": ["batch", *shape],
              "opset": opset, "exporter": exporter, "torch": torch.__version__,
              "onnx_version": onnx.__version__, "bytes": out.stat().st_size}  # fmt: skip
    if check:
        result["check"] = check_onnx(out, wrapped, shape)
    return result


def add_arguments(parser) -> None:
    """The `thyrovid export` arguments."""
    parser.add_argument("run", help="run folder written by `thyrovid train`")
    parser.add_argument(
        "--out", help="ONNX file to write (default RUN/model.onnx: predict and serve use it)"
    )
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET, help="ONNX opset (default 17)")
    parser.add_argument("--check", action="store_true", help="compare onnxruntime with PyTorch")
    parser.add_argument(
        "--atol",
        type=float,
        default=1e-4,
        help="--check fails above this max difference in P(malignant), or in the logit "
        "relative to max(1, |logit|) (default 1e-4); a saturated model's P differs by ~0 "
        "whatever the graph does, so the logit is the figure that says something",
    )
    parser.add_argument(
        "--exporter",
        choices=("legacy", "dynamo"),
        default="legacy",
        help="torch.onnx exporter (default legacy: needs no onnxscript)",
    )
    add_work_argument(parser)


def run(args) -> int:
    """Export; print a JSON summary; exit 1 when --check finds P differing by more than --atol."""
    result = export_onnx(args.run, args.out, args.opset, args.check, args.exporter, args.work)
    print(json.dumps(result, indent=2))
    check = result.get("check", {})
    diff, rel = check.get("max_abs_diff_prob"), check.get("max_rel_diff_logit")
    if diff is None:
        return 0
    print(
        f"check: onnxruntime vs PyTorch: logit differs by at most "
        f"{check['max_abs_diff_logit']:.3g} ({rel:.3g} relative to max(1, |logit|)); "
        f"P(malignant) by {diff:.3g}",
        file=sys.stderr,
    )
    for what, value, unit in (("P(malignant)", diff, ""), ("logit", rel, " (relative)")):
        if not value <= args.atol:  # NaN fails too
            print(
                f"thyrovid export: onnxruntime {what} differs from PyTorch by {value:.3g}{unit}"
                f" > --atol {args.atol:g}",
                file=sys.stderr,
            )
            return 1
    return 0
