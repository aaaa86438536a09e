"""The bad-input corpus (tests/corpus/corpus_cases.py): every case exits with its code,
prints exactly one line naming the file or row (no traceback, no library noise, no Python
warning) and keeps every good row."""

from __future__ import annotations

import warnings

import pytest
from corpus_cases import all_cases

from thyrovid.cli import main

CASES = all_cases()
BAD = [c for c in CASES if c.line is not None]


def test_the_corpus_has_at_least_60_bad_inputs_across_the_commands():
    assert len(BAD) >= 60
    commands = {c.kind for c in BAD}
    assert {
        "probe",
        "extract-video",
        "extract-row",
        "extract-file",
        "stats",
        "readers",
        "run",
    } <= commands


def _stderr_lines(err: str, case) -> list[str]:
    lines = [x for x in err.splitlines() if x.strip()]
    return [x for x in lines if not x.startswith(case.summary)] if case.summary else lines


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case(case, tmp_path, capfd, request):
    args = (tmp_path, request.getfixturevalue("tiny")) if case.needs_run else (tmp_path,)
    argv = case.build(*args)
    capfd.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = main(argv)
    out, err = capfd.readouterr()
    assert not [str(w.message) for w in caught]
    assert "Traceback" not in out + err
    lines = _stderr_lines(err, case)
    assert code == case.code, (code, err)
    if case.line is None:
        assert lines == [], err
    else:
        assert len(lines) == 1, err
        assert case.line in lines[0], lines[0]
        assert case.names in lines[0], lines[0]
    if case.kept is not None:
        case.kept(tmp_path, out)
