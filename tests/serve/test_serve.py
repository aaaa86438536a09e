"""`thyrovid serve`: the HTTP answer is `thyrovid predict`'s answer; bad input is a 400 line."""

from __future__ import annotations

import base64
import sys
import warnings

import cv2
import numpy as np
import pytest

from helpers import evaluated_clips, logit, pairs_of
from thyrovid.errors import UserError
from thyrovid.inference.predict import predict_video


@pytest.fixture(scope="module")
def client(tiny):
    pytest.importorskip("fastapi")
    pytest.importorskip("multipart")
    pytest.importorskip("httpx")
    with warnings.catch_warnings():  # starlette's note about httpx vs httpx2
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    from thyrovid.serve.serve import create_app

    return TestClient(create_app(tiny["run"]), base_url="http://127.0.0.1")  # a loopback Host


def _post(client, video, frames, boxes, cam=False):
    data = {"frame": [str(f) for f in frames], "box": boxes, "cam": str(cam).lower()}
    with open(video, "rb") as fh:
        return client.post("/predict", files={"file": ("case.dcm", fh)}, data=data)


def test_predict_endpoint_equals_predict_video(tiny, client):
    rows = evaluated_clips(tiny).head(2)
    rows = rows[rows["video"] == rows["video"].iloc[0]]
    video = tiny["phantom"] / rows["video"].iloc[0]
    pairs = pairs_of(rows)
    boxes = [",".join(f"{v:g}" for v in box) for _, box in pairs]
    answer = _post(client, video, [f for f, _ in pairs], boxes, cam=True)
    assert answer.status_code == 200
    got = answer.json()
    want = predict_video(tiny["run"], video, pairs)
    assert logit(got["prob"]) == pytest.approx(logit(want["prob"]), abs=1e-6)
    assert (got["decision"], got["threshold"]) == (want["decision"], want["threshold"])
    assert got["decision"] in ("malignant", "benign")
    png = base64.b64decode(got["clips"][0]["heatmap_png"])
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (2 * 64, 8 * 64, 3)
    assert "case.dcm" not in answer.text and "upload" not in answer.text


def test_bad_frame_is_400_with_one_line_and_no_temp_path(tiny, client):
    video = tiny["phantom"] / tiny["clips"]["video"].iloc[0]
    answer = _post(client, video, [999], ["10,10,30,30"])
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert "out of range" in error and "\n" not in error and "thyrovid-serve-" not in error


def test_page_and_info(tiny, client):
    page = client.get("/")
    assert page.status_code == 200 and "<form" in page.text and "predict" in page.text
    info = client.get("/info").json()
    assert info["preprocessing"]["frames"] == 16 and info["model"]["dims"] == 3


def test_missing_fastapi_is_one_clear_line(tiny, monkeypatch):
    from thyrovid.serve.serve import create_app

    monkeypatch.setitem(sys.modules, "fastapi", None)
    with pytest.raises(UserError, match=r"pip install thyrovid\[serve\]"):
        create_app(tiny["run"])
