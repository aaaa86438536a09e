"""A clinician using a trained run on new data: predict, cam, export, serve, as a user meets them."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import cv2
import pytest

from helpers import TINY_RUN, evaluated_clips
from thyrovid.cli import main


def _one_error_line(capsys, command: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"thyrovid {command}: error:"), err
    return err[0]


def _row_args(tiny) -> tuple:
    row = evaluated_clips(tiny).iloc[0]
    box = f"{row.x0:g},{row.y0:g},{row.x1:g},{row.y1:g}"
    return row, [str(tiny["phantom"] / row.video), "--frame", str(row.key_frame), "--box", box]


@pytest.mark.parametrize(
    ("device", "message"), [("cuda:99", "not usable"), ("gpu", "not a device")]
)
def test_unusable_device_is_one_line_for_predict_and_cam(tiny, capsys, device, message):
    _, args = _row_args(tiny)
    assert main(["predict", str(tiny["run"]), *args, "--device", device]) == 2
    assert message in _one_error_line(capsys, "predict")
    assert main(["cam", str(tiny["run"]), "--split", "val", "-n", "1", "--device", device]) == 2
    assert message in _one_error_line(capsys, "cam")


def test_boxes_csv_as_a_spreadsheet_saves_it_bad_rows_skipped_by_number(tiny, tmp_path, capsys):
    """Semicolons, decimal commas, capitalised headers, relative paths; bad rows named."""
    rows = evaluated_clips(tiny)
    rows = rows.drop_duplicates("video").head(2)
    folder = tmp_path / "sheet"
    folder.mkdir()
    lines = ["Video;Frame;X0;Y0;X1;Y1"]
    for i, r in enumerate(rows.itertuples()):
        rel = f"../../{(tiny['phantom'] / r.video).relative_to(tmp_path.parent)}"
        rel = rel.replace("/", "\\") if i == 0 else rel  # a path written on Windows
        lines.append(f"{rel};{r.key_frame};{r.x0:g},0;{r.y0:g};{r.x1:g};{r.y1:g}")
    lines += ["sub\\missing.dcm;3;1;1;9;9", f"{rel};2,5;1;1;9;9", f"{rel};3;1;1;x;9"]
    (folder / "boxes.csv").write_text("\n".join(lines) + "\n")

    assert main(["predict", str(tiny["run"]), "--boxes", str(folder / "boxes.csv"), "--json"]) == 0
    captured = capsys.readouterr()
    got = json.loads(captured.out)
    assert [c["prob"] for r in got for c in r["clips"]] == pytest.approx(
        list(rows["prob"]), abs=1e-4
    )
    skipped = [line for line in captured.err.splitlines() if line.startswith("skipped:")]
    assert len(skipped) == 3
    assert "row 4 (line 5): frame '2,5'" in skipped[0]
    assert "row 5 (line 6): x1 'x' is not a number" in skipped[1]
    assert "missing.dcm" in skipped[2]

    # A boxes file naming one video still answers a list (its shape does not depend on the data).
    (folder / "one.csv").write_text("\n".join(lines[:2]) + "\n")
    assert main(["predict", str(tiny["run"]), "--boxes", str(folder / "one.csv"), "--json"]) == 0
    assert isinstance(json.loads(capsys.readouterr().out), list)


def test_short_video_in_another_format_is_padded_with_a_note(tiny, tmp_path, capsys):
    """A 5-frame PNG folder for a 16-frame run: predicted, and the user is told it was padded."""
    from thyrovid.io import open_video

    row, args = _row_args(tiny)
    with open_video(args[0]) as video:
        frames = video.frames(list(range(5)))
    folder = tmp_path / "short"
    folder.mkdir()
    for i, frame in enumerate(frames):
        cv2.imwrite(str(folder / f"frame_{i:03d}.png"), frame[..., 0])
    box = args[-1]
    assert main(["predict", str(tiny["run"]), str(folder), "--frame", "2", "--box", box]) == 0
    captured = capsys.readouterr()
    assert "P(malignant)" in captured.out
    assert f"note: {folder} has 5 frames, fewer than the 16 of a clip" in captured.err


def test_cam_files_of_two_videos_with_one_name_do_not_overwrite(tiny, tmp_path, capsys):
    """Scanner exports name every patient's file IM0001: two heatmaps, not one overwritten."""
    row, args = _row_args(tiny)
    lines = ["video,frame,x0,y0,x1,y1"]
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        shutil.copy(args[0], tmp_path / name / "IM0001.dcm")
        lines.append(f"{name}/IM0001.dcm,{row.key_frame},{row.x0},{row.y0},{row.x1},{row.y1}")
    (tmp_path / "boxes.csv").write_text("\n".join(lines) + "\n")
    cam = tmp_path / "cam"
    command = ["predict", str(tiny["run"]), "--boxes", str(tmp_path / "boxes.csv"), "--json"]
    assert main([*command, "--cam", str(cam)]) == 0
    pngs = [c["cam_png"] for r in json.loads(capsys.readouterr().out) for c in r["clips"]]
    assert len(set(pngs)) == 2 and all(Path(p).is_file() for p in pngs)


@pytest.fixture(scope="module")
def run2d(tiny, tmp_path_factory):
    from thyrovid.config import TrainConfig
    from thyrovid.training.train import train

    return train(
        tiny["work"],
        tmp_path_factory.mktemp("run2d") / "run",
        TrainConfig(**{**TINY_RUN, "dims": 2}),
    )


def test_2d_run_reports_the_key_frame_it_saw_and_exports(tiny, run2d, tmp_path, capsys):
    row, args = _row_args(tiny)
    assert main(["predict", str(run2d), *args, "--json"]) == 0
    clip = json.loads(capsys.readouterr().out)["clips"][0]
    assert (clip["first_frame"], clip["n_frames"], clip["pad_before"]) == (row.key_frame, 1, 0)

    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    out = tmp_path / "m2d.onnx"
    assert main(["export", str(run2d), "--out", str(out), "--check"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["input_shape"] == ["batch", 1, 64, 64]
    assert summary["check"]["max_abs_diff_prob"] < 1e-4

    # Exported into (a copy of) the run folder, predict takes the ONNX model: same answer.
    run = tmp_path / "run2d"
    shutil.copytree(run2d, run)
    assert main(["export", str(run)]) == 0
    capsys.readouterr()
    answers = {}
    for engine in ("onnx", "torch"):
        assert main(["predict", str(run), *args, "--json", "--engine", engine]) == 0
        answers[engine] = json.loads(capsys.readouterr().out)
        assert answers[engine]["engine"] == engine
    assert answers["onnx"]["prob"] == pytest.approx(answers["torch"]["prob"], abs=1e-4)


def test_export_to_a_folder_or_a_bad_opset_is_one_line(tiny, tmp_path, capsys):
    pytest.importorskip("onnx")
    assert main(["export", str(tiny["run"]), "--out", str(tmp_path)]) == 2
    assert "is a folder" in _one_error_line(capsys, "export")
    assert (
        main(["export", str(tiny["run"]), "--out", str(tmp_path / "m.onnx"), "--opset", "5"]) == 2
    )
    assert "--opset 5" in _one_error_line(capsys, "export")
    assert not list(tmp_path.iterdir())  # nothing half-written


@pytest.fixture(scope="module")
def client(tiny):
    pytest.importorskip("fastapi")
    pytest.importorskip("multipart")
    pytest.importorskip("httpx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    from thyrovid.serve.serve import create_app

    app = create_app(tiny["run"])
    return TestClient(app, base_url="http://127.0.0.1", raise_server_exceptions=False)


@pytest.mark.parametrize(
    ("upload", "form", "message"),
    [
        (("notes.txt", b"not a video at all"), {"frame": "2", "box": "10,10,30,30"}, "format"),
        (("case.dcm", b""), {"frame": "2", "box": "10,10,30,30"}, "empty"),
        ("video", {"frame": "2"}, "missing form field 'box'"),
        ("video", {"box": "10,10,30,30"}, "missing form field 'frame'"),
        (None, {"frame": "2", "box": "10,10,30,30"}, "missing form field 'file'"),
        ("video", {"frame": "two", "box": "10,10,30,30"}, "form field 'frame': 'two'"),
        ("video", {"frame": "2", "box": "0,0,5000,40"}, "outside the"),
        ("video", {"frame": "2", "box": "10,10,30,30", "cam": "maybe"}, "form field 'cam'"),
    ],
)
def test_serve_bad_request_is_400_with_one_line(tiny, client, upload, form, message):
    if upload == "video":
        upload = ("case.dcm", (tiny["phantom"] / tiny["clips"]["video"].iloc[0]).read_bytes())
    answer = client.post("/predict", files={"file": upload} if upload else None, data=form)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert message in error and "\n" not in error


def test_no_dicom_identifier_in_any_output(tiny, client, tmp_path, capsys):
    import pydicom

    row, args = _row_args(tiny)
    ds = pydicom.dcmread(args[0])
    secrets = {"PatientName": "DOEXQZ^JANEQVW", "PatientID": "MRN0042731",
               "PatientBirthDate": "19700101", "InstitutionName": "SAINT NOWHERE",
               "ReferringPhysicianName": "HOUSEQX^GREGORYQ", "AccessionNumber": "ACC7731XY"}  # fmt: skip
    for key, value in secrets.items():
        setattr(ds, key, value)
    video = tmp_path / "case.dcm"
    ds.save_as(video)
    box = args[-1]
    cam = tmp_path / "cam"
    command = ["predict", str(tiny["run"]), str(video), "--frame", args[2], "--box", box]
    assert main([*command, "--json", "--cam", str(cam)]) == 0
    texts = [capsys.readouterr().out.encode()]
    texts += [p.read_bytes() for p in cam.iterdir()]  # PNG metadata, AVI headers
    form = {"frame": args[2], "box": box, "cam": "true"}
    texts.append(
        client.post("/predict", files={"file": ("x.dcm", video.read_bytes())}, data=form).content
    )
    words = [w.encode() for v in secrets.values() for w in v.split("^")]
    assert len(texts) >= 4 and not [w for w in words for t in texts if w in t]


def test_report_on_a_run_without_metrics_and_to_a_folder(run2d, tmp_path, capsys):
    out = tmp_path / "report.html"
    assert main(["report", "--runs", str(run2d), "--out", str(out)]) == 0
    assert "No metrics.json" in out.read_text() and not (run2d / "metrics.json").exists()
    capsys.readouterr()
    assert main(["report", "--runs", str(run2d), "--out", str(tmp_path)]) == 2
    assert "is a folder" in _one_error_line(capsys, "report")


def test_unreadable_metrics_json_is_named_as_such(tiny, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(tiny["run"], run)
    (run / "metrics.json").write_text("{half a file")
    _, args = _row_args(tiny)
    assert main(["predict", str(run), *args, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["decision"] is None and "not readable JSON" in result["threshold_source"]


@pytest.mark.parametrize(
    ("extra", "message"), [(["--split", "nosuch"], "it has: "), (["-n", "0"], "-n must be >= 1")]
)
def test_cam_names_the_splits_there_are_and_refuses_no_clips(tiny, capsys, extra, message):
    assert main(["cam", str(tiny["run"]), "--split", "val", *extra]) == 2
    line = _one_error_line(capsys, "cam")
    assert message in line and ("val" in line or "-n" in message)
