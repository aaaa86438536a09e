"""Optimised code paths give exactly what a straightforward reference gives (no timings here).

The scale fixes (BENCHMARKS.md, "Scale") replace per-row or quadratic Python with indexed or
vectorised code; each test runs the project's function and a naive reference on a small random
input and demands identical output.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

import numpy as np
import pytest

from thyrovid.clips.extract import video_ids


def naive_video_ids(videos):
    """The original O(V^2) video_ids: for each video, scan every other one at each depth."""
    parts = {}
    for v in videos:
        p = PurePosixPath(v.replace("\\", "/"))
        names = [x for x in p.parts if x not in ("", ".", "..", "/")]
        names[-1] = PurePosixPath(names[-1]).stem or names[-1]
        parts[v] = [re.sub(r"[^A-Za-z0-9._-]+", "_", x) for x in names]
    out = {}
    for v, names in parts.items():
        depth = 1
        while True:
            vid = "_".join(names[-depth:])
            clash = [w for w, n in parts.items() if w != v and "_".join(n[-depth:]) == vid]
            if not clash or depth >= len(names):
                break
            depth += 1
        out[v] = vid if not clash else f"{vid}_{sorted(parts).index(v)}"
    return out


@pytest.mark.parametrize("seed", range(20))
def test_video_ids_equal_naive_reference(seed):
    rng = np.random.default_rng(seed)
    pieces = ["a", "b", "a_b", "c d", "IMG1", "x.y", "ü", ".."]
    videos = []
    for _ in range(int(rng.integers(1, 60))):
        depth = int(rng.integers(1, 5))
        names = [str(rng.choice(pieces)) for _ in range(depth - 1)]
        names.append(str(rng.choice(pieces[:-1])))  # a file name, never ".."
        name = "/".join(names) + str(rng.choice([".dcm", ".avi", "", ".tar.gz"]))
        if rng.random() < 0.2:
            name = name.replace("/", "\\")
        if rng.random() < 0.1:
            name = "./" + name
        videos.append(name)
    videos = list(dict.fromkeys(videos))
    got = video_ids(videos)
    assert got == naive_video_ids(videos)
    assert list(got) == list(naive_video_ids(videos))


def naive_consistency_problems(rows, source):
    """The original _consistency_problems: a Python loop over every nodule and patient."""
    from thyrovid.cohort.schema import Problem

    problems = []
    if rows.empty:
        return problems
    for (patient, nodule), grp in rows.groupby(["patient_id", "nodule_id"], sort=False):
        if grp["label"].nunique() > 1:
            first, label = grp.index[0], grp["label"].iloc[0]
            other = grp.index[grp["label"] != label][0]
            for row in grp.index[1:]:
                if grp.at[row, "label"] != label:
                    why = f"label {grp.at[row, 'label']} differs from label {label} in row {first}"
                else:
                    why = (
                        f"label {label} differs from label {grp.at[other, 'label']} in row {other}"
                    )
                msg = (
                    f"{why} for nodule {nodule!r} of patient {patient!r}; "
                    "all rows of this nodule skipped"
                )
                problems.append(Problem(int(row), msg, source))
            hint = (
                " (nodule_id is the patient id here: give each nodule its own nodule_id)"
                if nodule == patient
                else ""
            )
            problems.append(
                Problem(int(first), f"nodule {nodule!r} has conflicting labels{hint}", source)
            )
    for patient, grp in rows.groupby("patient_id", sort=False):
        given = sorted(s for s in grp["split"].unique() if s)
        if len(given) > 1:
            for row in grp.index:
                msg = f"patient {patient!r} is in two splits ({', '.join(given)}); rows skipped"
                problems.append(Problem(int(row), msg, source))
    return sorted(problems, key=lambda p: p.row)


@pytest.mark.parametrize("seed", range(15))
def test_consistency_problems_equal_naive_reference(seed):
    import pandas as pd

    from thyrovid.cohort.schema import _consistency_problems

    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 120))
    patients = [f"P{int(i)}" for i in rng.integers(0, max(1, n // 4) + 1, n)]
    nodules = [p if rng.random() < 0.3 else f"N{int(rng.integers(0, 3))}" for p in patients]
    rows = pd.DataFrame(
        {
            "patient_id": patients,
            "nodule_id": nodules,
            "label": (rng.random(n) < 0.5).astype(int) if seed % 3 else np.zeros(n, int),
            "split": rng.choice(["", "", "", "train", "test"], n),
        },
        index=rng.permutation(np.arange(1, n + 1)),
    )
    got = _consistency_problems(rows, "cohort.csv")
    assert got == naive_consistency_problems(rows, "cohort.csv")


def test_is_done_fast_path_equals_parsed_header(tmp_path):
    import io

    from thyrovid.clips.cache import _is_done_parsed, is_done

    rng = np.random.default_rng(0)
    cases = []
    for i, shape in enumerate([(2, 8, 8), (4, 16, 16), (16, 16), (3, 5, 7)]):
        arr = rng.integers(0, 255, shape, dtype=np.uint8)
        buf = io.BytesIO()
        np.save(buf, arr)
        data = buf.getvalue()
        variants = {
            "ok": data,
            "short": data[:-1],
            "long": data + b"\0",
            "head_only": data[:20],
            "empty": b"",
            "float": _npy_bytes(arr.astype(np.float32)),
            "fortran": _npy_bytes(np.asfortranarray(arr)),
            "v2": _npy_bytes(arr, version=(2, 0)),
        }
        for name, blob in variants.items():
            path = tmp_path / f"{i}_{name}.npy"
            path.write_bytes(blob)
            cases.append((path, shape))
            cases.append((path, (*shape[:-1], shape[-1] + 1)))
    cases.append((tmp_path / "missing.npy", (2, 8, 8)))
    for path, shape in cases:
        assert is_done(path, shape) == _is_done_parsed(path, shape), (path.name, shape)
    assert is_done(tmp_path / "0_ok.npy", (2, 8, 8)) and is_done(tmp_path / "1_v2.npy", (4, 16, 16))


def _npy_bytes(arr, version=None):
    import io

    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, version=version)
    return buf.getvalue()
