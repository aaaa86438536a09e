"""CPU-side stages at multi-centre scale: the project's code vs the naive code it replaced.

Each pair runs side by side in one process on the same synthetic input, and the outputs are
checked equal before anything is timed. The naive references are the ones the equality tests
use (tests/test_scale.py). Prints one JSON object: per case the sizes, the median seconds of
each side over --repeats runs, and the speed-up. See BENCHMARKS.md, "Scale".

    .venv/bin/python benchmarks/scale.py                # full sizes (a few minutes on 2 cores)
    .venv/bin/python benchmarks/scale.py --quick        # small sizes, seconds
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from _machine import cpu_model  # benchmarks/_machine.py

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from test_scale import (  # noqa: E402  (the references live with their equality tests)
    naive_consistency_problems,
    naive_video_ids,
)


def median_time(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def pair(name: str, sizes: dict, project, naive, repeats: int, naive_repeats: int | None = None):
    t_new, out_new = median_time(project, repeats)
    t_old, out_old = median_time(naive, naive_repeats or repeats)
    same = _equal(out_new, out_old)
    if not same:
        raise SystemExit(f"{name}: project and naive outputs differ")
    row = {"case": name, **sizes, "project_s": round(t_new, 4), "naive_s": round(t_old, 4)}
    row["speedup"] = round(t_old / t_new, 1) if t_new > 0 else None
    row["same_output"] = same
    print(json.dumps(row), file=sys.stderr)
    return row


def _equal(a, b) -> bool:
    if isinstance(a, pd.DataFrame):
        try:
            pd.testing.assert_frame_equal(a, b)
        except AssertionError:
            return False
        return True
    return a == b


def video_paths(n: int) -> list[str]:
    """n video paths as hospitals export them: the same few file names in every patient folder."""
    return [f"videos/c{k % 7}/P{k // 2:05d}/IMG{k % 2}.dcm" for k in range(n)]


def cohort_rows(n_rows: int, n_patients: int, seed: int = 0) -> pd.DataFrame:
    """read_cohort-like rows: 2 nodules per patient, a few conflicting labels and splits."""
    rng = np.random.default_rng(seed)
    pat = rng.integers(0, n_patients, n_rows)
    nod = rng.integers(0, 2, n_rows)
    label = ((pat * 7 + nod) % 3 == 0).astype(int)
    flip = rng.random(n_rows) < 0.001  # a handful of nodules with two labels
    label[flip] = 1 - label[flip]
    split = np.where(pat % 10 == 0, "test", "")
    split[(rng.random(n_rows) < 0.0005)] = "val"  # and a handful of patients in two splits
    return pd.DataFrame(
        {
            "patient_id": [f"P{p:05d}" for p in pat],
            "nodule_id": [f"N{n}" for n in nod],
            "label": label,
            "split": split,
        },
        index=np.arange(1, n_rows + 1),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke test)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    q = args.quick
    r = 1 if q else args.repeats

    from thyrovid.clips.cache import _is_done_parsed, is_done
    from thyrovid.clips.extract import video_ids
    from thyrovid.cohort.schema import _consistency_problems
    from thyrovid.evaluation.metrics import metrics_from_predictions
    from thyrovid.inference.voting import soft_vote

    rows = []

    # extract planning: pseudonymous video ids (was O(V^2) in the number of distinct videos)
    n_videos = 300 if q else 3000
    paths = video_paths(n_videos)
    rows.append(
        pair("video_ids", {"videos": n_videos}, lambda: video_ids(paths),
             lambda: naive_video_ids(paths), r, 1)
    )  # fmt: skip
    big = video_paths(2000 if q else 20000)
    t_big, _ = median_time(lambda: video_ids(big), r)
    rows.append(
        {"case": "video_ids (project only)", "videos": len(big), "project_s": round(t_big, 4)}
    )

    # read_cohort: one label per nodule, one split per patient
    n_rows, n_pat = (2000, 500) if q else (20000, 5000)
    coh = cohort_rows(n_rows, n_pat)
    rows.append(
        pair("cohort consistency", {"rows": n_rows, "patients": n_pat},
             lambda: _consistency_problems(coh, "cohort.csv"),
             lambda: naive_consistency_problems(coh, "cohort.csv"), r)
    )  # fmt: skip

    # extract rerun: is every clip file complete?
    n_files = 500 if q else 5000
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for i in range(n_files):
            path = Path(tmp) / f"c{i}.npy"
            np.save(path, np.zeros((2, 8, 8), np.uint8))
            files.append(path)
        shape = (2, 8, 8)
        rows.append(
            pair("is_done (clip files)", {"files": n_files},
                 lambda: [is_done(f, shape) for f in files],
                 lambda: [_is_done_parsed(f, shape) for f in files], r)
        )  # fmt: skip

    # soft voting and metrics (no naive baseline: already vectorised; measured for the record)
    n_clips, n_patients = (5000, 500) if q else (50000, 5000)
    rng = np.random.default_rng(0)
    pat = rng.integers(0, n_patients, n_clips)
    nod, vid = rng.integers(1, 3, n_clips), rng.integers(1, 3, n_clips)
    lab = rng.integers(0, 2, n_patients)
    split = np.array(["train", "val", "test", "external"])[rng.integers(0, 4, n_patients)]
    clips = pd.DataFrame(
        {
            "clip_id": [f"c{i}" for i in range(n_clips)],
            "patient_id": [f"P{p:05d}" for p in pat],
            "nodule_id": [f"N{n}" for n in nod],
            "video_id": [f"P{p}_N{n}_v{v}" for p, n, v in zip(pat, nod, vid)],
            "center": "A",
            "split": split[pat],
            "label": lab[pat],
            "prob": rng.random(n_clips),
        }
    )
    t_vote, votes = median_time(lambda: soft_vote(clips), r)
    t_metrics, _ = median_time(lambda: metrics_from_predictions(votes), r)
    rows.append({"case": "soft_vote", "clips": n_clips, "patients": n_patients,
                 "project_s": round(t_vote, 4), "rows_out": len(votes)})  # fmt: skip
    rows.append({"case": "metrics_from_predictions", "rows": len(votes),
                 "project_s": round(t_metrics, 4)})  # fmt: skip

    out = {
        "machine": {
            "cpu": cpu_model(),
            "cores": os.cpu_count(),
            "loadavg": [round(x, 2) for x in os.getloadavg()],
            "python": platform.python_version(),
            "numpy": np.__version__,
            "pandas": pd.__version__,
        },
        "repeats": r,
        "cases": rows,
    }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
