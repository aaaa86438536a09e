"""`thyrovid check`: a cohort's problems listed with their rows before any extraction."""

from __future__ import annotations

import csv
import json
import shutil

import cv2
import numpy as np
import pytest

from helpers import pattern, write_csv, write_dicom
from thyrovid.cli import main


def write_jpeg_dicom(path, frames: np.ndarray, corrupt=(), region=None):
    """(T, H, W) uint8 as JPEG Baseline fragments; the frames in `corrupt` are noise bytes."""
    from pydicom.encaps import encapsulate

    write_dicom(path, frames, region=region)  # the header, then swap in the JPEG pixel data
    import pydicom
    from pydicom.uid import JPEGBaseline8Bit

    ds = pydicom.dcmread(path)
    rng = np.random.default_rng(0)
    encoded = []
    for i, f in enumerate(frames):
        buf = cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
        if i in corrupt:
            buf = rng.integers(0, 256, len(buf), dtype=np.uint8).tobytes()
        encoded.append(buf)
    ds.PixelData = encapsulate(encoded, has_bot=True)
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.save_as(path, enforce_file_format=True)
    return path


def _row(patient, video, frame, box=(8, 8, 24, 24), label=0, center="A", nodule=None):
    return {
        "patient_id": patient,
        "nodule_id": nodule or patient,
        "video": video,
        "center": center,
        "label": label,
        "frame": frame,
        "x0": box[0],
        "y0": box[1],
        "x1": box[2],
        "y1": box[3],
    }


def _speckle(n, h, w, seed):
    """Frames whose every pixel changes over time (so the estimated sector is the frame)."""
    rng = np.random.default_rng(seed)
    base = pattern(n, h, w).astype(np.int16)
    return np.clip(base + rng.integers(-40, 40, base.shape), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def bad_cohort(tmp_path_factory):
    """Good videos plus each problem the issue names, in known rows (1-based data rows)."""
    root = tmp_path_factory.mktemp("check")
    v = root / "videos"
    for p in range(4):
        write_dicom(v / f"good{p}.dcm", _speckle(40, 48, 64, p))
    shutil.copy(v / "good0.dcm", v / "copy_of_good0.dcm")
    write_dicom(v / "short.dcm", _speckle(10, 48, 64, 9))
    write_dicom(v / "region.dcm", _speckle(40, 48, 64, 10), region=(0, 0, 32, 48))
    # 140 frames, 23 of them (60..82) noise: the key frame's window does not reach them.
    write_jpeg_dicom(v / "damaged.dcm", _speckle(140, 32, 32, 11), corrupt=range(60, 83))
    rows = [
        _row("P0", "videos/good0.dcm", 20),  # row 1
        _row("P1", "videos/good1.dcm", 20, label=1),  # row 2
        _row("P2", "videos/good2.dcm", 20),  # row 3
        _row("P3", "videos/good3.dcm", 20, label=1),  # row 4
        _row("P4", "videos/copy_of_good0.dcm", 5, label=1),  # row 5: P0's video again
        _row("P5", "videos/short.dcm", 5),  # row 6: 10 frames < 16
        _row("P6", "videos/region.dcm", 20, box=(40, 10, 60, 30), label=1),  # row 7: outside
        _row("P7", "videos/damaged.dcm", 20, box=(4, 4, 20, 20)),  # row 8
        _row("P8", "videos/missing.dcm", 3),  # row 9: no such file
        _row("P1", "videos/good1.dcm", 45, label=1, nodule="P1b"),  # row 10: frame >= 40
    ]
    return write_csv(root / "cohort.csv", rows)


def _run(cohort, out, *extra, frames=16):
    code = main(["check", str(cohort), "--frames", str(frames), "--out", str(out),
                 "--workers", "1", *extra])  # fmt: skip
    report = json.loads((out / "check.json").read_text())
    return code, report


def _by_row(report):
    out = {}
    for p in report["problems"]:
        out.setdefault(p["row"], []).append(p)
    return out


def test_each_problem_is_listed_with_its_row_and_the_exit_code_is_1(bad_cohort, tmp_path, capsys):
    code, report = _run(bad_cohort, tmp_path / "out")
    term = capsys.readouterr().out
    assert code == 1
    rows = _by_row(report)
    kinds = {row: {(p["severity"], p["kind"]) for p in ps} for row, ps in rows.items()}
    # the same file under two patients, reported on both videos' first rows
    assert ("error", "duplicate") in kinds[5] and ("error", "duplicate") in kinds[1]
    dup = next(p for p in rows[5] if p["kind"] == "duplicate")["message"]
    assert "good0.dcm" in dup and "P0" in dup
    assert ("warning", "short_video") in kinds[6]
    assert ("error", "box_outside_sector") in kinds[7]
    assert ("error", "corrupt_frames") in kinds[8]
    assert ("error", "row") in kinds[9]  # the missing video, as extract reports it
    assert ("error", "key_frame") in kinds[10]
    for row in (2, 3, 4):
        assert row not in rows
    for row in (5, 6, 7, 8, 9, 10):
        assert f"cohort.csv row {row} (line {row + 1})" in term
    # the sample finds the damage in its spread frames; the key frame's window is intact
    damaged = next(v for v in report["videos_table"] if v["video"] == "videos/damaged.dcm")
    assert damaged["frames"] == 140 and 0 < damaged["frames_failed"] < 23
    with open(tmp_path / "out" / "check_problems.csv", newline="") as fh:
        listed = list(csv.DictReader(fh))
    assert {int(r["row"]) for r in listed} == set(rows)


def test_decode_all_counts_every_damaged_frame(bad_cohort, tmp_path):
    code, report = _run(bad_cohort, tmp_path / "out", "--decode", "all")
    assert code == 1
    damaged = next(v for v in report["videos_table"] if v["video"] == "videos/damaged.dcm")
    assert damaged["frames_decoded"] == 140
    assert damaged["frames_failed"] == 23
    assert damaged["failed_frames"] == list(range(60, 83))
    msg = next(p["message"] for p in report["problems"] if p["kind"] == "corrupt_frames")
    assert "23 of 140 decoded frames do not decode" in msg


def test_report_carries_no_dicom_identifier(bad_cohort, tmp_path):
    import pydicom

    _run(bad_cohort, tmp_path / "out")
    ds = pydicom.dcmread(bad_cohort.parent / "videos" / "good0.dcm", stop_before_pixels=True)
    for name in ("check.json", "check_videos.csv", "check_problems.csv", "check_balance.csv"):
        text = (tmp_path / "out" / name).read_text()
        assert "Secret" not in text and str(ds.SOPInstanceUID) not in text


def test_same_pixels_under_another_name_is_a_duplicate(tmp_path):
    """A re-export (new SOP Instance UID, same pixels) of one patient's video under another."""
    frames = _speckle(30, 48, 64, 3)
    write_dicom(tmp_path / "a.dcm", frames)
    write_dicom(tmp_path / "b.dcm", frames)  # another UID, same pixels
    write_dicom(tmp_path / "c.dcm", _speckle(30, 48, 64, 4))
    cohort = write_csv(
        tmp_path / "cohort.csv",
        [_row("P0", "a.dcm", 10), _row("P1", "b.dcm", 10, label=1), _row("P2", "c.dcm", 10)],
    )
    code, report = _run(cohort, tmp_path / "out")
    assert code == 1
    msgs = [p["message"] for p in report["problems"] if p["kind"] == "duplicate"]
    assert len(msgs) == 2 and all("the same pixels as" in m for m in msgs)


def test_phantom_cohort_has_no_problem(tmp_path, capsys):
    from thyrovid.synth.cohort import SynthConfig, synthesize

    cfg = SynthConfig(patients=6, seed=11, frames=(12, 24), size=(48, 64), workers=1)
    synthesize(tmp_path / "ph", cfg, progress=False)
    code, report = _run(tmp_path / "ph" / "cohort.csv", tmp_path / "out", frames=12)
    assert code == 0 and report["errors"] == 0
    assert [p for p in report["problems"] if p["kind"] != "balance"] == []
    assert report["summary"]["not_opened"] == 0
    # the phantom's region is a rectangle; the estimate from the pixels finds it again
    for v in report["videos_table"]:
        assert v["sector_source"] == "pixels"
        assert v["sector"] == v["ultrasound_region"]
    out = capsys.readouterr().out
    assert "0 error(s)" in out and "centre" in out
