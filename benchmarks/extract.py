"""Benchmark `thyrovid extract` against a naive whole-video pydicom pipeline; prints JSON.

Measures clips per second on two cohorts: the phantom (`thyrovid synth`, 44-72 frames per
video; if that command is missing, the built-in generator with the same lengths) and "long", a
built-in cohort of JPEG-Baseline DICOMs of 300-600 frames (the paper's videos run 44-4,126
frames), 3 key frames per video, for
  - thyrovid extract with 1 and 2 worker processes (fresh work folder each repeat),
  - the naive baseline: per video pydicom `dcmread` + `ds.pixel_array` (every frame decoded),
    then for each key frame crop / grey / resize the window with OpenCV and np.save,
  - a rerun with nothing to do (the cache check).
Medians over --repeats. The 2-worker figures always use the process pool (POOL_MIN_CLIPS=0);
OpenCV runs single-threaded in every contender.
Usage: python benchmarks/extract.py [--patients 20] [--long-patients 8] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _machine import cpu_model  # benchmarks/_machine.py


def fallback_cohort(root: Path, patients: int, lengths=(44, 72), seed: int = 0) -> Path:
    """JPEG-Baseline MONOCHROME2 DICOMs (240x320, `lengths` frames) with a moving blob."""
    import cv2
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGBaseline8Bit, generate_uid

    rng = np.random.default_rng(seed)
    rows = ["patient_id,video,center,label,frame,x0,y0,x1,y1"]
    yy, xx = np.mgrid[0:240, 0:320]
    for p in range(patients):
        n = int(rng.integers(lengths[0], lengths[1] + 1))
        frames = []
        for t in range(n):
            img = 40 + 30 * np.sin(xx / 9 + t / 5) + rng.normal(0, 12, (240, 320))
            img[(xx - 160 - (t % 60)) ** 2 + (yy - 120) ** 2 < 900] += 80
            ok, buf = cv2.imencode(".jpg", np.clip(img, 0, 255).astype(np.uint8))
            frames.append(buf.tobytes())
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.3.1"
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = JPEGBaseline8Bit
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, generate_uid()
        ds.Modality, ds.NumberOfFrames, ds.Rows, ds.Columns = "US", n, 240, 320
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated = ds.BitsStored = 8
        ds.HighBit, ds.PixelRepresentation = 7, 0
        ds.PixelData = encapsulate(frames)
        ds["PixelData"].VR = "OB"
        (root / "videos").mkdir(parents=True, exist_ok=True)
        ds.save_as(root / "videos" / f"P{p:03d}.dcm", enforce_file_format=True)
        for k in sorted(rng.choice(n, size=3, replace=False)):
            rows.append(f"P{p:03d},videos/P{p:03d}.dcm,C{p % 3},{p % 2},{k},130,90,190,150")
    (root / "cohort.csv").write_text("\n".join(rows) + "\n")
    return root / "cohort.csv"


def make_cohort(root: Path, patients: int) -> tuple[Path, str]:
    cmd = [sys.executable, "-m", "thyrovid", "synth", str(root / "phantom"),
           "--patients", str(patients), "--seed", "0"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode == 0 and (root / "phantom" / "cohort.csv").exists():
        return root / "phantom" / "cohort.csv", "thyrovid synth"
    return fallback_cohort(root / "fallback", patients), "built-in JPEG-Baseline, 44-72 frames"


def naive(cohort_csv: Path, out: Path, frames: int, size: int, expand: float) -> int:
    """Whole-video pydicom decode, then crop/resize: the pipeline a script would write."""
    import cv2
    import pandas as pd
    import pydicom

    out.mkdir(parents=True, exist_ok=True)
    cohort = pd.read_csv(cohort_csv)
    n = 0
    for video, grp in cohort.groupby("video"):
        ds = pydicom.dcmread(cohort_csv.parent / video)
        arr = ds.pixel_array
        if arr.ndim == 4:
            arr = cv2.cvtColor(arr.reshape(-1, arr.shape[2], 3), cv2.COLOR_RGB2GRAY).reshape(
                arr.shape[:3]
            )
        for r in grp.itertuples():
            cx, cy = (r.x0 + r.x1) / 2, (r.y0 + r.y1) / 2
            hw, hh = (r.x1 - r.x0) * expand / 2, (r.y1 - r.y0) * expand / 2
            x0, y0 = max(0, int(cx - hw)), max(0, int(cy - hh))
            x1, y1 = min(arr.shape[2], int(cx + hw)), min(arr.shape[1], int(cy + hh))
            first = min(max(r.frame - frames // 2, 0), max(len(arr) - frames, 0))
            idx = np.clip(np.arange(first, first + frames), 0, len(arr) - 1)
            clip = np.stack([cv2.resize(arr[i, y0:y1, x0:x1], (size, size)) for i in idx])
            np.save(out / f"{n}.npy", clip)
            np.save(out / f"{n}_img.npy", clip[frames // 2])
            n += 1
    return n


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    t0 = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - t0, result


def measure(cohort_csv: Path, root: Path, repeats: int, kw: dict) -> dict:
    """Median seconds and clips/s of extract (1 and 2 workers), naive, and a no-op rerun."""
    import pandas as pd

    import thyrovid.clips.extract
    from thyrovid.clips.extract import extract

    thyrovid.clips.extract.POOL_MIN_CLIPS = (
        0  # measure the process pool itself, however small the run
    )

    # warm-up (imports, page cache) so that no contender pays them inside its timing
    extract(cohort_csv, root / "warm", workers=1, **kw)
    naive(cohort_csv, root / "warm_naive", **kw)
    times: dict[str, list[float]] = {"workers_1": [], "workers_2": [], "naive": [], "rerun": []}
    for rep in range(repeats):
        for w in (1, 2):
            seconds, report = timed(extract, cohort_csv, root / f"w{w}_{rep}", workers=w, **kw)
            times[f"workers_{w}"].append(seconds)
        seconds, _ = timed(extract, cohort_csv, root / "w1_0", workers=2, **kw)
        times["rerun"].append(seconds)
        seconds, n_naive = timed(naive, cohort_csv, root / f"naive_{rep}", **kw)
        times["naive"].append(seconds)
    med = {k: statistics.median(v) for k, v in times.items()}
    rate = {k: report.clips / med[k] for k in ("workers_1", "workers_2")}
    rate["naive"] = n_naive / med["naive"]
    return {
        "videos": int(pd.read_csv(cohort_csv)["video"].nunique()),
        "clips": report.clips,
        "clips_per_s": {k: round(v, 1) for k, v in rate.items()},
        "median_s": {k: round(v, 3) for k, v in med.items()},
        "speedup_vs_naive": {
            "workers_1": round(rate["workers_1"] / rate["naive"], 2),
            "workers_2": round(rate["workers_2"] / rate["naive"], 2),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=20)
    parser.add_argument("--long-patients", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--size", type=int, default=224)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import cv2

    cv2.setNumThreads(1)  # one core for "workers_1" and naive; workers_2 uses two processes

    root = Path(tempfile.mkdtemp(prefix="thyrovid-bench-extract-"))
    try:
        cohort_csv, source = make_cohort(root, args.patients)
        kw = {"frames": args.frames, "size": args.size, "expand": 1.5}
        cohorts = {
            "phantom": make_cohort(root, args.patients),
            "long": (
                fallback_cohort(root / "long", args.long_patients, lengths=(300, 600)),
                "built-in JPEG-Baseline, 300-600 frames",
            ),
        }
        result = {"benchmark": "extract", "frames": args.frames, "size": args.size,
                  "repeats": args.repeats}  # fmt: skip
        for name, (cohort_csv, source) in cohorts.items():
            result[name] = {"cohort": source, **measure(cohort_csv, root / name, args.repeats, kw)}
        result["machine"] = {"cpu": cpu_model(), "cores": os.cpu_count(),
                             "python": platform.python_version()}  # fmt: skip
        print(json.dumps(result, indent=2))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
