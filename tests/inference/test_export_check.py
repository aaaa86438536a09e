"""`thyrovid export --check` judges the logit: on a saturated model P(malignant) says nothing."""

from __future__ import annotations

from thyrovid.cli import main
from thyrovid.inference import export as export_module


def _fake_export(check: dict):
    def export_onnx(*args, **kwargs):
        return {"onnx": "model.onnx", "check": {"batches": [1, 3], **check}}

    return export_onnx


def test_a_saturated_models_logit_difference_fails_the_check(monkeypatch, capsys, tmp_path):
    # P = 1 - 1e-30 on both sides: P differs by 7.8e-31 although the logits differ by 2
    saturated = {
        "max_abs_diff_logit": 2.0,
        "max_rel_diff_logit": 0.03,
        "max_abs_diff_prob": 7.8e-31,
    }
    monkeypatch.setattr(export_module, "export_onnx", _fake_export(saturated))
    assert main(["export", str(tmp_path), "--out", str(tmp_path / "m.onnx"), "--check"]) == 1
    err = capsys.readouterr().err
    assert (
        "logit differs by at most 2 (0.03 relative to max(1, |logit|)); P(malignant) by 7.8e-31"
        in err
    )
    assert "onnxruntime logit differs from PyTorch by 0.03 (relative) > --atol 0.0001" in err


def test_matching_logits_pass_and_the_difference_is_reported(monkeypatch, capsys, tmp_path):
    close = {"max_abs_diff_logit": 3e-6, "max_rel_diff_logit": 3e-7, "max_abs_diff_prob": 1e-7}
    monkeypatch.setattr(export_module, "export_onnx", _fake_export(close))
    assert main(["export", str(tmp_path), "--out", str(tmp_path / "m.onnx"), "--check"]) == 0
    assert (
        "check: onnxruntime vs PyTorch: logit differs by at most 3e-06" in capsys.readouterr().err
    )
