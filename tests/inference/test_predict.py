"""`thyrovid predict` on a new video: same clip and probability as extract + evaluate."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pandas as pd
import pydicom
import pytest
import yaml

from helpers import TINY_RUN, evaluated_clips, logit, pairs_of
from thyrovid.cli import main
from thyrovid.errors import UserError
from thyrovid.inference.predict import Predictor, parse_box, predict_video, to_json
from thyrovid.runs import run_preprocessing


def test_new_video_gets_evaluates_clip_and_video_probability(tiny, tmp_path):
    rows = evaluated_clips(tiny)
    video_id = rows["video_id"].value_counts().index[0]  # the video with most key frames
    mine = rows[rows["video_id"] == video_id]
    assert len(mine) >= 2
    # A "new" video: the same file under a neutral name, as a clinician would bring it.
    source = tiny["phantom"] / mine["video"].iloc[0]
    video = tmp_path / "new_case.dcm"
    shutil.copy(source, video)

    result = predict_video(tiny["run"], video, pairs_of(mine), work_dir=tiny["work"])

    for clip, (_, row) in zip(result["clips"], mine.iterrows()):
        assert clip["roi"] == [row.roi_x0, row.roi_y0, row.roi_x1, row.roi_y1]
        assert (clip["first_frame"], clip["pad_before"]) == (row.first_frame, row.pad_before)
        assert logit(clip["prob"]) == pytest.approx(logit(row.prob), abs=1e-4)
    pred = tiny["pred"]
    video_prob = pred[(pred["level"] == "video") & (pred["id"] == video_id)]["prob"].item()
    assert logit(result["prob"]) == pytest.approx(logit(video_prob), abs=1e-4)
    threshold = json.loads((tiny["run"] / "metrics.json").read_text())["threshold"]["value"]
    assert result["threshold"] == threshold
    assert result["decision"] == ("malignant" if result["prob"] >= threshold else "benign")

    # No DICOM identifier in the output.
    ds = pydicom.dcmread(source, stop_before_pixels=True)
    text = json.dumps(to_json(result))
    for ident in (str(ds.PatientName), str(ds.PatientID)):
        assert ident and ident not in text


def test_padded_short_video_and_recorded_preprocessing(tiny):
    """A video shorter than the clip is padded as extract pads it; no --work needed."""
    rows = evaluated_clips(tiny)
    padded = rows[rows["padded"] == 1]
    row = (padded if len(padded) else rows).iloc[0]
    video = tiny["phantom"] / row.video
    ((frame, box),) = pairs_of(row.to_frame().T)
    result = predict_video(tiny["run"], video, [(frame, box)])
    assert logit(result["clips"][0]["prob"]) == pytest.approx(logit(row.prob), abs=1e-4)
    assert result["preprocessing"]["frames"] == 16 and result["preprocessing"]["size"] == 64
    # The agreement above is not vacuous: another crop or window gives another probability.
    moved = (box[0] + 3, box[1] + 3, box[2] + 3, box[3] + 3)
    other = predict_video(tiny["run"], video, [(frame, moved), (max(frame - 4, 0), box)])
    for clip in other["clips"]:
        assert abs(logit(clip["prob"]) - logit(row.prob)) > 1e-3


def test_preprocessing_comes_from_the_work_folder(tiny, tmp_path):
    from thyrovid.runs import load_run

    _, config = load_run(tiny["run"])
    (tmp_path / "extract.json").write_text(json.dumps({"frames": 16, "size": 64, "expand": 2.0}))
    prep, _ = run_preprocessing(tiny["run"], config, tmp_path)
    assert (prep.frames, prep.size, prep.expand) == (16, 64, 2.0)
    (tmp_path / "extract.json").write_text(json.dumps({"frames": 16, "size": 96, "expand": 1.5}))
    with pytest.raises(UserError, match="do not match the network input"):
        run_preprocessing(tiny["run"], config, tmp_path)

    # What a run records is used when no work folder is given: meta.extract, then meta.work_dir.
    doc = yaml.safe_load((tiny["run"] / "config.yaml").read_text())
    fake = tmp_path / "run"
    fake.mkdir()
    doc["meta"] = {**doc["meta"], "extract": {"frames": 16, "size": 64, "expand": 1.25}}
    (fake / "config.yaml").write_text(yaml.safe_dump(doc))
    assert run_preprocessing(fake, config)[0].expand == 1.25
    del doc["meta"]["extract"]
    doc["meta"]["work_dir"] = str(tmp_path / "work")
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "extract.json").write_text('{"frames": 16, "size": 64, "expand": 1.75}')
    (fake / "config.yaml").write_text(yaml.safe_dump(doc))
    prep, notes = run_preprocessing(fake, config)
    assert prep.expand == 1.75 and not notes


def test_cli_json_cam_and_boxes_csv(tiny, tmp_path, capsys):
    rows = evaluated_clips(tiny)
    row = rows.iloc[0]
    video = tiny["phantom"] / row.video
    box = f"{row.x0:g},{row.y0:g},{row.x1:g},{row.y1:g}"
    args = ["predict", str(tiny["run"]), str(video), "--frame", str(row.key_frame), "--box", box]
    assert main([*args, "--json", "--cam", str(tmp_path / "cam")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert logit(out["prob"]) == pytest.approx(logit(row.prob), abs=1e-4)
    png = cv2.imread(out["clips"][0]["cam_png"])
    assert png.shape == (2 * 64, 8 * 64, 3)  # frames over heatmap overlays, 8 frames
    avi = cv2.VideoCapture(out["clips"][0]["cam_avi"])
    assert int(avi.get(cv2.CAP_PROP_FRAME_COUNT)) == 16
    avi.release()

    # The same key frames from a cohort-like CSV (paths relative to the CSV's folder).
    # A missing video is skipped with one line; the others are predicted.
    csv = tiny["phantom"] / "boxes_test.csv"
    table = rows.head(3)[["video", "key_frame", "x0", "y0", "x1", "y1"]]
    table = table.rename(columns={"key_frame": "frame"})
    missing = pd.DataFrame([["videos/missing.dcm", 3, 1, 1, 9, 9]], columns=table.columns)
    pd.concat([table, missing]).to_csv(csv, index=False)
    assert main(["predict", str(tiny["run"]), "--boxes", str(csv), "--json"]) == 0
    captured = capsys.readouterr()
    got = json.loads(captured.out)
    probs = [c["prob"] for r in got for c in r["clips"]]
    assert logit(probs) == pytest.approx(logit(rows.head(3)["prob"]), abs=1e-4)
    skipped = [line for line in captured.err.splitlines() if line.startswith("skipped:")]
    assert len(skipped) == 1 and "missing.dcm" in skipped[0]


@pytest.mark.parametrize(
    ("frame", "box", "message"),
    [
        ("5", "0,0,500,40", "outside the"),
        ("5", "30,20,10,40", "x1 > x0"),
        ("5", "1,2,3", "expected x0,y0,x1,y1"),
        ("999", "10,10,30,30", "out of range"),
    ],
)
def test_bad_input_exits_2_with_one_line(tiny, capsys, frame, box, message):
    video = tiny["phantom"] / tiny["clips"]["video"].iloc[0]
    code = main(["predict", str(tiny["run"]), str(video), "--frame", frame, "--box", box])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and message in err[0] and err[0].startswith("thyrovid predict: error:")


def test_unreadable_video_is_one_line(tiny, tmp_path, capsys):
    bad = tmp_path / "broken.dcm"
    bad.write_bytes(b"\0" * 128 + b"DICM" + b"garbage")
    code = main(["predict", str(tiny["run"]), str(bad), "--frame", "0", "--box", "1,1,9,9"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "broken.dcm" in err[0]


def test_threshold_override_and_parse_box(tiny):
    rows = evaluated_clips(tiny)
    row = rows.iloc[0]
    video, pairs = tiny["phantom"] / row.video, pairs_of(rows.head(1))
    first = Predictor(tiny["run"], threshold=0.0).predict(video, pairs)
    assert first["decision"] == "malignant" and first["threshold_source"] == "--threshold"
    # P >= threshold is malignant: a threshold of exactly P decides malignant, just above benign.
    result = Predictor(tiny["run"], threshold=first["prob"]).predict(video, pairs)
    assert result["decision"] == "malignant"
    above = Predictor(tiny["run"], threshold=np.nextafter(first["prob"], 1.0)).predict(video, pairs)
    assert above["decision"] == "benign"
    assert parse_box(" 1, 2,3.5,4") == (1.0, 2.0, 3.5, 4.0)
    with pytest.raises(UserError):
        parse_box("1,2,nan,4")
    assert np.isfinite(result["prob"])


def test_2d_run_predicts_from_the_key_frame_image(tiny, tmp_path):
    """A 2D run sees extract's key-frame image; predict cuts the same image."""
    from thyrovid.config import TrainConfig
    from thyrovid.inference.batch import predict_clips
    from thyrovid.training.train import train

    run = train(tiny["work"], tmp_path / "run2d", TrainConfig(**{**TINY_RUN, "dims": 2}))
    want = predict_clips(run, tiny["work"], ["val"]).set_index("clip_id")["prob"]
    rows = tiny["clips"][tiny["clips"]["clip_id"].isin(want.index)].head(2)
    row = rows.iloc[0]
    result = predict_video(run, tiny["phantom"] / row.video, pairs_of(rows.head(1)), cam=True)
    assert logit(result["clips"][0]["prob"]) == pytest.approx(logit(want[row.clip_id]), abs=1e-4)
    assert result["model"]["dims"] == 2 and result["clips"][0]["montage"].shape == (128, 64, 3)
