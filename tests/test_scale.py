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


def naive_consistency_problems(rows, source):
    """The original _consistency_problems: a Python loop over every nodule and patient."""
    from thyrovid.cohort import Problem

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

    from thyrovid.cohort import _consistency_problems

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

    from thyrovid.clipcache import _is_done_parsed, is_done

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


def _always_stripped(text: str, sep: str, keep_ragged: bool):
    """read_table's frame as the original code built it: every cell stripped, always."""
    import csv
    import io

    import pandas as pd

    from thyrovid.csv_input import RAGGED

    options = {}
    if keep_ragged:
        header = text.split("\n", 1)[0]
        n = len(next(csv.reader([header.rstrip("\r")], delimiter=sep), []))
        options = {
            "engine": "python",
            "on_bad_lines": lambda fields: [f"{RAGGED}{len(fields)}"] + [""] * (n - 1),
        }
    df = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False, **options)
    df.columns = [str(c).strip() for c in df.columns]
    df = df.apply(lambda col: col.str.strip())
    return df[(df != "").any(axis=1)]


def _random_csv(rng, sep: str, blanks: bool) -> str:
    """A small CSV: quoted and bare fields, CRLF or LF, and (if `blanks`) blanks in places."""
    spaces = [" ", "\t", "\u00a0", "\x0b", "\u2003"] if blanks else [""]
    n_cols, n_rows = int(rng.integers(1, 5)), int(rng.integers(0, 12))
    end = "\r\n" if rng.random() < 0.3 else "\n"

    def field():
        core = str(rng.choice(["a", "007", "1.5", "x y", "", "P-1", "é", "2,5"]))
        if blanks and rng.random() < 0.3:
            pad = str(rng.choice([s for s in spaces if s != sep]))
            core = pad + core if rng.random() < 0.5 else core + pad
        if (sep in core or "," in core or rng.random() < 0.2) or ("\t" in core):
            core = '"' + core.replace('"', '""') + '"'
        return core

    lines = [sep.join(f"c{j}" for j in range(n_cols))]
    for _ in range(n_rows):
        lines.append(sep.join(field() for _ in range(n_cols)))
    return end.join(lines) + (end if rng.random() < 0.7 else "")


@pytest.mark.parametrize("seed", range(60))
def test_read_table_skips_strip_only_when_nothing_to_strip(seed, tmp_path):
    import pandas as pd

    from thyrovid.csv_input import needs_strip, read_table

    rng = np.random.default_rng(seed)
    sep = [",", ";", "\t"][seed % 3]
    text = _random_csv(rng, sep, blanks=seed % 2 == 0)
    path = tmp_path / "t.csv"
    path.write_bytes(text.encode("utf-8"))
    for keep_ragged in (False, True):
        got, got_sep = read_table(path, keep_ragged=keep_ragged)
        assert got_sep == sep or "c1" not in text  # one column: no separator to sniff
        pd.testing.assert_frame_equal(got, _always_stripped(text, got_sep, keep_ragged))
    if seed % 2 == 1:  # no blanks anywhere: the strip is skipped
        assert not needs_strip(text, got_sep)


@pytest.mark.parametrize(
    "text,sep",
    [
        ('a,b\n"\nx",y\n', ","),
        ('a,b\n"x\n",y\n', ","),
        ('a,b\r\n"x\r\n",y\r\n', ","),
        ('a\tb\n"\tx"\ty\n', "\t"),
        ('a\tb\n"x\t"\ty\n', "\t"),
        ('a\tb\n"x"\t"y\t"\n', "\t"),
        ('a;b\n"x ";y\n', ";"),
        ('a,b\n"x"" ",y\n', ","),
        ('a,b\n"x\ny",z\n', ","),
        ("a,b\n  \nx,y\n", ","),
        ("a,b\nx,y \n", ","),
        ("a,b\nx,y\u00a0", ","),
        ('a,b\n"",""\nx,""\n', ","),
        ('a,b\n"x,",y\n"1\n2","3"\n', ","),
    ],
)
def test_read_table_equals_always_stripped_on_quoting_corner_cases(text, sep, tmp_path):
    import pandas as pd

    from thyrovid.csv_input import read_table

    path = tmp_path / "t.csv"
    path.write_bytes(text.encode("utf-8"))
    for keep_ragged in (False, True):
        got, got_sep = read_table(path, keep_ragged=keep_ragged)
        assert got_sep == sep
        pd.testing.assert_frame_equal(got, _always_stripped(text, sep, keep_ragged))


def _needs_strip_regex(text: str, sep: str) -> bool:
    """needs_strip written as one regular expression (slow on big files: the reference)."""
    import re

    s = re.escape(sep)
    blank = rf"[^\S\r\n{s}]"
    edge = rf'[{s}\r\n"]'
    inner = r"[\r\n" + (s if sep.isspace() else "") + "]"
    pattern = "|".join(
        [
            rf"(?:\A|{edge}){blank}",
            rf"{blank}(?:\Z|{edge})",
            rf'(?:\A|[{s}\r\n])"\s',
            rf'{inner}"(?:\Z|[{s}\r\n])',
        ]
    )
    return re.search(pattern, text) is not None


@pytest.mark.parametrize("seed", range(200))
def test_needs_strip_equals_regex_reference(seed):
    import thyrovid.csv_input as ci

    rng = np.random.default_rng(seed)
    alphabet = list('ab,;\t\r\n" é\x1c\x0b') + ["\u00a0", "\u2003", "\u3000", "\x85"]
    weights = np.array([8, 8, 3, 3, 3, 2, 3, 2, 1, 2, 0.3, 0.3, 0.2, 0.2, 0.2, 0.2])
    weights = weights if seed % 2 else np.where(np.arange(weights.size) >= 8, 0, weights)
    n = int(rng.integers(0, 40))
    text = "".join(rng.choice(alphabet, n, p=weights / weights.sum()))
    sep = [",", ";", "\t"][seed % 3]
    if any(ch.isspace() and ord(ch) > 127 for ch in text):  # conservative: always strip
        assert ci.needs_strip(text, sep)
    else:
        assert ci.needs_strip(text, sep) == _needs_strip_regex(text, sep), repr(text)


def test_needs_strip_chunks_overlap_by_one_byte():
    from thyrovid.csv_input import needs_strip

    step = 1 << 22
    for at in (step - 2, step - 1, step, step + 1):
        text = "a" * at + ", b" + "a" * 10
        assert needs_strip(text, ",") and _needs_strip_regex(text, ",")
        text = "a" * at + ',"\nb' + "a" * 10
        assert needs_strip(text, ",") == _needs_strip_regex(text, ",")
    assert not needs_strip("a" * (2 * step + 5) + ",b", ",")


def test_no_whitespace_above_u3000():
    import sys

    assert not [c for c in range(0x3001, sys.maxunicode + 1) if chr(c).isspace()]
