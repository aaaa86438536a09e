"""The workstation's JSON API: videos under --root, lazy frames, prediction = `thyrovid predict`,
annotate mode (cohort.csv, concurrent saves), reading mode (readers.csv for `thyrovid readers`),
a 200-request burst, and no DICOM identifier anywhere."""

from __future__ import annotations

import io
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest
from workstation_helpers import PLANTED, make_app

from helpers import logit
from thyrovid.cli import main
from thyrovid.cohort.schema import read_cohort
from thyrovid.inference.predict import predict_video
from thyrovid.io import open_video, to_gray

SEEN: list[bytes] = []  # every answer body of this module, checked for identifiers at the end


def _get(client, url, status=200):
    answer = client.get(url)
    SEEN.append(answer.content)
    assert answer.status_code == status, answer.text
    return answer


def _post(client, url, body, status=200):
    answer = client.post(url, json=body)
    SEEN.append(answer.content)
    assert answer.status_code == status, answer.text
    return answer.json()


def _open(client, station):
    return _post(client, "/api/videos/open", {"path": station["rel"]})


def test_a_video_under_root_opens_and_its_frames_are_the_decoded_frames(client, station):
    video = _open(client, station)
    with open_video(station["video"]) as v:
        assert (video["n_frames"], video["width"], video["height"]) == (
            v.info.n_frames, v.info.width, v.info.height)  # fmt: skip
        want = to_gray(v.frame(3))
    assert video["name"] == "clinic/scan_a.dcm"
    png = _get(client, f"/api/videos/{video['id']}/frames/3.png")
    assert png.headers["content-type"] == "image/png"
    got = cv2.imdecode(np.frombuffer(png.content, np.uint8), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(got if got.ndim == 2 else got[..., 0], want)
    jpg = _get(client, f"/api/videos/{video['id']}/frames/3.jpg")
    assert jpg.content[:2] == b"\xff\xd8"
    again = _open(client, station)
    assert again["id"] == video["id"]
    listed = _get(client, "/api/root").json()["videos"]
    assert "clinic/scan_a.dcm" in listed and any(v.startswith("study/case_") for v in listed)


@pytest.mark.parametrize(
    "path, words",
    [
        ("../", "outside the --root folder"),
        ("/etc/passwd", "relative to the --root folder"),
        ("clinic/../../station", "outside the --root folder"),
        ("nope.dcm", "no such file"),
        ("", "path: required (empty)"),
    ],  # fmt: skip
)
def test_a_path_outside_root_is_refused_with_one_line(client, path, words):
    error = _post(client, "/api/videos/open", {"path": path}, status=400)["error"]
    assert words in error and error.startswith("path") and "\n" not in error


def test_a_frame_out_of_range_or_an_unknown_video_is_404(client, station):
    video = _open(client, station)
    n = video["n_frames"]
    error = _get(client, f"/api/videos/{video['id']}/frames/{n}.png", 404).json()["error"]
    assert f"index {n} out of range" in error
    assert "no open video" in _get(client, "/api/videos/0000/frames/0.png", 404).json()["error"]


def test_predict_equals_thyrovid_predict_with_heatmaps_over_the_frames(client, station):
    video = _open(client, station)
    frame, box = station["frame"], station["box"]
    other = min(frame + 2, video["n_frames"] - 1)
    keys = [{"frame": frame, "box": box}, {"frame": other, "box": box}]
    got = _post(client, "/api/predict", {"video": video["id"], "keyframes": keys, "cam": True})
    want = predict_video(station["run"], station["video"], [(frame, box), (other, box)])
    assert logit(got["prob"]) == pytest.approx(logit(want["prob"]), abs=1e-6)
    assert [c["prob"] for c in got["clips"]] == pytest.approx([c["prob"] for c in want["clips"]])
    assert got["decision"] == want["decision"] and got["threshold"] == want["threshold"]
    assert "split" in got["threshold_source"] and got["margin"]["words"]
    assert got["prob_interval"]["method"] == "bootstrap of the 2 clips"
    clip = got["clips"][0]
    assert clip["frame_number"] == frame + 1 and frame in clip["indices"]
    assert len(clip["indices"]) == 16  # the run's clip length: one map per window frame
    png = _get(client, f"/api/predictions/{got['id']}/cam/0/{frame}.png")
    heat = cv2.imdecode(np.frombuffer(png.content, np.uint8), cv2.IMREAD_COLOR)
    x0, y0, x1, y1 = clip["roi"]
    assert heat.shape == (y1 - y0, x1 - x0, 3)
    outside = next(i for i in range(video["n_frames"]) if i not in clip["indices"])
    _get(client, f"/api/predictions/{got['id']}/cam/0/{outside}.png", 404)
    bar = cv2.imdecode(np.frombuffer(_get(client, "/api/colorbar.png").content, np.uint8), 1)
    assert bar.shape[1] == 256 and bar[:, 0].mean() < bar[:, -1].mean()  # dark -> bright


@pytest.mark.parametrize(
    "keys, words",
    [
        (None, "keyframes: draw a box"),
        ([{"frame": 999, "box": [1, 1, 9, 9]}], "keyframes[0].frame"),
        ([{"frame": 1, "box": [9, 1, 2, 9]}], "keyframes[0].box: need x1 > x0"),
        ([{"frame": 1, "box": "1,2"}], "keyframes[0].box: expected [x0, y0, x1, y1]"),
        ([{"frame": 1, "box": [1, 1, 900, 9]}], "keyframes[0].box"),
        ([{"frame": i, "box": [1, 1, 9, 9]} for i in range(11)], "at most 10"),
    ],  # fmt: skip
)
def test_bad_key_frames_are_400_naming_the_field(client, station, keys, words):
    video = _open(client, station)
    body = {"video": video["id"], **({"keyframes": keys} if keys is not None else {})}
    error = _post(client, "/api/predict", body, status=400)["error"]
    assert words in error and "\n" not in error


def test_an_upload_over_the_limit_is_413(station):
    from fastapi.testclient import TestClient

    small = TestClient(make_app(station, max_upload_mb=0, annotate=None, study=None,
                                readers_out=None), base_url="http://127.0.0.1")  # fmt: skip
    data = station["video"].read_bytes()
    for url in ("/api/videos", "/predict"):
        extra = {"data": {"frame": "1", "box": "1,1,9,9"}} if url == "/predict" else {}
        answer = small.post(url, files={"file": ("x.dcm", io.BytesIO(data))}, **extra)
        assert answer.status_code == 413 and "larger than" in answer.json()["error"]
    assert small.get("/api/info").json()["modes"] == {"root": True, "annotate": False,
                                                      "study": False}  # fmt: skip
    off = small.get("/api/study")
    assert off.status_code == 404 and off.json()["error"] == (
        "--study: this server was not started with --study")  # fmt: skip


def test_modes_that_need_another_option_say_which(station):
    from thyrovid.errors import UserError

    with pytest.raises(UserError, match="--annotate needs --root"):
        make_app(station, root=None)
    with pytest.raises(UserError, match="--study CASES and --readers-out READERS_CSV go together"):
        make_app(station, readers_out=None)


def test_an_upload_opens_and_predicts_without_its_file_name(client, station):
    data = station["video"].read_bytes()
    answer = client.post(
        "/api/videos", files={"file": ("Plantedname_Secretia.dcm", io.BytesIO(data))}
    )
    SEEN.append(answer.content)
    video = answer.json()
    assert answer.status_code == 200 and video["name"] == "uploaded video"
    keys = [{"frame": station["frame"], "box": station["box"]}]
    got = _post(client, "/api/predict", {"video": video["id"], "keyframes": keys, "cam": False})
    assert got["clips"][0]["has_cam"] is False
    error = _post(client, "/api/annotations", {"video": video["id"], "patient_id": "X",
                  "center": "A", "label": "benign", "keyframes": keys}, status=400)["error"]  # fmt: skip
    assert error.startswith("video: an uploaded video cannot go into cohort.csv")


def _annotation(video_id, patient, nodule, frames, box, label="malignant"):
    return {"video": video_id, "patient_id": patient, "nodule_id": nodule, "center": "site_a",
            "label": label, "keyframes": [{"frame": f, "box": box} for f in frames]}  # fmt: skip


def test_annotate_two_key_frames_writes_cohort_rows_that_read_back(client, station):
    video = _open(client, station)
    box = station["box"]
    saved = _post(client, "/api/annotations", _annotation(video["id"], "A1", "A1_n1", [4, 2], box))
    assert [r["frame"] for r in saved["written"]] == [2, 4]
    cohort = read_cohort(station["cohort_csv"], strict=True)
    mine = cohort.rows[cohort.rows["patient_id"] == "A1"]
    assert list(mine["frame"]) == [2, 4] and set(mine["label"]) == {1}
    assert [Path(p).resolve() for p in mine["video_path"]] == [station["video"].resolve()] * 2
    assert list(mine.iloc[0][["x0", "y0", "x1", "y1"]]) == box
    moved = [box[0] + 1, box[1], box[2] + 1, box[3]]  # saved again (a reloaded tab): replaced
    _post(client, "/api/annotations", _annotation(video["id"], "A1", "A1_n1", [2, 4, 6], moved))
    mine = read_cohort(station["cohort_csv"], strict=True).rows
    mine = mine[mine["patient_id"] == "A1"]
    assert list(mine["frame"]) == [2, 4, 6] and set(mine["x0"]) == {box[0] + 1}
    rows = _get(client, f"/api/annotations?video={video['id']}").json()["rows"]
    assert [r["frame"] for r in rows if r["patient_id"] == "A1"] == [2, 4, 6]
    bad = _annotation(video["id"], "A1", "A1_n1", [2], box, label="maybe")
    assert _post(client, "/api/annotations", bad, 400)["error"].startswith("label: 'maybe'")
    bad = {**_annotation(video["id"], "", "", [2], box)}
    assert _post(client, "/api/annotations", bad, 400)["error"] == "patient_id: required (empty)"


def test_concurrent_saves_from_many_tabs_lose_and_tear_nothing(client, station):
    video = _open(client, station)
    jobs = [_annotation(video["id"], f"C{i:02d}", f"C{i:02d}_n", [1, 3], station["box"])
            for i in range(40)]  # fmt: skip
    with ThreadPoolExecutor(8) as pool:
        codes = list(
            pool.map(lambda body: client.post("/api/annotations", json=body).status_code, jobs)
        )
    assert codes == [200] * 40
    rows = read_cohort(station["cohort_csv"], strict=True).rows
    mine = rows[rows["patient_id"].str.startswith("C")]
    assert len(mine) == 80 and not mine.duplicated(["patient_id", "frame"]).any()
    assert not list(station["cohort_csv"].parent.glob(".*.tmp-*"))


def _read_all(client, reader, group, flip=False):
    """Read every case: unaided, then (after the model's output) aided; returns the states."""
    state = _post(client, "/api/study/session", {"reader": reader, "group": group})
    states = [state]
    while state["step"] != "done":
        case = state["case"]
        if state["step"] == "unaided":
            _get(client, f"/api/study/model?reader={reader}&case={case}", 400)
        else:
            model = _get(client, f"/api/study/model?reader={reader}&case={case}").json()
            assert 0 <= model["prob"] <= 1 and model["margin"]["words"]
        score = (0.3 if flip else 0.7) if state["step"] == "unaided" else 0.6
        body = {"reader": reader, "group": group, "case": case, "modality": state["step"],
                "score": score, "decision": int(score >= 0.5)}  # fmt: skip
        state = _post(client, "/api/study/readings", body)
        states.append(state)
    return states


def test_a_reading_session_writes_readers_csv_that_thyrovid_readers_reads(client, station, capsys):
    first = _post(client, "/api/study/session", {"reader": "api_r1", "group": "junior"})
    assert first["step"] == "unaided" and first["n_cases"] == 4 and first["position"] == 1
    case = _get(client, f"/api/study/case?reader=api_r1&case={first['case']}").json()
    assert case["video"]["name"] == "case 1 of 4" and "truth" not in json.dumps(case)
    early = {"reader": "api_r1", "group": "junior", "case": first["case"], "modality": "aided",
             "score": 0.5, "decision": 1}  # fmt: skip
    assert (
        "unaided (without the model) first"
        in _post(client, "/api/study/readings", early, 400)["error"]
    )
    unaided = {**early, "modality": "unaided"}
    _post(client, "/api/study/readings", unaided)
    again = _post(client, "/api/study/readings", unaided, 400)["error"]
    assert "already has a unaided reading" in again
    resumed = _post(client, "/api/study/session", {"reader": "api_r1", "group": "junior"})
    assert (resumed["case"], resumed["step"]) == (first["case"], "aided")  # a closed tab resumes
    wrong = _post(client, "/api/study/session", {"reader": "api_r1", "group": "senior"}, 400)
    assert wrong["error"].startswith("group: reader api_r1 is already in group 'junior'")
    states = _read_all(client, "api_r1", "junior")
    assert states[-1]["step"] == "done"
    _read_all(client, "api_r2", "senior", flip=True)
    from thyrovid.serve.study import Study

    s = Study(station["cases"], station["base"] / "unused.csv", seed=3)
    assert first["case"] == s.order("api_r1")[0]  # each reader's own seeded order
    assert sorted(s.order("api_r1")) == sorted(s.order("api_r2")) == sorted(s.cases)
    only = station["readers_csv"]
    assert main(["readers", str(only), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n_cases"] == 4 and result["readers"] == ["api_r1", "api_r2"]


def test_a_burst_of_200_requests_16_at_a_time_loses_nothing(live, station):
    import httpx

    with httpx.Client(base_url=live, timeout=120) as http:
        video = http.post("api/videos/open", json={"path": station["rel"]}).json()
        n = video["n_frames"]
        key = [{"frame": station["frame"], "box": station["box"]}]

        def call(i: int):
            kind = i % 5
            if kind in (0, 1, 2):
                r = http.get(f"api/videos/{video['id']}/frames/{i % n}.{'png' if i % 2 else 'jpg'}")
            elif kind == 3:
                r = http.post(
                    "api/predict", json={"video": video["id"], "keyframes": key, "cam": i % 10 == 3}
                )
            else:
                r = http.post(
                    "api/annotations",
                    json=_annotation(video["id"], f"B{i:03d}", "n", [1, 2], station["box"]),
                )
            return kind, r.status_code, r.content

        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(call, range(200)))
    assert [code for _, code, _ in results] == [200] * 200
    probs = {json.loads(body)["prob"] for kind, _, body in results if kind == 3}
    assert len(probs) == 1  # the same answer 40 times, under concurrency
    SEEN.extend(body for _, _, body in results)
    rows = read_cohort(station["cohort_csv"], strict=True).rows
    burst = rows[rows["patient_id"].str.startswith("B")]
    assert len(burst) == 80 and burst["patient_id"].nunique() == 40
    assert not burst.duplicated(["patient_id", "frame"]).any()


def test_no_dicom_identifier_reaches_a_page_an_answer_or_a_file(client, station):
    from thyrovid.serve.serve import STATIC

    video = _open(client, station)
    SEEN.append(_get(client, "/").content)
    for name in ("app.js", "app.css"):
        SEEN.append(_get(client, f"/static/{name}").content)
    SEEN.append(_get(client, "/api/info").content)
    SEEN.append(_get(client, f"/api/videos/{video['id']}").content)
    files = [station["cohort_csv"], station["readers_csv"], *STATIC.iterdir()]
    blobs = SEEN + [p.read_bytes() for p in files if p.is_file()]
    assert len(SEEN) > 100
    for value in PLANTED.values():
        for form in {value, value.replace("^", " "), max(value.split("^"), key=len)}:
            assert not any(form.encode() in blob for blob in blobs), form
