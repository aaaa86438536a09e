"""The scan sector: estimated from the pixels of convex-probe fans, masked out of clips."""

from __future__ import annotations

import json

import numpy as np
import pytest

from helpers import read_clips, write_csv
from thyrovid.cli import main
from thyrovid.io import open_video
from thyrovid.io.sector import estimate_sector, iou, video_sector
from thyrovid.synth.convex import TEXT_LEVEL, write_convex_dicom


@pytest.mark.parametrize("regions", [True, False], ids=["with-regions", "pixels-only"])
def test_estimated_sector_matches_the_written_fan(tmp_path, regions):
    path = tmp_path / "fan.dcm"
    fan, text = write_convex_dicom(path, regions=regions, seed=3)
    with open_video(path) as video:
        assert (video.info.region is not None) == regions
        sector = video_sector(video)
    assert sector.source == "pixels"
    assert iou(sector.mask, fan) >= 0.95
    assert not (sector.mask & text).any()  # text is static: never part of the sector
    ys, xs = np.nonzero(fan)
    assert sector.box == pytest.approx((xs.min(), ys.min(), xs.max() + 1, ys.max() + 1), abs=2)


def test_a_still_image_has_no_estimate():
    frame = np.random.default_rng(0).integers(0, 255, (48, 64), dtype=np.uint8)
    assert estimate_sector(np.stack([frame] * 8)) is None
    assert estimate_sector(frame[None]) is None


def _cohort(tmp_path, box):
    """One convex video (no SequenceOfUltrasoundRegions) and one row boxed at `box`."""
    (tmp_path / "videos").mkdir()
    write_convex_dicom(tmp_path / "videos" / "fan.dcm", regions=False, seed=1)
    row = {"patient_id": "P0", "video": "videos/fan.dcm", "center": "A", "label": 1,
           "frame": 12, "x0": box[0], "y0": box[1], "x1": box[2], "y1": box[3]}  # fmt: skip
    return write_csv(tmp_path / "cohort.csv", [row])


def test_mask_outside_sector_leaves_no_text_pixel_in_the_clip(tmp_path):
    # (20, 24, 52, 56) x 1.5 = (12, 16, 60, 64): square, inside the fan's rectangle, over the
    # "12MHz" burned into the black wedge; --size 48 keeps the crop's pixels unresampled.
    cohort = _cohort(tmp_path, (20, 24, 52, 56))
    from thyrovid.synth.convex import convex_frames

    _, fan, text = convex_frames(seed=1)  # the masks of the video just written
    text_crop = text[16:64, 12:60]
    assert text_crop.sum() > 20
    base = ["extract", str(cohort), "--frames", "16", "--size", "48", "--workers", "1"]
    assert main([*base, "--out", str(tmp_path / "plain")]) == 0
    plain = np.load(
        tmp_path / "plain" / "clips" / f"{read_clips(tmp_path / 'plain')[0]['clip_id']}.npy"
    )
    assert (plain[:, text_crop] > TEXT_LEVEL - 60).mean() > 0.9  # the text is in a plain clip

    assert main([*base, "--out", str(tmp_path / "masked"), "--mask-outside-sector"]) == 0
    rec = read_clips(tmp_path / "masked")[0]
    assert (rec["roi_x0"], rec["roi_y0"], rec["roi_x1"], rec["roi_y1"]) == ("12", "16", "60", "64")
    assert rec["sector_masked"] == "1" and rec["sector_source"] == "pixels"
    clip = np.load(tmp_path / "masked" / "clips" / f"{rec['clip_id']}.npy")
    assert clip.shape == (16, 48, 48)
    assert (clip[:, text_crop] == 0).all()  # no text pixel left
    assert (clip[:, ~fan[16:64, 12:60]] == 0).mean() > 0.97  # nor much of the black wedge's
    assert json.loads((tmp_path / "masked" / "extract.json").read_text())["mask_outside_sector"]


def test_check_reports_a_box_outside_the_estimated_sector(tmp_path):
    cohort = _cohort(tmp_path, (0, 150, 10, 160))  # bottom-left corner: black, no fan
    code = main(["check", str(cohort), "--frames", "16", "--out", str(tmp_path / "c"),
                 "--workers", "1"])  # fmt: skip
    assert code == 1
    report = json.loads((tmp_path / "c" / "check.json").read_text())
    kinds = {(p["row"], p["kind"]) for p in report["problems"] if p["severity"] == "error"}
    assert (1, "box_outside_sector") in kinds
    assert report["videos_table"][0]["sector_source"] == "pixels"
