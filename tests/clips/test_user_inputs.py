"""A clinician's own cohort.csv and videos: the forms real exports take, and clear messages.

Each test is a regression test for a defect found by feeding `thyrovid extract` / `probe`
inputs the other tests had not seen (spreadsheet exports, Windows paths, duplicate rows, ...).
"""

from __future__ import annotations

from pathlib import Path

from helpers import pattern, read_clips, write_csv, write_dicom
from thyrovid.clips.extract import extract
from thyrovid.cohort.schema import read_cohort

ROW = {"patient_id": "P1", "nodule_id": "P1-L", "video": "v.dcm", "center": "A", "label": "1",
       "frame": "5", "x0": "8", "y0": "8", "x1": "40", "y1": "30", "split": ""}  # fmt: skip


def _video(root: Path, rel: str = "v.dcm", n_frames: int = 12) -> Path:
    return write_dicom(root / rel, pattern(n_frames, 32, 48))


def _text(rows: list[dict], sep: str = ",") -> str:
    cols = list(rows[0])
    return "".join(sep.join(str(r[c]) for c in cols) + "\n" for r in [dict(zip(cols, cols)), *rows])


def test_semicolon_and_tab_separated_files_from_spreadsheets(tmp_path):
    _video(tmp_path)
    rows = [ROW, {**ROW, "frame": "7", "x0": "8,5"}]  # decimal comma, as such locales write it
    for name, sep in (("semi.csv", ";"), ("tab.tsv", "\t")):
        (tmp_path / name).write_text(_text(rows, sep))
        cohort = read_cohort(tmp_path / name)
        assert not cohort.problems, cohort.problems
        assert list(cohort.rows["frame"]) == [5, 7] and list(cohort.rows["x0"]) == [8.0, 8.5]


def test_bom_crlf_and_column_names_with_spaces_and_case(tmp_path):
    _video(tmp_path)
    text = _text([ROW]).replace("patient_id", "Patient ID").replace("x0", " X0 ")
    (tmp_path / "c.csv").write_bytes(("\ufeff" + text).replace("\n", "\r\n").encode())
    cohort = read_cohort(tmp_path / "c.csv")
    assert not cohort.problems and cohort.rows.loc[1, "patient_id"] == "P1"
    assert cohort.rows.loc[1, "x0"] == 8.0 and cohort.extras == []


def test_non_utf8_file_names_the_line_and_what_to_do(tmp_path, capsys):
    from thyrovid.cli import main

    _video(tmp_path)
    (tmp_path / "c.csv").write_bytes(_text([ROW, {**ROW, "center": "hôpital"}]).encode("cp1252"))
    assert main(["extract", str(tmp_path / "c.csv"), "--out", str(tmp_path / "w")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "c.csv: not UTF-8 text" in err
    assert "line 3" in err and "CSV UTF-8" in err


def test_labels_written_as_floats_are_accepted(tmp_path):
    _video(tmp_path)
    rows = [{**ROW, "patient_id": f"P{i}", "nodule_id": "", "label": lab}
            for i, lab in enumerate(["1.0", "0.0", " 0 ", "BENIGN", "Malignant", "2.0", "0.5"])]  # fmt: skip
    cohort = read_cohort(write_csv(tmp_path / "c.csv", rows))
    assert list(cohort.rows["label"]) == [1, 0, 0, 0, 1]
    assert [p.row for p in cohort.problems] == [6, 7]
    assert "label '2.0' is not 0/1" in str(cohort.problems[0])


def test_conflicting_labels_skip_every_row_of_the_nodule(tmp_path):
    _video(tmp_path)
    rows = [{**ROW, "frame": str(f), "label": lab} for f, lab in [(1, 1), (2, 1), (3, 1), (4, 0)]]
    rows.append({**ROW, "nodule_id": "P1-R", "label": "0"})
    cohort = read_cohort(write_csv(tmp_path / "c.csv", rows))
    assert list(cohort.rows.index) == [5]  # the other nodule of the patient stays
    assert [p.row for p in cohort.problems] == [1, 2, 3, 4]
    assert all("P1-L" in str(p) for p in cohort.problems)
    assert "give each nodule its own nodule_id" not in str(cohort.problems)


def test_patient_with_two_nodules_and_no_nodule_id_is_told_to_add_one(tmp_path):
    _video(tmp_path)
    rows = [
        {**ROW, "nodule_id": "", "label": "1"},
        {**ROW, "nodule_id": "", "frame": "6", "label": "0"},
    ]
    cohort = read_cohort(write_csv(tmp_path / "c.csv", rows))
    assert cohort.rows.empty
    assert "give each nodule its own nodule_id" in str(cohort.problems)


def test_windows_backslash_paths_resolve(tmp_path):
    _video(tmp_path, "sub dir/ünï/v 1.dcm")
    rows = [{**ROW, "video": "sub dir\\ünï\\v 1.dcm"}]
    report = extract(write_csv(tmp_path / "c.csv", rows), tmp_path / "w", frames=4, size=8)
    assert report.clips == 1 and not report.skipped
    assert read_clips(tmp_path / "w")[0]["video_id"] == "v_1"


def test_exact_duplicate_row_gives_one_clip_and_a_skip_line(tmp_path):
    _video(tmp_path)
    rows = [ROW, ROW, {**ROW, "frame": "6"}, {**ROW, "frame": "6"}, {**ROW, "frame": "6"}]
    report = extract(write_csv(tmp_path / "c.csv", rows), tmp_path / "w", frames=4, size=8)
    assert [r["clip_id"] for r in read_clips(tmp_path / "w")] == ["v_f00005", "v_f00006"]
    assert report.skipped == [
        "c.csv row 2 (line 3): same video, key frame and nodule as row 1",
        "c.csv row 4 (line 5): same video, key frame and nodule as row 3",
        "c.csv row 5 (line 6): same video, key frame and nodule as row 3",
    ]


def test_short_and_single_frame_videos_padded_with_a_warning_naming_them(tmp_path, capsys):
    from thyrovid.cli import main

    _video(tmp_path, "short.dcm", n_frames=10)
    _video(tmp_path, "still.dcm", n_frames=1)
    rows = [{**ROW, "video": "short.dcm"}, {**ROW, "patient_id": "P2", "nodule_id": "",
            "video": "still.dcm", "frame": "0"}]  # fmt: skip
    csv_path = write_csv(tmp_path / "c.csv", rows)
    assert main(["extract", str(csv_path), "--out", str(tmp_path / "w"), "--size", "8"]) == 0
    err = capsys.readouterr().err
    assert "warning: video 'short.dcm' has 10 frames, fewer than the 32 of a clip" in err
    assert "warning: video 'still.dcm' is a single frame (a still image)" in err
    assert [r["padded"] for r in read_clips(tmp_path / "w")] == ["1", "1"]


def test_dicom_without_preamble_is_read(tmp_path):
    data = _video(tmp_path, "full.dcm").read_bytes()
    assert data[128:132] == b"DICM"
    (tmp_path / "v.dcm").write_bytes(data[132:])  # as some older devices write them
    report = extract(write_csv(tmp_path / "c.csv", [ROW]), tmp_path / "w", frames=4, size=8)
    assert report.clips == 1 and not report.skipped


def test_wrong_number_of_frames_and_empty_file_say_so(tmp_path, capsys):
    import pydicom

    from thyrovid.cli import main

    ds = pydicom.dcmread(_video(tmp_path, "v.dcm", n_frames=6))
    ds.NumberOfFrames = 50
    ds.save_as(tmp_path / "v.dcm")
    (tmp_path / "empty.dcm").write_bytes(b"")
    for name, expected in (
        ("v.dcm", "NumberOfFrames says 50 but the pixel data holds 6 frames"),
        ("empty.dcm", "not a DICOM file (the file is empty)"),
    ):
        assert main(["probe", str(tmp_path / name)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and f"{name}: {expected}" in err


def test_unopenable_video_and_box_outside_the_region_lines_name_the_row_once(tmp_path):
    write_dicom(tmp_path / "v.dcm", pattern(8, 32, 48), region=(20, 10, 48, 32))
    (tmp_path / "text.dcm").write_text("not an image\n" * 20)
    rows = [ROW, {**ROW, "patient_id": "P2", "video": "text.dcm"},
            {**ROW, "patient_id": "P3", "x0": "1", "y0": "1", "x1": "6", "y1": "6"}]  # fmt: skip
    report = extract(write_csv(tmp_path / "c.csv", rows), tmp_path / "w", frames=4, size=8)
    assert report.clips == 1
    assert report.skipped == [
        "c.csv row 2 (line 3): video 'text.dcm' could not be opened: not a DICOM file "
        "(no 'DICM' marker at byte 128)",
        "c.csv row 3 (line 4): box (1, 1, 6, 6) is outside the ultrasound imaging region "
        "(20, 10, 48, 32) of the video",
    ]
    assert str(tmp_path) not in "".join(report.skipped)


def test_row_with_an_unquoted_comma_is_skipped_not_fatal(tmp_path):
    _video(tmp_path)
    text = _text([{**ROW, "note": "x"}, {**ROW, "frame": "6", "note": "x"}])
    lines = text.splitlines()
    lines.insert(
        2, lines[1].replace(",x", ",left lobe, upper pole")
    )  # row 2: 13 fields, 12 in the header
    (tmp_path / "c.csv").write_text("\n".join(lines) + "\n")
    cohort = read_cohort(tmp_path / "c.csv")
    assert list(cohort.rows.index) == [1, 3] and list(cohort.rows["note"]) == ["x", "x"]
    assert [str(p) for p in cohort.problems] == [
        "c.csv row 2 (line 3): has 13 fields but the header has 12 (a value with a comma or "
        "separator in it must be quoted)"
    ]


def test_blank_spreadsheet_rows_are_ignored_and_later_rows_keep_their_numbers(tmp_path):
    _video(tmp_path)
    rows = [ROW, {k: "" for k in ROW}, {**ROW, "frame": "6", "x1": "oops"}]
    rows.append({k: "" for k in ROW})  # the ",,,,," lines a spreadsheet leaves at the end
    cohort = read_cohort(write_csv(tmp_path / "c.csv", rows))
    assert list(cohort.rows.index) == [1]
    assert [p.row for p in cohort.problems] == [3]  # the file's row 3, not a renumbered 2
    assert "'oops'" in str(cohort.problems[0])
