"""`thyrovid predict` says how far a probability is from the threshold, and lists what it skipped."""

from __future__ import annotations

import json
import shutil

import pandas as pd

from helpers import evaluated_clips
from thyrovid.cli import main


def _args(tiny, run, row):
    box = f"{row.x0:g},{row.y0:g},{row.x1:g},{row.y1:g}"
    video = tiny["phantom"] / row.video
    return ["predict", str(run), str(video), "--frame", str(row.key_frame), "--box", box]


def _run_with_band(tiny, tmp_path, threshold: float, low: float, high: float):
    run = tmp_path / "run"
    shutil.copytree(tiny["run"], run)
    doc = json.loads((run / "metrics.json").read_text())
    doc["threshold"].update(value=threshold, band={"low": low, "high": high})
    (run / "metrics.json").write_text(json.dumps(doc))
    return run


def test_a_probability_inside_the_band_reads_near_the_threshold(tiny, tmp_path, capsys):
    row = evaluated_clips(tiny).iloc[0]
    p = float(row.prob)
    run = _run_with_band(tiny, tmp_path, min(p + 0.01, 1.0), max(p - 0.05, 0), min(p + 0.05, 1))
    assert main([*_args(tiny, run, row), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["margin"]["near"] is True and out["decision"] == "benign"
    assert out["margin"]["words"].startswith("near the threshold")
    assert out["margin"]["difference"] < 0


def test_a_probability_far_from_the_threshold_reads_clearly(tiny, tmp_path, capsys):
    row = evaluated_clips(tiny).iloc[0]
    run = _run_with_band(tiny, tmp_path, 1.0, 1.0, 1.0)  # every probability below 1 is far
    assert main(_args(tiny, run, row)) == 0
    printed = capsys.readouterr().out
    assert "clearly below the threshold" in printed and "near the threshold" not in printed


def test_json_lists_skipped_videos_and_rows_with_their_reason(tiny, tmp_path, capsys):
    rows = evaluated_clips(tiny).head(2)
    csv = tiny["phantom"] / "boxes_skip.csv"
    table = rows[["video", "key_frame", "x0", "y0", "x1", "y1"]].rename(
        columns={"key_frame": "frame"}
    )
    extra = pd.DataFrame(
        [["videos/missing.dcm", 3, 1, 1, 9, 9], [rows.iloc[0].video, "x", 1, 1, 9, 9]],
        columns=table.columns,
    )
    pd.concat([table, extra]).to_csv(csv, index=False)
    assert main(["predict", str(tiny["run"]), "--boxes", str(csv), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    skipped = [r for r in got if r.get("skipped")]
    assert len(skipped) == 2 and all(r["prob"] is None and r["clips"] == [] for r in skipped)
    reasons = " ".join(r["skipped"] for r in skipped)
    assert "missing.dcm" in reasons and "row 4 (line 5)" in reasons
    assert len([r for r in got if not r.get("skipped")]) >= 1


def test_frame_base_1_gives_the_same_prediction_as_the_0_based_frame(tiny, capsys):
    row = evaluated_clips(tiny).iloc[0]
    args = _args(tiny, tiny["run"], row)
    assert main([*args, "--json"]) == 0
    zero = json.loads(capsys.readouterr().out)
    i = args.index("--frame") + 1
    args[i] = str(int(args[i]) + 1)
    assert main([*args, "--json", "--frame-base", "1"]) == 0
    one = json.loads(capsys.readouterr().out)
    assert one["prob"] == zero["prob"] and one["clips"][0]["frame"] == row.key_frame
    args[i] = "0"
    assert main([*args, "--frame-base", "1"]) == 2
    assert "--frame 0 is not a 1-based frame index" in capsys.readouterr().err
