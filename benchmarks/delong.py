"""Benchmark: fast DeLong (Sun & Xu 2014) vs the O(m n) placement formula vs scikit-learn.

    python benchmarks/delong.py [--n 1000000] [--k 3] [--repeats 5] [--slow-seconds 10]

Measures, on ONE thread (BLAS/OpenMP pools limited to 1):
  1. thyrovid.stats.roc.delong on n cases x k models (AUCs + k x k covariance);
  2. the O(m n) definition (roc.delong_slow) on the largest n it finishes in about
     --slow-seconds, and the fast one on the same n; the slow time extrapolated (x n^2) to --n;
  3. sklearn.metrics.roc_auc_score for the k AUCs alone vs thyrovid.stats.roc.auc.
Scores are float32 probabilities (as a network outputs them, so with ties), prevalence 0.3.
Prints JSON: medians of wall and CPU (process) seconds, ratios, agreement, the machine.
Ratios and the goal use CPU seconds of the one thread: on a shared, loaded machine the wall
time also counts the time other processes hold the core (compare load_avg_1min with cores).
"""

from __future__ import annotations

import os

from _machine import cpu_model  # benchmarks/_machine.py

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import sklearn  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from thyrovid.stats import roc  # noqa: E402


def make_data(n: int, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(n,) bool truth and (k, n) float32-valued probabilities, correlated across models."""
    rng = np.random.default_rng(seed)
    truth = rng.random(n) < 0.3
    shared = rng.normal(size=n)
    logits = 1.2 * truth + 0.7 * shared + 0.7 * rng.normal(size=(k, n))
    probs = (1.0 / (1.0 + np.exp(-logits))).astype(np.float32).astype(np.float64)
    return truth, probs


def timed(fn, repeats: int) -> dict:
    """Median wall and CPU seconds of fn() over repeats; the last result is kept."""
    walls, cpus = [], []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        result = fn()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return {"wall_s": float(np.median(walls)), "cpu_s": float(np.median(cpus)), "_r": result}


def largest_slow_n(k: int, budget_s: float) -> tuple[int, dict]:
    """Grow n until the O(m n) formula on k models would exceed budget_s; run it there."""
    n, t = 500, 0.0
    while True:
        truth, probs = make_data(n, k, seed=1)
        t = timed(lambda: roc.delong_slow(truth, probs), 1)["cpu_s"]  # noqa: B023
        if t > budget_s / 8:
            break
        n *= 2
    n_final = int(n * np.sqrt(budget_s / t) * 0.95)
    truth, probs = make_data(n_final, k, seed=1)
    slow = timed(lambda: roc.delong_slow(truth, probs), 1)
    fast = timed(lambda: roc.delong(truth, probs), 3)
    diff = float(np.max(np.abs(slow["_r"].cov - fast["_r"].cov)))
    return n_final, {"slow": slow, "fast": fast, "max_abs_cov_diff": diff}


def _clean(t: dict) -> dict:
    return {"wall_s": t["wall_s"], "cpu_s": t["cpu_s"]}


def machine() -> dict:
    cpu = cpu_model()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "threads_used": 1,
        "load_avg_1min": load,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "sklearn": sklearn.__version__,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--k", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--slow-seconds", type=float, default=10.0)
    args = ap.parse_args()

    with threadpool_limits(limits=1):
        truth, probs = make_data(args.n, args.k)
        fast = timed(lambda: roc.delong(truth, probs), args.repeats)
        ours_auc = timed(lambda: [roc.auc(truth, p) for p in probs], args.repeats)
        skl = timed(lambda: [roc_auc_score(truth, p) for p in probs], args.repeats)
        auc_gap = float(np.max(np.abs(np.array(skl["_r"]) - fast["_r"].aucs)))
        n_slow, slow = largest_slow_n(args.k, args.slow_seconds)

    slow_extrapolated = slow["slow"]["cpu_s"] * (args.n / n_slow) ** 2
    report = {
        "benchmark": "delong",
        "n": args.n,
        "k": args.k,
        "positives": int(truth.sum()),
        "distinct_scores_model0": int(np.unique(probs[0]).size),
        "fast_delong": _clean(fast),
        "goal_under_2s_cpu_met": fast["cpu_s"] < 2.0,
        "auc_only": {
            "thyrovid_auc": _clean(ours_auc),
            "sklearn_roc_auc_score": _clean(skl),
            "sklearn_over_thyrovid_auc_cpu": skl["cpu_s"] / ours_auc["cpu_s"],
            "sklearn_3_aucs_over_fast_delong_with_cov_cpu": skl["cpu_s"] / fast["cpu_s"],
            "max_abs_auc_diff_vs_sklearn": auc_gap,
        },
        "slow_o_mn": {
            "n": n_slow,
            "slow": _clean(slow["slow"]),
            "fast_same_n": _clean(slow["fast"]),
            "speedup_same_n_cpu": slow["slow"]["cpu_s"] / slow["fast"]["cpu_s"],
            "slow_extrapolated_to_n_cpu_s": slow_extrapolated,
            "speedup_at_n_extrapolated_cpu": slow_extrapolated / fast["cpu_s"],
            "max_abs_cov_diff": slow["max_abs_cov_diff"],
        },
        "repeats": args.repeats,
        "machine": machine(),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
