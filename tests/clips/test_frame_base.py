"""--frame-base 1: a viewer's 1-based frame numbers become the contract's 0-based ones."""

from __future__ import annotations

import pandas as pd

from helpers import tiny_cohort
from thyrovid.cli import main


def test_extract_frame_base_1_converts_and_refuses_frame_0(tmp_path, capsys):
    csv_path = tiny_cohort(tmp_path, n_patients=2, keys=(5,))
    args = ["extract", str(csv_path), "--frames", "8", "--size", "16", "--workers", "1"]
    assert main([*args, "--out", str(tmp_path / "w0")]) == 0
    cohort = pd.read_csv(csv_path)
    shifted = cohort.assign(frame=cohort["frame"] + 1)
    shifted.loc[0, "frame"] = 0  # no frame 0 when frames are numbered from 1
    one = tmp_path / "one.csv"
    shifted.to_csv(one, index=False)
    capsys.readouterr()
    one_args = ["extract", str(one), "--frames", "8", "--size", "16", "--workers", "1"]
    assert main([*one_args, "--out", str(tmp_path / "w1"), "--frame-base", "1"]) == 0
    err = capsys.readouterr().err
    assert "row 1 (line 2): frame '0' is not a 1-based frame index" in err
    zero = pd.read_csv(tmp_path / "w0" / "clips.csv")
    based = pd.read_csv(tmp_path / "w1" / "clips.csv")
    assert list(based["key_frame"]) == list(zero["key_frame"])[1:]


def test_extract_prints_a_table_not_json(tmp_path, capsys):
    csv_path = tiny_cohort(tmp_path, n_patients=2, keys=(5,))
    args = ["extract", str(csv_path), "--out", str(tmp_path / "w"), "--frames", "8"]
    assert main([*args, "--size", "16", "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "{" not in out and "clips         2 (2 cut, 0 reused)" in out
    assert "--json for this summary as JSON" in out
