"""`thyrovid probe`: metadata out, patient identifiers never, bad input -> exit 2 + one line."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest

from thyrovid.cli import main

PYDICOM_FILES = Path(os.path.dirname(pydicom.__file__)) / "data" / "test_files"


def real_file(name: str) -> Path:
    """A file of pydicom's test suite or of pydicom-data (package `data_store`); skip if absent."""
    folders = [PYDICOM_FILES]
    spec = importlib.util.find_spec("data_store")
    if spec is not None and spec.submodule_search_locations:
        folders.append(Path(next(iter(spec.submodule_search_locations))) / "data")
    for folder in folders:
        if (folder / name).is_file():
            return folder / name
    pytest.skip(f"{name} is not installed (pydicom test files / pydicom-data)")


def identifiers(path: Path) -> list[str]:
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    keys = (
        "PatientName",
        "PatientID",
        "PatientBirthDate",
        "StudyDate",
        "InstitutionName",
        "AccessionNumber",
    )
    return [
        str(ds.get(k)) for k in keys if ds.get(k) not in (None, "") and len(str(ds.get(k))) >= 3
    ]


def test_probe_json_reports_ultrasound_metadata(capsys):
    path = real_file("color3d_jpeg_baseline.dcm")
    assert main(["probe", str(path), "--json"]) == 0
    out = capsys.readouterr().out
    meta = json.loads(out)
    assert meta["format"] == "dicom"
    assert (meta["frames"], meta["height"], meta["width"], meta["channels"]) == (120, 480, 640, 3)
    assert meta["fps"] == pytest.approx(30.0, abs=0.01)
    assert meta["pixel_spacing_mm"] == pytest.approx([0.510497, 0.510497])
    assert meta["transfer_syntax"].startswith("1.2.840.10008.1.2.4.50")
    assert meta["photometric"] == "YBR_FULL_422"
    assert meta["ultrasound_region"] == [84, 31, 596, 415]
    assert meta["manufacturer"] == "SonoSite, Inc."
    for secret in identifiers(path):
        assert secret not in out


def test_probe_text_has_every_field_and_no_identifiers(capsys):
    path = real_file("examples_palette.dcm")  # carries a patient name, ID, institution, dates
    assert main(["probe", str(path)]) == 0
    out = capsys.readouterr().out
    for field in ("format", "frames", "height", "width", "channels", "fps", "pixel_spacing_mm"):
        assert f"{field}:" in out
    assert "PALETTE COLOR" in out and "ultrasound_region: 120 60 800 350" in " ".join(out.split())
    secrets = identifiers(path)
    assert secrets  # the test file does carry identifiers
    for secret in secrets:
        assert secret not in out


def _bad_inputs(tmp_path: Path) -> dict[str, Path]:
    data = real_file("color3d_jpeg_baseline.dcm").read_bytes()
    truncated = tmp_path / "truncated.dcm"
    truncated.write_bytes(data[: len(data) // 3])
    not_dicom = tmp_path / "notes.dcm"
    not_dicom.write_text("not a DICOM\n" * 30)
    empty_folder = tmp_path / "frames"
    empty_folder.mkdir()
    empty_video = tmp_path / "empty.avi"
    empty_video.write_bytes(b"")
    return {
        "truncated": truncated,
        "not a DICOM": not_dicom,
        "no pixel data": real_file("rtplan.dcm"),
        "empty video": empty_folder,
        "empty video file": empty_video,
        "no such file": tmp_path / "missing.dcm",
    }


def test_bad_input_exits_2_with_one_line(tmp_path, capsys):
    for cause, path in _bad_inputs(tmp_path).items():
        assert main(["probe", str(path)]) == 2, cause
        err = capsys.readouterr().err
        lines = err.strip().splitlines()
        assert len(lines) == 1, (cause, err)
        assert str(path) in lines[0] and cause.split(" file")[0] in lines[0], (cause, err)
        assert "Traceback" not in err


def test_missing_decoder_exits_2_naming_the_package(capsys):
    """JPEG Lossless (Process 14) without imagecodecs (the thyrovid[ljpeg] extra) or gdcm."""
    from pydicom.pixels import get_decoder

    if get_decoder("1.2.840.10008.1.2.4.70").is_available or importlib.util.find_spec(
        "imagecodecs"
    ):
        pytest.skip("a JPEG Lossless decoder is installed here")
    path = real_file("SC_rgb_jpeg_gdcm.dcm")
    assert main(["probe", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "install imagecodecs" in err[0] and str(path) in err[0]


def test_console_script_prints_no_traceback(tmp_path):
    """The real entry point, in a fresh process: one stderr line, exit code 2."""
    bad = _bad_inputs(tmp_path)["truncated"]
    proc = subprocess.run(
        [sys.executable, "-m", "thyrovid", "probe", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "truncated" in proc.stderr
    assert "Traceback" not in proc.stderr
