"""A run's exported ONNX model (RUN/model.onnx) through onnxruntime: `predict` without torch.

`thyrovid export RUN` writes RUN/model.onnx: raw pixels in (0..255, the normalisation is inside
the graph), logit and P(malignant) out (see `thyrovid.inference.export`). `OnnxModel` runs it
on the CPU with onnxruntime, the session created once per process (`session_async`) with one
thread per CPU this process may use (`cpu_threads`; OMP_NUM_THREADS, when set, takes precedence).

This module imports numpy and onnxruntime only: no torch, no pandas (`thyrovid predict
--engine onnx` checks it in a subprocess).
"""

from __future__ import annotations

import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from thyrovid.errors import ModelError, UserError
from thyrovid.inference.views import tta_views

INSTALL = "pip install thyrovid[onnx]  (onnx, onnxruntime)"
# Clips per session.run. One at a time: on 2 cores a full-size 3D ResNet50 takes 1.3 s per clip
# alone but 4.5-6.5 s for a batch of 3 (larger im2col buffers); memory stays one clip's.
BATCH = 1

_SESSIONS: dict[tuple[str, int, int], Future] = {}
_LOADER: ThreadPoolExecutor | None = None


def cpu_threads() -> int:
    """Threads for onnxruntime: OMP_NUM_THREADS when set, else the CPUs this process may use."""
    value = os.environ.get("OMP_NUM_THREADS", "").strip()
    if value.isdigit() and int(value) >= 1:
        return int(value)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _make_session(path: Path, threads: int):
    try:
        import onnxruntime as ort
    except ImportError:
        raise UserError(f"the ONNX engine needs the `onnxruntime` package: {INSTALL}") from None
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(threads)
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3  # errors only: no optimizer chatter on stderr
    try:
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        why = (str(exc).strip().splitlines() or ["failed"])[0][:160]
        raise UserError(f"{path}: onnxruntime cannot load it ({why}); export again") from None


def session_async(path: str | os.PathLike, threads: int) -> Future:
    """Start making the session of `path` in a background thread (once per process).

    onnxruntime builds and optimises the graph without holding the GIL, so the caller can
    import and decode the video meanwhile (a full-size 3D network takes about 0.4 s to load on
    2 cores, about as long as importing pydicom and reading the frames). A file replaced on
    disk (another mtime) gets a new session; one that failed to load is tried again next time.
    """
    global _LOADER
    path = Path(path).resolve()
    key = (str(path), path.stat().st_mtime_ns, int(threads))
    future = _SESSIONS.get(key)
    if future is None or (future.done() and future.exception() is not None):
        if _LOADER is None:
            _LOADER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="onnx-load")
        future = _SESSIONS[key] = _LOADER.submit(_make_session, path, int(threads))
    return future


class OnnxModel:
    """An exported run on onnxruntime: uint8 clips (or key-frame images) -> P(malignant).

    The session is made in the background from construction on (`session_async`); `ready`
    (or the first use of `session`) waits for it and checks the graph.

    Args:
        path: the .onnx file `thyrovid export` wrote.
        shape: the clip shape the run takes, (T, S, S) for a 3D run or (S, S) for a 2D run;
            checked against the graph's input.
        threads: intra-op threads (default `cpu_threads()`).
    """

    def __init__(self, path: str | os.PathLike, shape: tuple[int, ...], threads: int | None = None):
        self.path = Path(path)
        self.shape = tuple(shape)
        self.threads = int(threads or cpu_threads())
        self._future = session_async(self.path, self.threads)
        self._session = None

    def ready(self) -> float:
        """Wait for the background load and check the graph (once); the seconds waited.

        Raises:
            ModelError: onnxruntime cannot load the file, or it is not this run's export.
        """
        if self._session is not None:
            return 0.0
        start = time.perf_counter()
        try:
            sess = self._future.result()
        except UserError as exc:
            raise ModelError(str(exc)) from None
        waited = time.perf_counter() - start
        self._check(sess)
        self._session = sess
        return waited

    @property
    def session(self):
        """The checked onnxruntime session."""
        self.ready()
        return self._session

    def _check(self, sess) -> None:
        inputs = {i.name: i.shape for i in sess.get_inputs()}
        outputs = {o.name for o in sess.get_outputs()}
        if "pixels" not in inputs or "prob" not in outputs:
            raise ModelError(
                f"{self.path}: not a `thyrovid export` model (needs input pixels, output prob)"
            )
        graph = list(inputs["pixels"])[2:]  # (batch, 1, *shape); the batch axis is symbolic
        if len(graph) != len(self.shape) or any(g != s for g, s in zip(graph, self.shape)):
            raise ModelError(
                f"{self.path}: takes clips of {graph}, but the run cuts {list(self.shape)}; "
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
