"""`thyrovid predict --engine onnx`: the exported model answers as torch does, without torch."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import thyrovid
from helpers import evaluated_clips, logit, pairs_of
from thyrovid.cli import main
from thyrovid.inference.predict import Predictor

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

# Runs `thyrovid predict` as a user's process does, then says which heavy modules it loaded.
SCRIPT = """
import json, sys
from thyrovid.cli import main
rc = main(sys.argv[1:])
print(json.dumps({"rc": rc, "torch": "torch" in sys.modules, "pandas": "pandas" in sys.modules}))
"""


@pytest.fixture(scope="module")
def exported(tiny, tmp_path_factory):
    """A copy of the tiny run with RUN/model.onnx written by `thyrovid export RUN`."""
    run = tmp_path_factory.mktemp("onnx_engine") / "run"
    shutil.copytree(tiny["run"], run)
    assert main(["export", str(run)]) == 0  # no --out: into the run folder
    assert (run / "model.onnx").is_file() and (run / "model.onnx.json").is_file()
    return run


def _case(tiny):
    rows = evaluated_clips(tiny)
    video_id = rows["video_id"].value_counts().index[0]  # the video with most key frames
    mine = rows[rows["video_id"] == video_id]
    args = [str(tiny["phantom"] / mine["video"].iloc[0])]
    for frame, box in pairs_of(mine):
        args += ["--frame", str(frame), "--box", ",".join(f"{v:g}" for v in box)]
    return mine, args


def _subprocess_predict(args: list[str]) -> tuple[dict, dict, str]:
    """(printed JSON result, modules loaded, stderr) of `thyrovid predict ARGS --json`."""
    src = str(Path(thyrovid.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    env["OMP_NUM_THREADS"] = "1"
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, "predict", *args, "--json"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    *answer, modules = proc.stdout.strip().splitlines()
    return json.loads("\n".join(answer)), json.loads(modules), proc.stderr


def test_onnx_engine_imports_no_torch_and_answers_as_torch(tiny, exported, capsys):
    mine, args = _case(tiny)
    got, modules, _ = _subprocess_predict([str(exported), *args, "--engine", "onnx"])
    assert modules["rc"] == 0
    assert not modules["torch"], "predict --engine onnx imported torch"
    assert not modules["pandas"], "predict --engine onnx imported pandas (a second of start-up)"
    assert got["engine"] == "onnx"

    assert main(["predict", str(exported), *args, "--engine", "torch", "--json"]) == 0
    want = json.loads(capsys.readouterr().out)
    assert want["engine"] == "torch"
    assert got["prob"] == pytest.approx(want["prob"], abs=1e-4)
    assert logit(got["prob"]) == pytest.approx(logit(want["prob"]), abs=1e-4)
    assert got["decision"] == want["decision"] and got["decision"] in ("malignant", "benign")
    assert got["threshold"] == want["threshold"] is not None
    for a, b, row in zip(got["clips"], want["clips"], mine.itertuples()):
        assert (a["frame"], a["roi"]) == (b["frame"], b["roi"])
        assert logit(a["prob"]) == pytest.approx(logit(row.prob), abs=1e-4)  # = evaluate's


def test_auto_takes_the_export_and_times_each_stage(tiny, exported, capsys):
    _, args = _case(tiny)
    assert main(["predict", str(exported), *args, "--timing"]) == 0
    captured = capsys.readouterr()
    assert "P(malignant)" in captured.out
    (line,) = [x for x in captured.err.splitlines() if x.startswith("timing:")]
    for stage in ("load", "read", "crop", "model"):
        assert f"{stage} " in line
    assert "onnxruntime" in line and "threads" in line
    # The run never exported stays on torch, silently.
    assert main(["predict", str(tiny["run"]), *args, "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["engine"] == "torch" and "note:" not in captured.err


def test_tta_and_cam_on_the_onnx_engine(tiny, exported):
    mine, _ = _case(tiny)
    video = tiny["phantom"] / mine["video"].iloc[0]
    onnx = Predictor(exported, engine="onnx", tta=4).predict(video, pairs_of(mine), cam=True)
    torch_ = Predictor(exported, engine="torch", tta=4).predict(video, pairs_of(mine))
    assert onnx["engine"] == "onnx"
    assert logit(onnx["prob"]) == pytest.approx(logit(torch_["prob"]), abs=1e-4)
    assert onnx["clips"][0]["montage"].shape == (2 * 64, 8 * 64, 3)  # Grad-CAM through torch


def test_a_copied_run_keeps_its_export_a_retrained_one_does_not(tiny, exported, tmp_path, capsys):
    from safetensors.torch import load_file, save_file

    _, args = _case(tiny)
    copy = tmp_path / "copied"
    shutil.copytree(exported, copy, copy_function=shutil.copy)  # new mtimes, same weights
    assert Predictor(copy).engine == "onnx"

    weights = load_file(str(copy / "model.safetensors"))
    name = next(k for k, v in weights.items() if v.is_floating_point())
    weights[name] = weights[name] + 1.0  # as if the run went on training after the export
    save_file(weights, str(copy / "model.safetensors"))
    assert main(["predict", str(copy), *args, "--engine", "onnx"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "model.onnx was exported from other weights" in err[0], err
    assert "thyrovid export" in err[0]
    assert main(["predict", str(copy), *args, "--json"]) == 0  # auto: torch, with a note
    captured = capsys.readouterr()
    assert json.loads(captured.out)["engine"] == "torch"
    assert "note:" in captured.err and "other weights" in captured.err


def test_an_export_onnxruntime_cannot_load_stops_the_run_in_one_line(
    tiny, exported, tmp_path, capsys
):
    """The session loads in the background while videos are read; its failure is the run's."""
    rows = evaluated_clips(tiny)
    boxes = tmp_path / "boxes.csv"
    boxes.write_text(
        "video,frame,x0,y0,x1,y1\n"
        + "".join(
            f"{tiny['phantom'] / r.video},{r.key_frame},{r.x0:g},{r.y0:g},{r.x1:g},{r.y1:g}\n"
            for r in rows.drop_duplicates("video_id").head(2).itertuples()
        )
    )
    broken = tmp_path / "broken"
    shutil.copytree(exported, broken, copy_function=shutil.copy)
    (broken / "model.onnx").write_bytes(b"not an onnx graph" * 64)
    assert main(["predict", str(broken), "--boxes", str(boxes), "--engine", "onnx"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "model.onnx: onnxruntime cannot load it" in err[0], err
    assert "skipped" not in err[0] and "export again" in err[0]


def test_onnx_engine_needs_an_export_and_the_cpu(tiny, capsys):
    _, args = _case(tiny)
    assert main(["predict", str(tiny["run"]), *args, "--engine", "onnx"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "model.onnx: not found" in err[0] and "thyrovid export" in err[0]
    assert main(["predict", str(tiny["run"]), *args, "--engine", "onnx", "--device", "cuda"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "runs on the CPU" in err[0], err


def test_serve_uses_the_export(tiny, exported):
    pytest.importorskip("fastapi")
    pytest.importorskip("multipart")
    pytest.importorskip("httpx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    from thyrovid.serve.serve import create_app

    mine, _ = _case(tiny)
    client = TestClient(create_app(exported), base_url="http://127.0.0.1")
    assert client.get("/info").json()["engine"] == "onnx"
    pairs = pairs_of(mine)
    data = {
        "frame": [str(f) for f, _ in pairs],
        "box": [",".join(f"{v:g}" for v in b) for _, b in pairs],
    }
    with open(tiny["phantom"] / mine["video"].iloc[0], "rb") as fh:
        answer = client.post("/predict", files={"file": ("case.dcm", fh)}, data=data)
    assert answer.status_code == 200 and answer.json()["engine"] == "onnx"
    want = Predictor(exported, engine="torch").predict(
        tiny["phantom"] / mine["video"].iloc[0], pairs
    )
    assert logit(answer.json()["prob"]) == pytest.approx(logit(want["prob"]), abs=1e-4)
