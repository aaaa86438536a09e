"""A run's exported ONNX model (RUN/model.onnx) through onnxruntime: `predict` without torch.

`thyrovid export RUN` writes RUN/model.onnx: raw pixels in (0..255, the normalisation is inside
the graph), logit and P(malignant) out (see `thyrovid.inference.export`). `OnnxModel` runs it
on the CPU with onnxruntime, the session created once per process (`session`) with one thread
per CPU this process may use (`cpu_threads`; OMP_NUM_THREADS, when set, takes precedence).

This module imports numpy and onnxruntime only: no torch, no pandas (`thyrovid predict
--engine onnx` checks it in a subprocess).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from thyrovid.errors import UserError
from thyrovid.inference.views import tta_views

INSTALL = "pip install thyrovid[onnx]  (onnx, onnxruntime)"
# Clips per session.run. One at a time: on 2 cores a full-size 3D ResNet50 takes 1.3 s per clip
# alone but 4.5-6.5 s for a batch of 3 (larger im2col buffers); memory stays one clip's.
BATCH = 1

_SESSIONS: dict[tuple[str, int, int], object] = {}


def cpu_threads() -> int:
    """Threads for onnxruntime: OMP_NUM_THREADS when set, else the CPUs this process may use."""
    value = os.environ.get("OMP_NUM_THREADS", "").strip()
    if value.isdigit() and int(value) >= 1:
        return int(value)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def session(path: str | os.PathLike, threads: int):
    """The onnxruntime session of `path` with `threads` intra-op threads, made once per process.

    A file replaced on disk (another mtime) gets a new session.
    """
    try:
        import onnxruntime as ort
    except ImportError:
        raise UserError(f"the ONNX engine needs the `onnxruntime` package: {INSTALL}") from None
    path = Path(path).resolve()
    key = (str(path), path.stat().st_mtime_ns, int(threads))
    if key not in _SESSIONS:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(threads)
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3  # errors only: no optimizer chatter on stderr
        try:
            _SESSIONS[key] = ort.InferenceSession(
                str(path), opts, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own exception types
            why = (str(exc).strip().splitlines() or ["failed"])[0][:160]
            raise UserError(f"{path}: onnxruntime cannot load it ({why}); export again") from None
    return _SESSIONS[key]


class OnnxModel:
    """An exported run on onnxruntime: uint8 clips (or key-frame images) -> P(malignant).

    Args:
        path: the .onnx file `thyrovid export` wrote.
        shape: the clip shape the run takes, (T, S, S) for a 3D run or (S, S) for a 2D run;
            checked against the graph's input.
        threads: intra-op threads (default `cpu_threads()`).
    """

    def __init__(self, path: str | os.PathLike, shape: tuple[int, ...], threads: int | None = None):
        self.path = Path(path)
        self.threads = int(threads or cpu_threads())
        self.session = session(self.path, self.threads)
        inputs = {i.name: i.shape for i in self.session.get_inputs()}
        outputs = {o.name for o in self.session.get_outputs()}
        if "pixels" not in inputs or "prob" not in outputs:
            raise UserError(
                f"{self.path}: not a `thyrovid export` model (needs input pixels, output prob)"
            )
        graph = list(inputs["pixels"])[2:]  # (batch, 1, *shape); the batch axis is symbolic
        if len(graph) != len(shape) or any(g != s for g, s in zip(graph, shape)):
            raise UserError(
                f"{self.path}: takes clips of {graph}, but the run cuts {list(shape)}; "
                "export the run again (`thyrovid export RUN`)"
            )

    def clip_probs(self, x: np.ndarray, tta: int = 1) -> np.ndarray:
        """uint8 clips (N, T, S, S) or images (N, S, S) -> (N,) float64 P(malignant)."""
        out = []
        for start in range(0, len(x), BATCH):
            part = x[start : start + BATCH, None]
            probs = []
            for view in tta_views(part, tta):
                pixels = np.ascontiguousarray(view, dtype=np.float32)
                (prob,) = self.session.run(["prob"], {"pixels": pixels})
                probs.append(prob[:, 0])
            out.append(np.mean(probs, axis=0))
        return np.concatenate(out).astype(np.float64)
