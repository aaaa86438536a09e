"""One recording on both sides of a split is refused by extract before any clip is cut: the
same file, a byte-identical copy, or the same pixels under another header, listed under two
patients (with other labels or splits); --allow-shared-videos lets it through with a warning.
And `thyrovid stats` refuses a third truth value instead of counting it as negative."""

from __future__ import annotations

import shutil

import pydicom
import pytest

from helpers import pattern, write_csv, write_dicom
from thyrovid.cli import main
from thyrovid.clips.extract import SharedVideosError, extract

BOX = {"center": "A", "frame": 5, "x0": 8, "y0": 8, "x1": 30, "y1": 24}


def _cohort(tmp_path, second: str, **row2) -> object:
    write_dicom(tmp_path / "a.dcm", pattern(12, 32, 48))
    write_dicom(tmp_path / "other.dcm", pattern(12, 32, 48) + 50)
    rows = [
        {**BOX, "patient_id": "P1", "video": "a.dcm", "label": 0, "split": "train"},
        {**BOX, "patient_id": "P2", "video": second, "label": 1, "split": "test", **row2},
        {**BOX, "patient_id": "P3", "video": "other.dcm", "label": 1, "split": "train"},
    ]
    return write_csv(tmp_path / "cohort.csv", rows)


def _refused(tmp_path, csv, capsys, expected: str) -> None:
    work = tmp_path / "work"
    with pytest.raises(SharedVideosError) as err:
        extract(csv, work, frames=4, size=16, workers=1)
    assert expected in str(err.value)
    assert not (work / "clips.csv").exists() and not (work / "clips").exists()
    assert main(["extract", str(csv), "--out", str(work), "--frames", "4", "--size", "16"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "cohort.csv row 1" in lines[0] and expected in lines[0]
    assert "Traceback" not in lines[0]


def test_one_file_under_a_train_and_a_test_patient_is_refused(tmp_path, capsys):
    csv = _cohort(tmp_path, "a.dcm")
    _refused(
        tmp_path, csv, capsys,
        "video 'a.dcm' is listed under 2 patients ('P1', 'P2'): one recording on both sides "
        "of a split (labels 0 and 1; splits test and train)",
    )  # fmt: skip


def test_a_byte_identical_copy_with_another_label_is_refused(tmp_path, capsys):
    csv = _cohort(tmp_path, "copy.dcm")
    shutil.copy(tmp_path / "a.dcm", tmp_path / "copy.dcm")
    _refused(tmp_path, csv, capsys, "video 'a.dcm' is the same file (size and bytes) as 'copy.dcm'")


def test_the_same_pixels_under_another_header_are_refused(tmp_path, capsys):
    csv = _cohort(tmp_path, "resaved.dcm")
    ds = pydicom.dcmread(tmp_path / "a.dcm")
    ds.PatientName, ds.SOPInstanceUID = "Other^Name", pydicom.uid.generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.save_as(tmp_path / "resaved.dcm")
    _refused(tmp_path, csv, capsys, "video 'a.dcm' is the same pixels as 'resaved.dcm'")


def test_allow_shared_videos_goes_on_with_a_warning_per_video(tmp_path):
    csv = _cohort(tmp_path, "a.dcm")
    report = extract(csv, tmp_path / "w", frames=4, size=16, workers=1, allow_shared_videos=True)
    assert report.clips == 3
    assert [w for w in report.warnings if "listed under 2 patients" in w]


def test_distinct_videos_pass(tmp_path):
    csv = _cohort(tmp_path, "b.dcm")
    write_dicom(tmp_path / "b.dcm", pattern(12, 32, 48) + 100)
    assert extract(csv, tmp_path / "w", frames=4, size=16, workers=1).clips == 3


@pytest.mark.parametrize("third", ["2", "-1", "NA", "Unknown"])
@pytest.mark.parametrize("command", ["auc", "metrics"])
def test_stats_refuses_a_third_truth_value(tmp_path, capsys, third, command):
    rows = [
        {"truth": t, "score": s} for t, s in zip("0101010", "0.1 0.9 0.2 0.8 0.3 0.7 0.4".split())
    ]
    rows.insert(3, {"truth": third, "score": "0.5"})  # line 5
    csv = write_csv(tmp_path / "t.csv", rows)
    tail = ["--score", "score"] if command == "auc" else ["--pred", "score", "--threshold", "0.5"]
    assert main(["stats", command, "--csv", str(csv), "--truth", "truth", *tail]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert (
        f"t.csv, line 5: truth column 'truth' holds '{third}', neither positive '1' nor negative '0'"
        in err
    )


def test_stats_with_words_needs_the_negative_when_three_appear(tmp_path, capsys):
    rows = [{"outcome": o, "score": s} for o, s in zip(["Poor", "Good", "Poor", "Good", "Lost"], "0.9 0.1 0.8 0.2 0.5".split())]  # fmt: skip
    csv = write_csv(tmp_path / "t.csv", rows)
    args = ["stats", "auc", "--csv", str(csv), "--truth", "outcome", "--positive", "Poor", "--score", "score"]  # fmt: skip
    assert main(args) == 2
    assert "say which one is negative with --negative" in capsys.readouterr().err
    assert main([*args, "--negative", "Good"]) == 2
    assert "line 6: truth column 'outcome' holds 'Lost'" in capsys.readouterr().err
