"""The report's Grad-CAM section: colour bars, phantom-only columns, empty maps flagged."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from thyrovid.report.report import build_report

TRUTH = ("Energy in mask", "Mask fraction", "Energy ratio", "Pointing hit")


def cam_folder(root, truth: bool, empty=("C2",), columns_kept=True):
    """A `thyrovid cam --out` folder of three clips; `empty` clips have an all-zero map."""
    root.mkdir(parents=True)
    ids = ["C1", "C2", "C3"]
    df = pd.DataFrame({"clip_id": ids, "label": [1, 0, 1], "prob": [0.8, 0.3, 0.6],
                       "cam_max": [0.0 if c in empty else 0.42 for c in ids],
                       "warning": [f"{c}: the heatmap is all zeros" if c in empty else ""
                                   for c in ids]})  # fmt: skip
    if truth:
        df = df.assign(energy_in_mask=[0.5, 0.1, 0.4], mask_fraction=[0.1, 0.1, 0.2],
                       energy_ratio=[5.0, 1.0, 2.0], pointing_hit=[1.0, 0.0, 1.0])  # fmt: skip
    elif columns_kept:  # cam on real data: the columns there, empty
        df = df.assign(energy_in_mask=np.nan, mask_fraction=np.nan, energy_ratio=np.nan,
                       pointing_hit=np.nan)  # fmt: skip
    df.to_csv(root / "cam.csv", index=False)
    for c in ids:
        Image.fromarray(np.full((16, 64, 3), 90, np.uint8)).save(root / f"{c}.png")
    return root


def gradcam_html(tmp_path, **kw) -> str:
    out = build_report(cam=cam_folder(tmp_path / "cam", **kw), out=tmp_path / "r.html")
    page = out.read_text()
    return page[page.index('id="gradcam"') :]


@pytest.mark.parametrize("columns_kept", [True, False])
def test_real_data_shows_no_phantom_columns(tmp_path, columns_kept):
    page = gradcam_html(tmp_path, truth=False, columns_kept=columns_kept)
    assert not any(h in page for h in TRUTH)
    assert "<td>NA</td>" not in page and "calcification" not in page


def test_phantom_truth_shows_its_columns(tmp_path):
    page = gradcam_html(tmp_path, truth=True)
    assert all(f"<th>{h}</th>" in page for h in TRUTH)
    assert "median energy ratio 2.000" in page


def test_every_heatmap_has_a_colour_bar(tmp_path):
    page = gradcam_html(tmp_path, truth=False, empty=())
    assert page.count('<div class="heat"><figure>') == 3
    assert page.count('class="cbar"') == 3 and "linear-gradient(#fcffa4" in page
    assert "1: the clip&#x27;s maximum" in page and "0: none" in page
    assert "Empty heatmaps" not in page and "EMPTY" not in page


def test_an_empty_map_is_flagged_on_the_page(tmp_path):
    page = gradcam_html(tmp_path, truth=False, empty=("C2",))
    box = page[page.index('<div class="limits">') :]
    assert "Empty heatmaps" in box and "C2: the heatmap is all zeros" in box and "C2: C2" not in box
    assert page.count("EMPTY (all zeros)") == 1  # the table's Map column
    assert "C2: benign, P(malignant) 0.300. EMPTY MAP:" in page  # the caption
    assert page.count("empty map: all 0") == 1  # beside its colour bar


def test_an_empty_map_is_flagged_by_cam_max_alone(tmp_path):
    """A cam.csv whose warning column is empty still says so when cam_max is 0."""
    root = cam_folder(tmp_path / "cam", truth=False, empty=())
    df = pd.read_csv(root / "cam.csv")
    df.loc[0, "cam_max"] = 0.0
    df.to_csv(root / "cam.csv", index=False)
    page = build_report(cam=root, out=tmp_path / "r.html").read_text()
    assert "C1: the heatmap is all zeros (cam_max 0)" in page
