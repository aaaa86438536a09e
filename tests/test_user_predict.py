"""A clinician using a trained run on new data: predict, cam, export, serve, as a user meets them."""

from __future__ import annotations

import pytest

from test_infer import build_tiny_run, evaluated_clips
from thyrovid.cli import main


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_tiny_run(tmp_path_factory)


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
