"""thyrovid extract: windows, ROI crops to the exact pixel, cache, resume after SIGKILL, speed.

The fixture videos are uncompressed DICOMs written here: frame t has pixel (y, x) equal to
(x + 2y + 7t) mod 256, so a crop can be checked pixel by pixel (the writers
are tests/helpers.py's, shared with the cohort tests).
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from helpers import pattern, read_clips, tiny_cohort, write_csv, write_dicom
from thyrovid.clips.extract import extract, video_ids
from thyrovid.clips.geometry import clip_window, expand_box, window_indices
from thyrovid.errors import CohortError, UserError


def test_default_size_gives_32x224_clips(tmp_path):
    # the paper's sample size on a tiny cohort: 3 patients x 2 key frames
    csv_path = tiny_cohort(tmp_path, n_patients=3)
    report = extract(csv_path, tmp_path / "work", workers=1)
    assert report.clips == report.rows == 6 and not report.skipped
    for rec in read_clips(tmp_path / "work"):
        clip = np.load(tmp_path / "work" / rec["clip_path"])
        image = np.load(tmp_path / "work" / rec["image_path"])
        assert clip.shape == (32, 224, 224) and clip.dtype == np.uint8
        assert image.shape == (224, 224) and image.dtype == np.uint8
        key_pos = int(rec["key_frame"]) - int(rec["first_frame"])
        np.testing.assert_array_equal(image, clip[key_pos])


def test_expand_box_about_centre_and_clamp():
    # 24 x 24 box centred at (28, 20) -> 36 x 36 box centred at the same point
    assert expand_box((16, 8, 40, 32), 1.5, (0, 0, 64, 48)) == (10, 2, 46, 38)
    # a non-square box keeps its aspect: 20 x 10 -> 30 x 15 (rounded half up)
    assert expand_box((10, 10, 30, 20), 1.5, (0, 0, 64, 48)) == (5, 8, 35, 23)
    # clamped to the imaging region, not shifted
    assert expand_box((16, 8, 40, 32), 1.5, (12, 4, 60, 44)) == (12, 4, 46, 38)
    assert expand_box((0, 0, 4, 4), 1.5, (12, 4, 60, 44)) is None


def test_window_key_frame_centred_clamped_and_padded():
    assert clip_window(50, 100, 32) == (34, 32, 0)  # key at window index 16 = 32 // 2
    assert clip_window(3, 100, 32) == (0, 32, 0)  # clamped at the start
    assert clip_window(98, 100, 32) == (68, 32, 0)  # clamped at the end
    assert clip_window(4, 10, 16) == (0, 10, 3)  # short video: all 10 frames, 3 padded before
    assert window_indices(0, 10, 3, 16) == [0, 0, 0, *range(10), 9, 9, 9]


def test_crop_matches_box_x1_5_to_the_pixel(tmp_path):
    # size 36 = the expanded box side, so no resampling: the clip IS the crop
    n, h, w = 40, 48, 64
    write_dicom(tmp_path / "v.dcm", pattern(n, h, w))
    rows = [
        {"patient_id": "P1", "video": "v.dcm", "center": "A", "label": 1, "frame": 20,
         "x0": 16, "y0": 8, "x1": 40, "y1": 32},
        {"patient_id": "P1", "video": "v.dcm", "center": "A", "label": 1, "frame": 38,
         "x0": 16, "y0": 8, "x1": 40, "y1": 32},
    ]  # fmt: skip
    report = extract(write_csv(tmp_path / "c.csv", rows), tmp_path / "w", frames=16, size=36)
    assert report.clips == 2
    first, second = read_clips(tmp_path / "w")
    assert [int(first[k]) for k in ("roi_x0", "roi_y0", "roi_x1", "roi_y1")] == [10, 2, 46, 38]
    assert (int(first["first_frame"]), int(second["first_frame"])) == (12, 24)  # 20-8; clamped
    expected = pattern(n, h, w)[12:28, 2:38, 10:46]
    np.testing.assert_array_equal(np.load(tmp_path / "w" / first["clip_path"]), expected)
    np.testing.assert_array_equal(
        np.load(tmp_path / "w" / first["image_path"]), pattern(n, h, w)[20, 2:38, 10:46]
    )
    expected = pattern(n, h, w)[24:40, 2:38, 10:46]
    np.testing.assert_array_equal(np.load(tmp_path / "w" / second["clip_path"]), expected)


def test_crop_clamped_to_ultrasound_region_and_short_video_padded(tmp_path):
    n, h, w = 10, 48, 64
    write_dicom(tmp_path / "v.dcm", pattern(n, h, w), region=(12, 4, 60, 44))
    rows = [{"patient_id": "P1", "video": "v.dcm", "center": "A", "label": 0, "frame": 4,
             "x0": 16, "y0": 8, "x1": 40, "y1": 32}]  # fmt: skip
    extract(write_csv(tmp_path / "c.csv", rows), tmp_path / "w", frames=16, size=34)
    (rec,) = read_clips(tmp_path / "w")
    assert [int(rec[k]) for k in ("roi_x0", "roi_y0", "roi_x1", "roi_y1")] == [12, 4, 46, 38]
    assert (rec["n_frames"], rec["padded"], rec["pad_before"]) == ("10", "1", "3")
    clip = np.load(tmp_path / "w" / rec["clip_path"])
    crops = pattern(n, h, w)[:, 4:38, 12:46]
    np.testing.assert_array_equal(clip, crops[window_indices(0, 10, 3, 16)])
    np.testing.assert_array_equal(clip[0], crops[0])
    np.testing.assert_array_equal(clip[-1], crops[-1])


def test_resize_keeps_frame_order_and_grey_levels(tmp_path):
    # frames of constant grey 7t: any resize must give constant 7t, in order
    frames = np.repeat((7 * np.arange(20, dtype=np.uint8))[:, None, None], 48 * 64).reshape(
        20, 48, 64
    )
    write_dicom(tmp_path / "v.dcm", frames)
    rows = [{"patient_id": "P1", "video": "v.dcm", "center": "A", "label": 0, "frame": 10,
             "x0": 3, "y0": 5, "x1": 21, "y1": 30}]  # fmt: skip
    for size in (16, 64):  # shrinking (INTER_AREA) and enlarging (INTER_LINEAR)
        extract(write_csv(tmp_path / "c.csv", rows), tmp_path / f"w{size}", frames=8, size=size)
        clip = np.load(tmp_path / f"w{size}" / "clips" / "v_f00010.npy")
        assert clip.shape == (8, size, size)
        np.testing.assert_array_equal(clip, np.broadcast_to(frames[6:14, :1, :1], clip.shape))


def test_each_needed_frame_decoded_once(tmp_path, monkeypatch):
    import thyrovid.io

    decoded = []
    real_open = thyrovid.io.open_video

    def counting_open(path):
        video = real_open(path)
        real_frames = video.frames

        def frames(indices):
            decoded.extend(indices)
            return real_frames(indices)

        video.frames = frames
        return video

    monkeypatch.setattr(thyrovid.io, "open_video", counting_open)
    csv_path = tiny_cohort(tmp_path, n_patients=1, keys=(5, 12, 14))  # overlapping windows
    report = extract(csv_path, tmp_path / "w", frames=16, size=16, workers=1)
    assert report.extracted == 3
    assert sorted(decoded) == list(range(0, 22))  # union of 0-15, 4-19, 6-21, each once


def test_bad_rows_skipped_with_row_numbers_and_strict_stops(tmp_path):
    csv_path = tiny_cohort(tmp_path, n_patients=2, keys=(5,))
    rows = list(csv.DictReader(open(csv_path)))
    rows.append({**rows[0], "frame": "400"})  # row 3: beyond the 40-frame video
    rows.append({**rows[0], "x1": "70"})  # row 4: outside the 64 x 48 frame
    rows.append({**rows[1], "video": "videos/nope.dcm"})  # row 5: missing file
    (tmp_path / "videos" / "bad.dcm").write_bytes(b"not a dicom at all" * 20)
    rows.append({**rows[1], "video": "videos/bad.dcm"})  # row 6: will not open
    write_csv(csv_path, rows)
    report = extract(csv_path, tmp_path / "w", frames=8, size=16, workers=1)
    assert report.clips == 2 and report.rows == 6
    assert [s.split(":")[0] for s in report.skipped] == [
        f"cohort.csv row {r} (line {r + 1})" for r in (3, 4, 5, 6)
    ]
    assert "beyond the video" in report.skipped[0] and "outside" in report.skipped[1]
    assert "not found" in report.skipped[2]
    with pytest.raises(CohortError, match=r"row 5 \(line 6\).*not found"):
        extract(csv_path, tmp_path / "w2", frames=8, size=16, strict=True)


def test_cli_prints_json_summary_and_exit_codes(tmp_path, capsys):
    from thyrovid.cli import main

    csv_path = tiny_cohort(tmp_path, n_patients=2, keys=(5,))
    args = [
        "extract",
        str(csv_path),
        "--out",
        str(tmp_path / "w"),
        "--frames",
        "8",
        "--workers",
        "1",
    ]
    assert main([*args, "--size", "16", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["clips"] == summary["extracted"] == 2
    assert main([*args, "--size", "20"]) == 2  # parameters differ from the existing WORK
    assert "--overwrite" in capsys.readouterr().err
    assert main([*args, "--size", "20", "--overwrite"]) == 0


def test_extras_carried_and_no_dicom_identifiers(tmp_path):
    csv_path = tiny_cohort(tmp_path, n_patients=2, keys=(5,))
    extract(csv_path, tmp_path / "w", frames=8, size=16, workers=1)
    text = (tmp_path / "w" / "clips.csv").read_text()
    assert "Secret" not in text  # the fixture's PatientName
    recs = read_clips(tmp_path / "w")
    assert [r["site"] for r in recs] == ["lobe0", "lobe1"]
    assert [r["video_id"] for r in recs] == ["P000", "P001"]
    assert video_ids(["a/x.dcm", "b/x.dcm", "c/y"]) == {
        "a/x.dcm": "a_x",
        "b/x.dcm": "b_x",
        "c/y": "y",
    }


def test_rerun_reuses_and_reextracts_changed_or_broken_clips(tmp_path):
    csv_path = tiny_cohort(tmp_path, n_patients=2, keys=(5, 20))
    work = tmp_path / "w"
    assert extract(csv_path, work, frames=8, size=16, workers=1).extracted == 4
    with pytest.raises(UserError, match="frames=8"):
        extract(csv_path, work, frames=16, size=16)
    (work / "clips" / "P001_f00020.npy").write_bytes(b"")  # a broken file is not "done"
    rows = list(csv.DictReader(open(csv_path)))
    rows[0]["x1"] = "44"  # a changed box invalidates that clip
    write_csv(csv_path, rows)
    report = extract(csv_path, work, frames=8, size=16, workers=1)
    assert (report.extracted, report.reused) == (2, 2)


def _cache_bytes(work: Path) -> dict[str, bytes]:
    files = sorted(p for p in work.rglob("*") if p.is_file() and p.name != "extract.json")
    return {str(p.relative_to(work)): p.read_bytes() for p in files}


def test_sigkill_midway_then_rerun_equals_clean_run(tmp_path):
    csv_path = tiny_cohort(tmp_path, n_patients=6, keys=(5, 20))
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    extract(csv_path, clean, frames=16, size=32, workers=1)
    cmd = [sys.executable, "-m", "thyrovid", "extract", str(csv_path), "--out", str(killed),
           "--frames", "16", "--size", "32", "--workers", "2"]  # fmt: skip
    env = {**os.environ, "THYROVID_EXTRACT_DELAY_S": "0.3", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, start_new_session=True, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while len(list((killed / "clips").glob("*.npy"))) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # the CLI and its worker processes
    proc.wait()
    n_done = len(list((killed / "clips").glob("*.npy")))
    assert 3 <= n_done < 12 and not (killed / "clips.csv").exists()
    report = extract(csv_path, killed, frames=16, size=32, workers=1)
    assert report.reused >= 3 and report.clips == 12
    assert _cache_bytes(killed) == _cache_bytes(clean)  # also: no temporary files left


def test_nothing_to_do_rerun_under_2s_for_60_patients(tmp_path):
    csv_path = tiny_cohort(tmp_path, n_patients=60, n_frames=24, height=48, width=64)
    work = tmp_path / "w"
    assert extract(csv_path, work, frames=16, size=32, workers=1).extracted == 120
    t0 = time.perf_counter()
    report = extract(csv_path, work, frames=16, size=32, workers=2)
    seconds = time.perf_counter() - t0
    assert (report.extracted, report.reused) == (0, 120)
    assert seconds < 2.0, f"nothing-to-do rerun took {seconds:.2f} s"


def test_phantom_cohort_every_key_frame_gives_a_clip_and_splits_kept(tmp_path):
    pytest.importorskip("thyrovid.synth.synth")
    from thyrovid.cli import main

    out = tmp_path / "phantom"
    synth = ["synth", str(out), "--patients", "4", "--seed", "3", "--frames", "20:24",
             "--size", "120,160", "--workers", "1", "--quiet"]  # fmt: skip
    assert main(synth) == 0
    with open(out / "cohort.csv", newline="") as fh:
        cohort = list(csv.DictReader(fh))
    report = extract(out / "cohort.csv", tmp_path / "w", frames=16, size=64, workers=1)
    assert report.clips == len(cohort) and not report.skipped
    recs = read_clips(tmp_path / "w")
    for rec, row in zip(recs, cohort):
        assert (rec["patient_id"], rec["key_frame"], rec["split"]) == (
            row["patient_id"], row["frame"], row["split"],
        )  # fmt: skip
        assert np.load(tmp_path / "w" / rec["clip_path"], mmap_mode="r").shape == (16, 64, 64)
        assert np.load(tmp_path / "w" / rec["image_path"], mmap_mode="r").shape == (64, 64)


def test_two_worker_processes_write_the_same_bytes_as_one(tmp_path, monkeypatch):
    import thyrovid.clips.extract

    monkeypatch.setattr(
        thyrovid.clips.extract, "POOL_MIN_CLIPS", 0
    )  # use the pool even for 8 clips
    csv_path = tiny_cohort(tmp_path, n_patients=4, keys=(5, 20))
    extract(csv_path, tmp_path / "one", frames=16, size=32, workers=1)
    report = extract(csv_path, tmp_path / "two", frames=16, size=32, workers=2)
    assert report.extracted == 8
    assert _cache_bytes(tmp_path / "one") == _cache_bytes(tmp_path / "two")


def test_two_nodules_on_one_key_frame_and_shared_nodule_ids(tmp_path):
    write_dicom(tmp_path / "v.dcm", pattern(30, 48, 64))
    write_dicom(tmp_path / "w.dcm", pattern(30, 48, 64) + 1)  # another recording
    base = {"center": "A", "label": 0, "frame": 9, "x0": 4, "y0": 4, "x1": 12, "y1": 12}
    rows = [
        {**base, "patient_id": "P1", "nodule_id": "1", "video": "v.dcm"},
        {**base, "patient_id": "P1", "nodule_id": "2", "video": "v.dcm", "x0": 30, "x1": 40},
        {**base, "patient_id": "P1", "nodule_id": "2", "video": "v.dcm", "x0": 30, "x1": 40},
        {**base, "patient_id": "P2", "nodule_id": "1", "video": "w.dcm"},
    ]
    report = extract(write_csv(tmp_path / "c.csv", rows), tmp_path / "o", frames=8, size=16)
    assert [s.split(": ", 1)[1] for s in report.skipped] == [
        "same video, key frame and nodule as row 2"
    ]
    recs = read_clips(tmp_path / "o")
    assert [r["clip_id"] for r in recs] == ["v_f00009", "v_f00009_2", "w_f00009"]
    assert [r["nodule_id"] for r in recs] == ["P1:1", "2", "P2:1"]
