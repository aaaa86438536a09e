"""Grad-CAM: shapes and normalisation, that the map follows the evidence, localisation scores,
and the `thyrovid cam` command on a trained run with phantom-style masks."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from helpers import make_work_dir
from thyrovid.explain.gradcam import grad_cam, localisation_scores
from thyrovid.explain.overlay import montage, overlay


class _FocusNet(nn.Module):
    """conv (identity) -> relu -> mean: the logit is the mean brightness, so the evidence for
    'malignant' is wherever the input is bright. A correct Grad-CAM must peak there."""

    def __init__(self, dims: int):
        super().__init__()
        conv = nn.Conv3d if dims == 3 else nn.Conv2d
        self.conv = conv(1, 1, 3, padding=1, bias=False)
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.weight[(0, 0, *([1] * dims))] = 1.0
        self.cam_layer = nn.ReLU()

    def forward(self, x):
        return self.cam_layer(self.conv(x)).flatten(1).mean(1, keepdim=True)


@pytest.mark.parametrize("method", ["gradcam", "gradcam++"])
def test_map_peaks_on_the_bright_focus_in_3d(method):
    x = torch.zeros(2, 1, 8, 32, 32)
    x[0, 0, 5, 10, 20] = 1.0  # one focus, visible in frame 5 only
    x[1, 0, 2, 25, 4] = 1.0
    res = grad_cam(_FocusNet(3), x, method=method)
    assert [r.cam.shape for r in res] == [(8, 32, 32), (8, 32, 32)]
    for r, where in zip(res, [(5, 10, 20), (2, 25, 4)]):
        assert r.cam.max() == pytest.approx(1.0)
        assert r.cam.min() >= 0.0
        assert np.unravel_index(np.argmax(r.cam), r.cam.shape) == where
        assert r.prob == pytest.approx(torch.sigmoid(torch.tensor(r.logit)).item())


def test_map_in_2d_has_the_image_shape():
    x = torch.zeros(1, 1, 24, 40)
    x[0, 0, 3, 30] = 2.0
    (res,) = grad_cam(_FocusNet(2), x)
    assert res.cam.shape == (24, 40)
    assert np.unravel_index(np.argmax(res.cam), res.cam.shape) == (3, 30)


def test_a_real_network_gives_a_finite_map_of_the_clip_shape():
    from thyrovid.models import build_model

    torch.manual_seed(0)
    model = build_model("resnet50", dims=3, width=0.125, input_frames=16)
    x = torch.randn(1, 1, 16, 64, 64)
    (res,) = grad_cam(model, x)
    assert res.cam.shape == (16, 64, 64)
    assert np.isfinite(res.cam).all() and res.cam.max() <= 1.0 + 1e-6
    # the time axis survives (1,1,2,2,2): the map is not the same in every frame
    per_frame = res.cam.reshape(16, -1).sum(1)
    assert per_frame.max() > per_frame.min()


def test_localisation_scores_known_numbers():
    cam = np.zeros((2, 10, 10), np.float32)
    mask = np.zeros((2, 10, 10), bool)
    mask[1, 4:6, 4:6] = True  # 4 of 200 voxels
    cam[1, 5, 5] = 1.0
    cam[0, 0, 0] = 1.0  # half the energy off the mask
    s = localisation_scores(cam, mask, dilate=0)
    assert s["mask_fraction"] == pytest.approx(4 / 200)
    assert s["energy_in_mask"] == pytest.approx(0.5)
    assert s["energy_ratio"] == pytest.approx(0.5 / (4 / 200))
    assert s["pointing_hit"] in (0.0, 1.0)
    empty = localisation_scores(cam, np.zeros_like(mask))
    assert np.isnan(empty["energy_ratio"])


def test_overlay_and_montage_shapes():
    clip = np.random.default_rng(0).integers(0, 255, (8, 16, 20), dtype=np.uint8)
    cam = np.zeros((8, 16, 20), np.float32)
    assert overlay(clip, cam).shape == (8, 16, 20, 3)
    assert montage(clip, cam, n=4).shape == (32, 80, 3)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from thyrovid.config import TrainConfig
    from thyrovid.training.train import train

    root = tmp_path_factory.mktemp("cam")
    work = make_work_dir(root / "work", n_patients=8, frames=16, size=32)
    work = root / "work" if work is None else work
    config = TrainConfig(
        arch="resnet50", dims=3, width=0.125, epochs=1, batch_size=8, device="cpu", seed=0
    )
    run = train(work, root / "run", config)
    return root, work, run


def test_cam_command_writes_maps_and_scores_against_masks(tiny_run):
    from thyrovid.cli import main

    root, work, run = tiny_run
    clips = pd.read_csv(work / "clips.csv")
    # phantom-style truth: a calcification mask per "video", in frame pixels
    phantom = root / "phantom"
    (phantom / "masks").mkdir(parents=True)
    clips = clips.assign(
        video_id=clips["clip_id"],
        first_frame=0,
        pad_before=0,
        n_frames=16,
        key_frame=8,
        roi_x0=0,
        roi_y0=0,
        roi_x1=32,
        roi_y1=32,
    )
    clips.to_csv(work / "clips.csv", index=False)
    for vid in clips["video_id"]:
        calc = np.zeros((16, 32, 32), bool)
        calc[6:9, 14:17, 14:17] = True
        np.savez_compressed(phantom / "masks" / f"{vid}.npz", calc=calc)
    out = root / "cam_out"
    code = main(
        [
            "cam",
            str(run),
            "--work",
            str(work),
            "--split",
            "val",
            "-n",
            "3",
            "--truth",
            str(phantom),
            "--out",
            str(out),
        ]
    )
    assert code == 0
    table = pd.read_csv(out / "cam.csv")
    assert len(table) == 3
    assert {"energy_ratio", "pointing_hit", "prob"} <= set(table.columns)
    for cid in table["clip_id"]:
        cam = np.load(out / f"{cid}.npy")
        assert cam.shape == (16, 32, 32)
        assert (out / f"{cid}.png").stat().st_size > 0
        assert (out / f"{cid}.avi").stat().st_size > 0
    assert not list(out.glob("*.tmp*"))


def test_cam_command_unknown_clip_is_one_line(tiny_run, capsys):
    from thyrovid.cli import main

    root, work, run = tiny_run
    assert main(["cam", str(run), "--work", str(work), "--clips", "nope"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nope" in err[0]


def test_cam_summary_is_json(tiny_run, capsys):
    from thyrovid.cli import main

    root, work, run = tiny_run
    assert (
        main(
            [
                "cam",
                str(run),
                "--work",
                str(work),
                "--split",
                "val",
                "-n",
                "1",
                "--out",
                str(root / "c2"),
            ]
        )
        == 0
    )
    summary = json.loads(capsys.readouterr().out)
    assert summary["clips"] == 1


def test_an_all_zero_map_is_warned_and_a_real_one_is_not(tiny_run, capsys, monkeypatch):
    from thyrovid.cli import main
    from thyrovid.explain import cam as cam_module
    from thyrovid.explain.gradcam import CamResult

    root, work, run = tiny_run
    real = cam_module.grad_cam
    calls = []

    def first_map_empty(*args, **kwargs):
        out = real(*args, **kwargs)
        calls.append(1)
        if len(calls) == 1:  # a network whose evidence never reaches the layer: zeros
            return [CamResult(np.zeros_like(r.cam), r.logit, r.prob) for r in out]
        return out

    monkeypatch.setattr(cam_module, "grad_cam", first_map_empty)
    out = root / "cam_empty"
    args = ["cam", str(run), "--work", str(work), "--split", "val", "-n", "2", "--out", str(out)]
    assert main(args) == 0
    err = capsys.readouterr().err
    table = pd.read_csv(out / "cam.csv", keep_default_na=False)
    first, second = table["clip_id"]
    assert f"warning: clip {first}: the Grad-CAM map is all zeros (max 0.0)" in err
    assert f"clip {second}:" not in err
    assert table.loc[0, "cam_max"] == 0.0 and table.loc[1, "cam_max"] > 0
    assert table.loc[0, "warning"] and not table.loc[1, "warning"]
