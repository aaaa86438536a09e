"""`thyrovid export`: the ONNX graph gives PyTorch's (and evaluate's) probabilities."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from helpers import evaluated_clips, logit
from thyrovid.cli import main
from thyrovid.errors import UserError
from thyrovid.inference.export import export_onnx


def test_onnx_matches_pytorch_and_evaluate(tiny, tmp_path, capsys):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    out = tmp_path / "deploy" / "model.onnx"
    assert main(["export", str(tiny["run"]), "--out", str(out), "--check"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["check"]["max_abs_diff_logit"] < 1e-4
    assert summary["check"]["max_abs_diff_prob"] < 1e-4
    assert summary["check"]["batches"] == [1, 3]  # the batch axis is dynamic
    assert not [p.name for p in out.parent.iterdir() if p.name.startswith(".")]  # no temp left

    # A user running the ONNX file on an extracted clip gets evaluate's probability.
    side = json.loads((out.parent / "model.onnx.json").read_text())
    assert side["preprocessing"]["frames"] == 16 and side["preprocessing"]["size"] == 64
    rows = evaluated_clips(tiny).head(4)
    pixels = np.stack([np.load(tiny["work"] / p) for p in rows["clip_path"]])[:, None]
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    onnx_logit, prob = session.run(["logit", "prob"], {"pixels": pixels.astype(np.float32)})
    assert onnx_logit[:, 0] == pytest.approx(logit(rows["prob"]), abs=1e-4)
    assert prob[:, 0] == pytest.approx(rows["prob"].to_numpy(), abs=1e-4)


def test_missing_onnx_is_one_clear_line(tiny, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx -> ImportError
    with pytest.raises(UserError, match=r"pip install thyrovid\[onnx\]"):
        export_onnx(tiny["run"], tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()
