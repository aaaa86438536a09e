"""cohort.csv reading and validation; CVAT video XML and COCO JSON importers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import pattern, tiny_cohort, write_csv, write_dicom
from thyrovid.cohort.importers import import_coco, import_cvat_video
from thyrovid.cohort.schema import check_against_videos, parse_label, read_cohort, write_cohort
from thyrovid.errors import CohortError, UserError
from thyrovid.io import open_video

GOOD = {"patient_id": "P1", "video": "v.dcm", "center": "A", "label": "1", "frame": "3",
        "x0": "4", "y0": "4", "x1": "20", "y1": "20"}  # fmt: skip


@pytest.fixture
def video_dir(tmp_path: Path) -> Path:
    write_dicom(tmp_path / "v.dcm", pattern(10, 32, 48))
    return tmp_path


def test_labels_normalised_and_documented_forms_only():
    assert [parse_label(x) for x in ("0", "1", "benign", " Malignant ", "BENIGN")] == [
        0,
        1,
        0,
        1,
        0,
    ]
    for bad in ("2", "m", "yes", ""):
        with pytest.raises(ValueError):
            parse_label(bad)


def test_read_resolves_paths_defaults_nodule_and_keeps_extras(video_dir):
    rows = [{**GOOD, "Label": "Benign", "note": "x"}]
    rows[0].pop("label")
    cohort = read_cohort(write_csv(video_dir / "c.csv", rows))
    rec = cohort.rows.loc[1]
    assert rec["label"] == 0 and rec["nodule_id"] == "P1" and rec["split"] == ""
    assert rec["video_path"] == str((video_dir / "v.dcm").resolve())
    assert cohort.extras == ["note"] and rec["note"] == "x" and not cohort.problems


def test_missing_required_column_is_fatal_and_names_the_typo(video_dir):
    rows = [{**GOOD, "lable": "1"}]
    rows[0].pop("label")
    with pytest.raises(CohortError, match="label.*'lable'"):
        read_cohort(write_csv(video_dir / "c.csv", rows))


def test_each_problem_is_one_line_with_its_row(video_dir):
    rows = [
        GOOD,  # row 1 fine
        {**GOOD, "label": "maybe"},  # 2
        {**GOOD, "x1": "4"},  # 3: x1 <= x0
        {**GOOD, "frame": "two"},  # 4
        {**GOOD, "video": "missing.dcm"},  # 5
        {**GOOD, "patient_id": "P2", "nodule_id": "n", "label": "0"},  # 6: conflicting label ...
        {**GOOD, "patient_id": "P2", "nodule_id": "n", "label": "1"},  # 7: ... with this row
        {**GOOD, "patient_id": "P3", "split": "train"},  # 8: patient in two splits ...
        {**GOOD, "patient_id": "P3", "split": "test"},  # 9
        {**GOOD, "patient_id": "P4", "split": "holdout"},  # 10: unknown split
    ]
    for r in rows:
        r.setdefault("nodule_id", "")
        r.setdefault("split", "")
    cohort = read_cohort(write_csv(video_dir / "c.csv", rows))
    assert list(cohort.rows.index) == [1]
    lines = [str(p) for p in cohort.problems]
    assert [p.row for p in cohort.problems] == [2, 3, 4, 5, 6, 7, 8, 9, 10]
    assert all("\n" not in line for line in lines)
    assert lines[0].startswith("c.csv row 2 (line 3): label 'maybe'")
    assert "x1 <= x0" in lines[1] and "'two'" in lines[2] and "not found" in lines[3]
    assert "differs" in lines[5] and "two splits" in lines[6] and "holdout" in lines[8]
    with pytest.raises(CohortError, match=r"row 2 \(line 3\)"):
        read_cohort(video_dir / "c.csv", strict=True)


def test_frames_and_boxes_checked_against_the_video_header(video_dir):
    rows = [GOOD, {**GOOD, "frame": "10"}, {**GOOD, "y1": "33"}, {**GOOD, "x1": "48.0"}]
    cohort = read_cohort(write_csv(video_dir / "c.csv", rows))
    with open_video(video_dir / "v.dcm") as v:
        headers = {str((video_dir / "v.dcm").resolve()): v.info}
    check_against_videos(cohort, headers)
    assert list(cohort.rows.index) == [1, 4]  # x1 = width is inside: x1 is exclusive
    assert "frame 10 is beyond the video (10 frames" in str(cohort.problems[0])
    assert "outside the 48x32 frame" in str(cohort.problems[1])


CVAT = """<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <meta><task><size>50</size><start_frame>10</start_frame><frame_filter>step=2</frame_filter>
  </task></meta>
  <track id="0" label="malignant" source="manual">
    <box frame="0" outside="0" occluded="0" keyframe="1" xtl="4.5" ytl="6" xbr="20" ybr="18" z_order="0"/>
    <box frame="1" outside="0" occluded="0" keyframe="0" xtl="5" ytl="6" xbr="21" ybr="18" z_order="0"/>
    <box frame="3" outside="0" occluded="0" keyframe="1" xtl="6" ytl="6" xbr="22" ybr="18" z_order="0"/>
    <box frame="4" outside="1" occluded="0" keyframe="1" xtl="6" ytl="6" xbr="22" ybr="18" z_order="0"/>
  </track>
  <track id="3" label="nodule" source="manual">
    <box frame="2" outside="0" occluded="0" keyframe="1" xtl="1" ytl="2" xbr="9" ybr="12" z_order="0"/>
  </track>
</annotations>
"""


def test_cvat_video_import_takes_drawn_boxes_on_video_frames(tmp_path):
    (tmp_path / "a.xml").write_text(CVAT)
    with pytest.raises(UserError, match="'nodule'"):  # track 3's label is not a pathology label
        import_cvat_video(tmp_path / "a.xml", "v.mp4", "P9", "A")
    rows = import_cvat_video(tmp_path / "a.xml", "v.mp4", "P9", "A", label="benign")
    got = [(r["nodule_id"], r["label"], r["frame"], r["x0"], r["y1"]) for r in rows]
    # task frame f -> video frame 10 + 2f; interpolated (keyframe=0) and outside boxes dropped
    assert got == [
        ("P9-t0", 1, 10, 4.5, 18.0),
        ("P9-t0", 1, 16, 6.0, 18.0),
        ("P9-t3", 0, 14, 1.0, 12.0),
    ]


def test_coco_import_bbox_xywh_and_frame_from_file_name(tmp_path):
    coco = {
        "images": [{"id": 1, "file_name": "frame_000012.PNG", "width": 48, "height": 32},
                   {"id": 2, "file_name": "x.png", "frame_id": 3, "width": 48, "height": 32}],
        "categories": [{"id": 1, "name": "Malignant"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [4, 5, 10, 6]},
                        {"id": 2, "image_id": 2, "category_id": 1, "bbox": [1, 1, 2, 2]}],
    }  # fmt: skip
    (tmp_path / "c.json").write_text(json.dumps(coco))
    rows = import_coco(tmp_path / "c.json", "v.dcm", "P1", "A")
    assert [(r["frame"], r["x0"], r["y0"], r["x1"], r["y1"], r["label"]) for r in rows] == [
        (3, 1.0, 1.0, 3.0, 3.0, 1),
        (12, 4.0, 5.0, 14.0, 11.0, 1),
    ]


def test_imported_rows_round_trip_through_write_cohort_and_extract(tmp_path):
    from thyrovid.clips.extract import extract

    write_dicom(tmp_path / "v.dcm", pattern(40, 48, 64))
    (tmp_path / "a.xml").write_text(CVAT)
    rows = import_cvat_video(tmp_path / "a.xml", "v.dcm", "P9", "A", label=0)
    path = write_cohort(rows, tmp_path / "cohort.csv")
    cohort = read_cohort(path)
    assert len(cohort.rows) == 3 and not cohort.problems
    report = extract(path, tmp_path / "w", frames=8, size=16, workers=1)
    assert report.clips == 3 and not report.skipped


def test_tiny_cohort_fixture_is_valid(tmp_path):
    cohort = read_cohort(tiny_cohort(tmp_path, n_patients=3))
    assert len(cohort.rows) == 6 and not cohort.problems
