"""Paths in warnings are printed as written: no repr(), no doubled Windows backslashes."""

from __future__ import annotations

import pandas as pd

from helpers import tiny_cohort
from thyrovid.cli import main
from thyrovid.errors import plain

WINDOWS = r"C:\data\x.dcm"


def test_a_missing_windows_path_is_printed_as_written(tmp_path, capsys):
    csv_path = tiny_cohort(tmp_path, n_patients=2, keys=(5,))
    cohort = pd.read_csv(csv_path)
    cohort.loc[0, "video"] = WINDOWS
    cohort.to_csv(csv_path, index=False)
    argv = ["extract", str(csv_path), "--out", str(tmp_path / "w"), "--frames", "8",
            "--size", "16", "--workers", "1"]  # fmt: skip
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert f"row 1 (line 2): video '{WINDOWS}' not found" in err
    assert "\\\\" not in err


def test_an_os_error_names_its_file_plainly():
    exc = FileNotFoundError(2, "No such file or directory", WINDOWS)
    assert "\\\\" in str(exc)  # what Python prints: the repr of the name
    assert plain(exc) == rf"No such file or directory: {WINDOWS}"
    assert plain(ValueError("x")) == "x"


def test_a_dicom_read_error_names_its_file_plainly():
    """The DICOM reader's "cannot read file (...)" line goes through `plain`."""
    from thyrovid.io.dicom import _one_line

    exc = PermissionError(13, "Permission denied", WINDOWS)
    assert _one_line(exc) == rf"Permission denied: {WINDOWS}"
