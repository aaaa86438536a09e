"""Bedside prediction: one video, 3 key frames, `thyrovid predict` as a whole process.

For each network (the demo's run: 3D ResNet50 at width 0.25 on 16 x 64 x 64 clips; the
full-size 3D ResNet50 on 32 x 224 x 224 clips with each temporal-stride policy: the bedside
(2,2,2,2,2), (1,2,2,2,2) and the default (1,1,2,2,2)) this script writes a run folder (config.yaml, seeded initial
weights, a metrics.json threshold: the timing does not depend on training), exports it with
`thyrovid export RUN` (wall time and peak RSS of that process), then runs

    python -m thyrovid predict RUN VIDEO --frame a --box .. --frame b .. --frame c .. \\
        --engine onnx|torch --timing --json

in a fresh process per call, engines interleaved, and records the whole-process wall time, its
peak RSS (VmHWM), the per-stage seconds of `--timing`, the probability (both engines must
agree within 1e-4) and which heavy modules the process never loaded. The video is one phantom
DICOM (`thyrovid synth`, 240 x 320). Per network also the forward GFLOPs of one clip
(`torch.utils.flop_counter`) and the model stage's GFLOP/s next to the machine's float32 GEMM
rate (numpy, measured in the same run): how close the model gets to the machine's limit.
Prints JSON. See BENCHMARKS.md, "Bedside prediction".

    python benchmarks/bedside.py [--repeats 3] [--slow-repeats 1] [--only demo full_bedside]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _machine import cpu_model  # benchmarks/_machine.py

RUNS = {  # name: (arch, width, frames, size, temporal strides)
    "demo": ("resnet50", 0.25, 16, 64, (1, 1, 2, 2, 2)),
    "full_bedside": ("resnet50", 1.0, 32, 224, (2, 2, 2, 2, 2)),
    "full_mid": ("resnet50", 1.0, 32, 224, (1, 2, 2, 2, 2)),
    "full_default": ("resnet50", 1.0, 32, 224, (1, 1, 2, 2, 2)),
}
SLOW = {"full_mid", "full_default"}  # --slow-repeats times each (torch takes up to a minute)
ENGINES = ("onnx", "torch")

# Runs a command in this interpreter and reports, on its last line, what it imported.
PROBE = """
import json, runpy, sys
sys.argv = ["thyrovid", *sys.argv[1:]]
code = 0
try:
    runpy.run_module("thyrovid", run_name="__main__")
except SystemExit as exc:
    code = exc.code or 0
heavy = [m for m in ("torch", "pandas") if m in sys.modules]
with open("/proc/self/status") as fh:  # VmHWM: this process's own peak (ru_maxrss would
    hwm = next(int(x.split()[1]) for x in fh if x.startswith("VmHWM"))  # carry the parent's)
print(json.dumps({"rc": code, "loaded": heavy, "peak_kib": hwm}))
"""


def run_process(args: list[str], env: dict) -> dict:
    """Run `python PROBE args` in a fresh process: wall seconds, its peak RSS (VmHWM), what it
    loaded, its stdout (without the probe's line) and stderr."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", PROBE, *args], stdout=out, stderr=err,
                                text=True, env=env)  # fmt: skip
        _, status, _ = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    lines = stdout.strip().splitlines()
    try:
        probe = json.loads(lines[-1])
    except (IndexError, ValueError):
        probe = {"rc": proc.returncode, "loaded": None}
    if probe["rc"] != 0 or proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({proc.returncode}):\n{stderr}")
    return {
        "wall_s": wall,
        "peak_mib": probe["peak_kib"] / 1024,
        "loaded": probe["loaded"],
        "stdout": "\n".join(lines[:-1]),
        "stderr": stderr,
    }


def make_run(folder: Path, arch: str, width: float, frames: int, size: int, strides) -> Path:
    """A run folder as `thyrovid train` writes it, with seeded initial weights."""
    from safetensors.torch import save_file

    from thyrovid.config import TrainConfig, save_config
    from thyrovid.runs import ClipSpec, build_network

    folder.mkdir(parents=True, exist_ok=True)
    config = TrainConfig(
        arch=arch, dims=3, width=width, temporal_strides=tuple(strides), input_frames=frames
    )
    net = build_network(config).eval()
    tensors = {k: v.detach().contiguous() for k, v in net.state_dict().items()}
    save_file(tensors, str(folder / "model.safetensors"))
    meta = {
        "selected_by": "last",
        "input_shape": [1, frames, size, size],
        "extract": ClipSpec(frames, size, 1.5).to_json(),
    }
    save_config(config, folder / "config.yaml", meta)
    threshold = {"value": 0.5, "source": "benchmark (untrained weights)"}
    (folder / "metrics.json").write_text(json.dumps({"threshold": threshold}))
    return folder


def gflops_per_clip(arch: str, width: float, frames: int, size: int, strides) -> float:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from thyrovid.models import build_model

    with torch.device("meta"):
        model = build_model(arch, dims=3, width=width, temporal_strides=tuple(strides)).eval()
        x = torch.empty(1, 1, frames, size, size)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(x)
    return counter.get_total_flops() / 1e9


def gemm_gflops(n: int = 2048, repeats: int = 5) -> float:
    """float32 GEMM GFLOP/s through numpy's BLAS, all cores: the machine's practical limit."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    a @ b
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times) / 1e9


def phantom_video(root: Path) -> tuple[Path, list[int], str]:
    """One phantom DICOM, 3 key frames (25/50/75 % of it) and the box of its nodule."""
    import csv

    from thyrovid.synth.cohort import SynthConfig, synthesize

    synthesize(root, SynthConfig(patients=2, seed=3, workers=1), progress=False)
    with open(root / "cohort.csv", newline="") as fh:
        row = next(csv.DictReader(fh))
    video = root / row["video"]
    from thyrovid.io import open_video

    with open_video(video) as v:
        n = v.info.n_frames
    box = ",".join(str(int(float(row[k]))) for k in ("x0", "y0", "x1", "y1"))
    return video, [n // 4, n // 2, 3 * n // 4], box


def timing_of(stderr: str) -> dict:
    """{stage: seconds} from predict's `timing:` line."""
    line = next(x for x in stderr.splitlines() if x.startswith("timing:"))
    stages = line.split(": ", 2)[2].rsplit(" (", 1)[0]
    out = {}
    for part in stages.split(", "):
        name, value, _ = part.split(" ")
        out[name] = float(value)
    return out


def median_of(rows: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="predict calls per engine")
    parser.add_argument("--slow-repeats", type=int, default=1, help="the same for full_mid/default")
    parser.add_argument("--only", nargs="*", choices=list(RUNS), help="a subset of the runs")
    parser.add_argument("--keep", help="build in this folder and keep it (default: a temp one)")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}  # the machine's
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = os.pathsep.join([src, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    sys.path.insert(0, src)
    names = args.only or list(RUNS)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bedside-") as tmp:
        root = Path(args.keep or tmp)
        video, frames, box = phantom_video(root / "phantom")
        pairs = [a for f in frames for a in ("--frame", str(f), "--box", box)]
        result: dict = {"video": {"frames": frames, "box": box}, "runs": {}}
        for name in names:
            arch, width, t, size, strides = RUNS[name]
            run = make_run(root / name, arch, width, t, size, strides)
            export = run_process(["export", str(run)], env)
            summary = json.loads(export["stdout"])
            gf = gflops_per_clip(arch, width, t, size, strides)
            result["runs"][name] = {
                "arch": arch, "width": width, "clip": [t, size, size],
                "temporal_strides": list(strides), "gflops_per_clip": round(gf, 2),
                "gflops_3_clips": round(3 * gf, 2), "onnx_mib": summary["bytes"] / 2**20,
                "export": {"wall_s": round(export["wall_s"], 2),
                           "peak_mib": round(export["peak_mib"], 1)},
            }  # fmt: skip
            print(json.dumps({name: result["runs"][name]}), file=sys.stderr, flush=True)
        calls: dict[str, dict[str, list]] = {n: {e: [] for e in ENGINES} for n in names}
        for name in names:
            repeats = args.slow_repeats if name in SLOW else args.repeats
            for _ in range(repeats):
                for engine in ENGINES:  # interleaved: both see the same load
                    cmd = ["predict", str(root / name), str(video), *pairs]
                    out = run_process([*cmd, "--engine", engine, "--timing", "--json"], env)
                    answer = json.loads(out["stdout"])
                    row = {"wall_s": out["wall_s"], "peak_mib": out["peak_mib"],
                           "loaded": out["loaded"], "prob": answer["prob"],
                           "decision": answer["decision"], **timing_of(out["stderr"])}  # fmt: skip
                    calls[name][engine].append(row)
                    print(json.dumps({name: {engine: row}}), file=sys.stderr, flush=True)
        gemm = gemm_gflops()
        for name in names:
            entry = result["runs"][name]
            for engine, rows in calls[name].items():
                entry[engine] = {
                    "n": len(rows),
                    "wall_s": round(median_of(rows, "wall_s"), 3),
                    "peak_mib": round(median_of(rows, "peak_mib"), 1),
                    **{f"{k}_s": round(median_of(rows, k), 4)
                       for k in ("load", "read", "crop", "model")},
                    "wall_all_s": [round(r["wall_s"], 3) for r in rows],
                    "loaded": rows[0]["loaded"],
                }  # fmt: skip
                entry[engine]["model_gflop_per_s"] = round(
                    entry["gflops_3_clips"] / entry[engine]["model_s"], 1
                )
            diffs = [abs(a["prob"] - b["prob"]) for a, b in zip(*calls[name].values())]
            entry["max_abs_diff_prob"] = max(diffs)
            entry["same_decision"] = all(
                a["decision"] == b["decision"] for a, b in zip(*calls[name].values())
            )
            entry["onnx_wall_vs_torch"] = round(
                entry["onnx"]["wall_s"] / entry["torch"]["wall_s"], 3
            )
            entry["onnx_model_vs_gemm_rate"] = round(entry["onnx"]["model_gflop_per_s"] / gemm, 3)
    import onnxruntime
    import torch

    result["machine"] = {
        "cpu": cpu_model(),
        "cores": len(os.sched_getaffinity(0)),
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
        "gemm_float32_gflop_per_s": round(gemm, 1),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
