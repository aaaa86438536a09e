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

from thyrovid.extract import video_ids


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
