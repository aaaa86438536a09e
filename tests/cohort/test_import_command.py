"""`thyrovid import {cvat,coco}`: the same annotations exported both ways give the same rows."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from helpers import write_csv
from thyrovid.cli import main
from thyrovid.cohort.schema import read_cohort


@pytest.fixture(scope="module")
def phantom(tmp_path_factory) -> Path:
    from thyrovid.synth.cohort import SynthConfig, synthesize

    root = tmp_path_factory.mktemp("import") / "phantom"
    synthesize(root, SynthConfig(patients=3, seed=3, frames=(12, 14), size=(48, 64), workers=1),
               progress=False)  # fmt: skip
    return root


def annotator_id(nodule: str) -> str:
    """A nodule id as a clinician writes it: blanks, '#', nothing thyrovid would derive."""
    return f"{nodule} left #1"


def truth_of(phantom: Path) -> pd.DataFrame:
    truth = pd.read_csv(phantom / "cohort.csv", dtype=str)
    return truth.assign(nodule_id=truth["nodule_id"].map(annotator_id))


def cvat_project(truth: pd.DataFrame) -> str:
    """A 'CVAT for video 1.1' project export: one task per video (uploaded as .mp4), one track
    per nodule with a nodule_id and a center attribute; task 1 starts at video frame 1. Each
    track also has an interpolated box and an 'outside' box, which are not key frames."""
    tasks, tracks = [], []
    for t, (video, rows) in enumerate(truth.groupby("video", sort=True)):
        start = 1 if t == 1 else 0
        source = Path(video).with_suffix(".mp4").name
        tasks.append(f"<task><id>{t}</id><name>task {t}</name><size>20</size><mode>interpolation"
                     f"</mode><start_frame>{start}</start_frame><stop_frame>19</stop_frame>"
                     f"<frame_filter></frame_filter><source>{source}</source></task>")  # fmt: skip
        attrs = (f'<attribute name="nodule_id">{rows["nodule_id"].iloc[0]}</attribute>'
                 f'<attribute name="center">{rows["center"].iloc[0]}</attribute>')  # fmt: skip
        boxes = []
        for r in rows.itertuples():
            f = int(r.frame) - start
            boxes.append(f'<box frame="{f}" outside="0" occluded="0" keyframe="1" xtl="{r.x0}" '
                         f'ytl="{r.y0}" xbr="{r.x1}" ybr="{r.y1}" z_order="0">{attrs}</box>')  # fmt: skip
        last = int(rows["frame"].astype(int).max()) - start
        boxes.append(f'<box frame="{last + 1}" outside="0" occluded="0" keyframe="0" xtl="1" '
                     f'ytl="1" xbr="5" ybr="5" z_order="0">{attrs}</box>')  # fmt: skip
        boxes.append(f'<box frame="{last + 2}" outside="1" occluded="0" keyframe="1" xtl="1" '
                     f'ytl="1" xbr="5" ybr="5" z_order="0">{attrs}</box>')  # fmt: skip
        tracks.append(f'<track id="{10 + t}" label="nodule" source="manual" task_id="{t}">'
                      + "".join(boxes) + "</track>")  # fmt: skip
    return ('<?xml version="1.0" encoding="utf-8"?>\n<annotations><version>1.1</version><meta>'
            f"<project><name>thyroid</name><tasks>{''.join(tasks)}</tasks></project></meta>"
            + "".join(tracks) + "</annotations>")  # fmt: skip


def coco_export(truth: pd.DataFrame) -> dict:
    """The same boxes as COCO JSON, as CVAT writes it: one image per frame, file names
    <video>/frame_<frame:06d>.PNG, attributes with track_id and keyframe (interpolated false)."""
    images, anns = [], []
    for t, (video, rows) in enumerate(truth.groupby("video", sort=True)):
        stem = Path(video).stem
        attrs = {"occluded": False, "track_id": 10 + t, "nodule_id": rows["nodule_id"].iloc[0],
                 "center": rows["center"].iloc[0]}  # fmt: skip
        frames = [(int(r.frame), [float(r.x0), float(r.y0), float(r.x1) - float(r.x0),
                                  float(r.y1) - float(r.y0)], True) for r in rows.itertuples()]  # fmt: skip
        frames.append((max(f for f, _, _ in frames) + 1, [1.0, 1.0, 4.0, 4.0], False))
        for frame, bbox, key in frames:
            images.append({"id": len(images) + 1, "width": 64, "height": 48,
                           "file_name": f"{stem}/frame_{frame:06d}.PNG"})  # fmt: skip
            anns.append({"id": len(anns) + 1, "image_id": images[-1]["id"], "category_id": 1,
                         "bbox": bbox, "area": bbox[2] * bbox[3], "iscrowd": 0,
                         "attributes": {**attrs, "keyframe": key}})  # fmt: skip
    return {"categories": [{"id": 1, "name": "nodule"}], "images": images, "annotations": anns}


def mapping(truth: pd.DataFrame, path: Path) -> Path:
    """patient_id and label per video, keyed by the name the export gives (no extension)."""
    per_video = truth.drop_duplicates("video")
    rows = [{"video": Path(v).stem, "patient_id": p, "label": "malignant" if lab == "1" else "benign"}
            for v, p, lab in zip(per_video["video"], per_video["patient_id"], per_video["label"])]  # fmt: skip
    return write_csv(path, rows)


COLS = ["patient_id", "nodule_id", "video", "center", "label", "frame", "x0", "y0", "x1", "y1"]


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    return df[COLS].astype(str).sort_values(["video", "frame"]).reset_index(drop=True)


def test_cvat_and_coco_exports_of_the_same_boxes_give_the_same_cohort(phantom, capsys):
    truth = truth_of(phantom)
    (phantom / "project.xml").write_text(cvat_project(truth))
    (phantom / "coco.json").write_text(json.dumps(coco_export(truth)))
    table = mapping(truth, phantom / "mapping.csv")
    out = {}
    for kind, export in (("cvat", "project.xml"), ("coco", "coco.json")):
        csv = phantom / f"cohort_{kind}.csv"
        argv = ["import", kind, str(phantom / export), "--videos", str(phantom / "videos"),
                "--out", str(csv), "--map", str(table)]  # fmt: skip
        assert main(argv) == 0
        std = capsys.readouterr()
        assert std.err == ""
        n = len(truth)
        assert f"{n} key frame(s), 6 video(s), 3 nodule(s), 3 patient(s)" in std.out
        cohort = read_cohort(csv)  # extract's reader: every row valid
        assert len(cohort.rows) == n and not cohort.problems
        out[kind] = pd.read_csv(csv, dtype=str, keep_default_na=False)
    pd.testing.assert_frame_equal(_sorted(out["cvat"]), _sorted(out["coco"]))
    pd.testing.assert_frame_equal(_sorted(out["cvat"]), _sorted(truth))
    assert set(out["coco"]["nodule_id"]) == {annotator_id(n) for n in
                                             pd.read_csv(phantom / "cohort.csv")["nodule_id"]}  # fmt: skip


def test_imported_cohort_extracts(phantom, tmp_path):
    from thyrovid.clips.extract import extract

    truth = truth_of(phantom)
    (phantom / "p2.xml").write_text(cvat_project(truth))
    csv = phantom / "cohort_x.csv"
    argv = ["import", "cvat", str(phantom / "p2.xml"), "--videos", str(phantom / "videos"),
            "--out", str(csv), "--map", str(mapping(truth, tmp_path / "m.csv"))]  # fmt: skip
    assert main(argv) == 0
    report = extract(csv, tmp_path / "w", frames=8, size=16, workers=1)
    assert report.clips == len(truth) and not report.skipped


def test_bad_annotations_are_named_in_one_line_each_and_the_rest_imported(phantom, capsys):
    truth = truth_of(phantom)
    coco = coco_export(truth)
    videos = sorted(truth["video"].unique())
    first = coco["annotations"][0]
    first["bbox"] = [10.0, 10.0, -3.0, 4.0]  # x1 < x0
    orphan = next(i for i in coco["images"] if i["file_name"].startswith(Path(videos[1]).stem))
    orphan["file_name"] = "nowhere/frame_000003.PNG"  # a video not under --videos
    (phantom / "bad.json").write_text(json.dumps(coco))
    table = mapping(truth[truth["video"] != videos[2]], phantom / "partial.csv")  # no patient
    csv = phantom / "cohort_bad.csv"
    argv = ["import", "coco", str(phantom / "bad.json"), "--videos", str(phantom / "videos"),
            "--out", str(csv), "--map", str(table)]  # fmt: skip
    assert main(argv) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3, err
    assert "box (10, 10, 7, 14) is empty or starts outside the frame; 1 box(es) skipped" in err[0]
    assert "video nowhere, track 11: no video nowhere under --videos; 1 box(es) skipped" in err[1]
    n_third = (truth["video"] == videos[2]).sum()
    assert (
        f"no patient_id (an attribute of the track or a row of --map); {n_third} box(es)" in err[2]
    )
    assert all(line.startswith("skipped: bad.json: ") for line in err)
    cohort = read_cohort(csv)
    assert len(cohort.rows) == len(truth) - 2 - n_third and not cohort.problems


def test_frame_base_1_and_a_map_that_disagrees(tmp_path, capsys):
    from helpers import pattern, write_dicom

    write_dicom(tmp_path / "v" / "a.dcm", pattern(10, 32, 48))
    coco = {"categories": [{"id": 1, "name": "malignant"}],
            "images": [{"id": i, "file_name": f"frame_{i:06d}.png"} for i in (0, 1, 4)],
            "annotations": [{"id": i, "image_id": i, "category_id": 1, "bbox": [2, 3, 10, 8]}
                            for i in (0, 1, 4)]}  # fmt: skip
    (tmp_path / "a.json").write_text(json.dumps(coco))
    table = write_csv(tmp_path / "m.csv", [{"video": "a.dcm", "Patient ID": "P 07", "centre": "X",
                                            "nodule_id": "right lower"}])  # fmt: skip
    argv = ["import", "coco", str(tmp_path / "a.json"), "--videos", str(tmp_path / "v"),
            "--out", str(tmp_path / "c.csv"), "--map", str(table), "--video", "a",
            "--frame-base", "1"]  # fmt: skip
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "frame 0 is not a 1-based frame index; 1 box(es) skipped" in err
    rows = pd.read_csv(tmp_path / "c.csv", dtype=str)
    assert list(rows["frame"]) == ["0", "3"]  # viewer frames 1 and 4
    assert set(rows["nodule_id"]) == {"right lower"} and set(rows["patient_id"]) == {"P 07"}
    assert list(rows["video"]) == ["v/a.dcm", "v/a.dcm"] and set(rows["label"]) == {"1"}
    # the category says malignant, the map benign: neither wins silently
    write_csv(table, [{"video": "a", "patient_id": "P7", "center": "X", "label": "benign"}])
    assert main(argv[:-2]) == 2
    assert "label 1 in the export but benign in the map" in capsys.readouterr().err


def test_import_help_documents_the_mapping_columns(capsys):
    with pytest.raises(SystemExit):
        main(["import", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "video (as the export names it" in out and "patient_id, nodule_id, center, label" in out
    assert "the first frame is 0" in out
