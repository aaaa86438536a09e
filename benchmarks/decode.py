"""Decode 3 windows of 32 frames from a long JPEG Baseline cine DICOM: thyrovid vs pydicom.

Builds, in a temporary folder, multi-frame DICOMs of N frames (default 1,000 and 3,000) by
re-encapsulating the 120 real JPEG Baseline frames of pydicom-data's
`color3d_jpeg_baseline.dcm` (480x640 YBR_FULL_422 ultrasound) in a loop, with a Basic Offset
Table. Then, each in a fresh subprocess (so peak RSS is its own), it opens the file and gets
frames [s, s+32) for 3 window starts s (at 10%, 50%, 90% of the clip) with:

  (a) pydicom whole-file decode: `dcmread(path).pixel_array`, then slicing the windows;
  (b) pydicom per-frame decode: `pydicom.pixels.iter_pixels(path, indices=...)`;
  (c) thyrovid: `open_video(path).frames(window)` per window;
  (d) bare OpenCV: `cv2.imdecode` of exactly those 96 frames' JPEG bytes, extracted before
      the clock starts (the floor for any libjpeg-turbo decoder; no colour reordering).

Time is wall-clock from opening the file to having all 96 frames (imports excluded); peak
RSS is the child's VmHWM (includes the interpreter and imports, reported separately as
`rss_after_imports_mb`). Variants run interleaved, --repeats times ((a) --whole-repeats times); medians are printed
as JSON, with each variant's mean grey value of the 96 frames (equal values: same frames).

    .venv/bin/python benchmarks/decode.py [--frames 1000 3000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _machine import cpu_model  # benchmarks/_machine.py

WINDOW = 32
VARIANTS = ("a_pydicom_whole", "b_pydicom_per_frame", "c_thyrovid", "d_opencv_bare")


def source_file() -> Path:
    spec = importlib.util.find_spec("data_store")  # the pydicom-data package
    if spec is None or not spec.submodule_search_locations:
        sys.exit("pydicom-data is not installed: pip install pydicom-data")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "color3d_jpeg_baseline.dcm"
    if not path.is_file():
        sys.exit(f"{path} not found")
    return path


def build_long_dicom(dst: Path, n_frames: int) -> Path:
    """Re-encapsulate the source's real frames, cycling, into an n_frames clip with a BOT."""
    import pydicom
    from pydicom.encaps import encapsulate, generate_frames

    ds = pydicom.dcmread(source_file())
    real = list(generate_frames(ds.PixelData, number_of_frames=int(ds.NumberOfFrames)))
    frames = [real[i % len(real)] for i in range(n_frames)]
    ds.PixelData = encapsulate(frames, has_bot=True)
    ds["PixelData"].VR = "OB"
    ds.NumberOfFrames = n_frames
    ds.save_as(dst, enforce_file_format=True)
    return dst


def window_starts(n_frames: int) -> list[int]:
    return [min(int(n_frames * f), n_frames - WINDOW) for f in (0.1, 0.5, 0.9)]


# -- child side: one variant, one run ---------------------------------------------------------
def _rss_mb() -> float:
    """Peak RSS of this process in MB: VmHWM (per address space, so not inherited from the
    parent across fork/exec as ru_maxrss is); ru_maxrss where /proc is missing."""
    try:
        with open("/proc/self/status") as fp:
            for line in fp:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_variant(variant: str, path: str, n_frames: int) -> dict:
    import cv2
    import numpy as np
    import pydicom
    from pydicom.pixels import iter_pixels

    from thyrovid.io import open_video

    cv2.setNumThreads(1)
    windows = [list(range(s, s + WINDOW)) for s in window_starts(n_frames)]
    wanted = [i for w in windows for i in w]
    encoded = None
    if variant == "d_opencv_bare":
        from pydicom.encaps import generate_frames

        with open(path, "rb") as fp:
            ds = pydicom.dcmread(fp)
            keep = set(wanted)
            all_frames = generate_frames(ds.PixelData, number_of_frames=n_frames)
            by_index = {i: f for i, f in enumerate(all_frames) if i in keep}
            encoded = [np.frombuffer(by_index[i], np.uint8) for i in wanted]
            del ds, all_frames, by_index
    rss_before = _rss_mb()
    t0 = time.perf_counter()
    if variant == "a_pydicom_whole":
        arr = pydicom.dcmread(path).pixel_array
        out = [arr[w[0] : w[-1] + 1].copy() for w in windows]
        del arr
    elif variant == "b_pydicom_per_frame":
        out = list(iter_pixels(path, indices=wanted))
    elif variant == "c_thyrovid":
        with open_video(path) as video:
            out = [video.frames(w) for w in windows]
    elif variant == "d_opencv_bare":
        out = [cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) for buf in encoded]
    else:
        raise ValueError(variant)
    seconds = time.perf_counter() - t0
    frames = (
        [f for o in out for f in (o if o.ndim == 4 else [o])]
        if variant != "b_pydicom_per_frame"
        else out
    )
    checksum = float(np.mean([np.mean(f) for f in frames]))  # same frames -> same value
    return {
        "seconds": seconds,
        "peak_rss_mb": _rss_mb(),
        "rss_after_imports_mb": rss_before,
        "checksum": checksum,
    }


def run_child(variant: str, path: Path, n_frames: int) -> dict:
    cmd = [sys.executable, __file__, "--child", variant, str(path), str(n_frames)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure(variants, path: Path, n_frames: int, repeats: int, whole_repeats: int) -> dict:
    """Run the variants interleaved (so load changes on a shared machine hit all alike)."""
    runs: dict[str, list[dict]] = {v: [] for v in variants}
    for r in range(repeats):
        for variant in variants:
            if variant == "a_pydicom_whole" and r >= whole_repeats:
                continue
            runs[variant].append(run_child(variant, path, n_frames))
    summary = {}
    for variant, rs in runs.items():
        summary[variant] = {
            "seconds_median": statistics.median(r["seconds"] for r in rs),
            "seconds_runs": [round(r["seconds"], 4) for r in rs],
            "peak_rss_mb_median": statistics.median(r["peak_rss_mb"] for r in rs),
            "rss_after_imports_mb": statistics.median(r["rss_after_imports_mb"] for r in rs),
            "frames_mean_grey": round(rs[0]["checksum"], 3),
        }
    return summary


def machine() -> dict:
    cpu = cpu_model()
    import cv2
    import pydicom

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "pydicom": pydicom.__version__,
        "opencv": cv2.__version__,
        "load_avg_1min": os.getloadavg()[0],
    }


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        variant, path, n = sys.argv[2], sys.argv[3], int(sys.argv[4])
        print(json.dumps(run_variant(variant, path, n)))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, nargs="+", default=[1000, 3000])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--whole-repeats",
        type=int,
        default=1,
        help="runs of (a), which decodes everything (~1 min, GBs per run)",
    )
    args = parser.parse_args()
    result = {"machine": machine(), "window": WINDOW, "windows": 3, "results": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for k, n in enumerate(args.frames):
            path = build_long_dicom(Path(tmp) / f"long_{n}.dcm", n)
            # The whole-file baselines run on the first (shortest) clip only: they hold it all.
            variants = VARIANTS if k == 0 else ("c_thyrovid", "d_opencv_bare")
            entry = {
                "file_mb": round(path.stat().st_size / 1e6, 1),
                "window_starts": window_starts(n),
            }
            entry.update(measure(variants, path, n, args.repeats, args.whole_repeats))
            result["results"][str(n)] = entry
            path.unlink()
    first = result["results"][str(args.frames[0])]
    c = first["c_thyrovid"]["seconds_median"]
    ratios = {
        "a_over_c_speedup": first["a_pydicom_whole"]["seconds_median"] / c,
        "b_over_c_speedup": first["b_pydicom_per_frame"]["seconds_median"] / c,
        "c_over_d_slowdown": c / first["d_opencv_bare"]["seconds_median"],
        "a_over_c_peak_rss": first["a_pydicom_whole"]["peak_rss_mb_median"]
        / first["c_thyrovid"]["peak_rss_mb_median"],
    }
    if len(args.frames) > 1:
        last = result["results"][str(args.frames[-1])]
        ratios[f"c_peak_rss_{args.frames[-1]}_over_{args.frames[0]}"] = (
            last["c_thyrovid"]["peak_rss_mb_median"] / first["c_thyrovid"]["peak_rss_mb_median"]
        )
    result["ratios"] = {k: round(v, 3) for k, v in ratios.items()}
    result["goals"] = {
        "c_at_least_20x_faster_than_a": ratios["a_over_c_speedup"] >= 20,
        "c_within_1.5x_of_d": ratios["c_over_d_slowdown"] <= 1.5,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
