"""The workstation's fixtures: a --root folder of phantom videos with planted DICOM identifiers,
a study's cases, the app, and the app served on a loopback port (for the browser and the burst).
"""

from __future__ import annotations

import socket
import threading
import time
import warnings

import pandas as pd
import pytest
from workstation_helpers import make_app, plant


def _serve_requirements() -> None:
    pytest.importorskip("fastapi")
    pytest.importorskip("multipart")
    pytest.importorskip("httpx")
    pytest.importorskip("uvicorn")


@pytest.fixture(scope="module")
def station(tiny, tmp_path_factory):
    """--root with planted copies of phantom videos, a study of 4 cases (2 benign, 2 malignant)
    and where cohort.csv and readers.csv go."""
    _serve_requirements()
    base = tmp_path_factory.mktemp("station")
    root = base / "videos"
    cohort = pd.read_csv(tiny["phantom"] / "cohort.csv", dtype=str)
    rows = []
    truth = cohort.groupby("patient_id")["label"].max()  # "0" < "1": any malignant nodule
    for label in ("0", "1"):
        for patient in sorted(truth.index[truth == label])[:2]:
            mine = cohort[cohort["patient_id"] == patient]
            first = mine[mine["label"] == label].iloc[0]
            name = f"case_{patient[-2:]}.dcm"  # pseudonymous names, no identifier in them
            plant(tiny["phantom"] / first["video"], root / "study" / name)
            rows.append({**first.to_dict(), "video": name})
    cases = root / "study" / "cases.csv"
    pd.DataFrame(rows).to_csv(cases, index=False)
    keep = cohort.iloc[0]
    video = plant(tiny["phantom"] / keep["video"], root / "clinic" / "scan_a.dcm")
    plant(tiny["phantom"] / cohort.iloc[-1]["video"], root / "clinic" / "scan_b.dcm")
    return {
        "base": base, "root": root, "video": video, "rel": "clinic/scan_a.dcm",
        "frame": int(keep["frame"]),
        "box": [int(float(keep[k])) for k in ("x0", "y0", "x1", "y1")],
        "cases": cases, "cohort_csv": base / "out" / "cohort.csv",
        "readers_csv": base / "out" / "readers.csv", "run": tiny["run"],
    }  # fmt: skip


@pytest.fixture(scope="module")
def app(station):
    return make_app(station)


@pytest.fixture(scope="module")
def client(app):
    with warnings.catch_warnings():  # starlette's note about httpx vs httpx2
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    return TestClient(app, base_url="http://127.0.0.1")  # a loopback Host (serve.security)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def live(app):
    """The app served by uvicorn on a loopback port, in a thread; yields its base URL."""
    import uvicorn

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/"
    server.should_exit = True
    thread.join(10)
