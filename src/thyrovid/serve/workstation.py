"""The clinician's workstation: the JSON API under the page (`static/index.html`, `app.js`).

Endpoints (all JSON unless an image; errors answer {"error": one line naming the field} with
400, 404 for an unknown video/prediction/frame or a mode the server was not started in, 413 for
an upload over `--max-upload-mb`):

    GET  /api/info                     run, model, preprocessing, threshold (+ source, band),
                                       modes (root, annotate, study), max_key_frames
    GET  /api/root                     {"root": bool, "videos": [paths under --root], "truncated"}
    POST /api/videos/open              {"path": "rel/path.dcm"} (under --root) -> a video
    POST /api/videos                   multipart `file` -> a video
    GET  /api/videos/{id}              a video: id, name, source, format, n_frames, width,
                                       height, channels, fps, region
    GET  /api/videos/{id}/frames/{i}.jpg | .png     frame i (0-based), decoded on demand
    POST /api/predict                  {"video": id, "keyframes": [{"frame": i, "box": [x0, y0,
                                       x1, y1]}, ...] (1-10), "cam": true} -> prob (video, soft
                                       vote), decision, threshold, threshold_source, margin,
                                       prob_interval, warnings, notes, clips (per key frame:
                                       frame, frame_number (1-based), box, roi, prob, indices
                                       (the video frames of the window), has_cam), id
    GET  /api/predictions/{id}/cam/{clip}/{i}.png   the Grad-CAM of clip `clip` at video frame
                                       i, coloured (inferno) and sized to the clip's ROI
    GET  /api/colorbar.png             the colour bar of those maps (0 left, 1 right)
    GET  /api/annotations?video=id     (--annotate) this video's rows already in cohort.csv
    POST /api/annotations              (--annotate) {"video", "patient_id", "nodule_id",
                                       "center", "label", "split", "keyframes"} -> written rows
    GET  /api/study                    (--study) n_cases, scale, modalities
    POST /api/study/session            {"reader", "group"} -> the reader's state (next case, step)
    GET  /api/study/case?reader=&case= the case's video (opened) and position
    POST /api/study/readings           {"reader", "group", "case", "modality", "score",
                                       "decision"} -> the new state
    GET  /api/study/model?reader=&case=   the model's output, once the unaided reading is saved

Predictions go through `Predictor.predict` (the same as `thyrovid predict`), one at a time.
Nothing here returns a DICOM header field, an upload's file name or a server-side path.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from typing import Annotated

import numpy as np
from fastapi import Body, File, UploadFile  # imported by serve.create_app once fastapi is found

from thyrovid.errors import UserError
from thyrovid.serve.annotate import MAX_KEY_FRAMES, key_frames, text_field
from thyrovid.serve.videos import NotFound, TooLarge, VideoStore

KEEP_PREDICTIONS = 32  # predictions whose heatmaps stay available to the page
FORMATS = {"jpg": "image/jpeg", "png": "image/png"}


class Disabled(NotFound):
    """A mode the server was not started in."""


def _png(image: np.ndarray) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".png", image)
    if not ok:  # pragma: no cover
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


def colour(heat: np.ndarray) -> np.ndarray:
    """[0, 1] map -> BGR uint8 with the inferno map (as `thyrovid.explain.overlay.overlay`)."""
    import cv2

    return cv2.applyColorMap(np.uint8(np.clip(heat, 0, 1) * 255), cv2.COLORMAP_INFERNO)


def window(clip: dict, prep) -> list[int]:
    """The video frame of each of a clip's window positions (as `thyrovid.inference.newvideo`)."""
    from thyrovid.clips.geometry import window_indices

    if prep.dims != 3:
        return [int(clip["frame"])]
    return window_indices(clip["first_frame"], clip["n_frames"], clip["pad_before"], prep.frames)


class Predictions:
    """The last KEEP_PREDICTIONS predictions' heatmaps, by id."""

    def __init__(self):
        self._lock = threading.Lock()
        self._items: OrderedDict[str, list[dict]] = OrderedDict()

    def add(self, clips: list[dict]) -> str:
        pid = uuid.uuid4().hex[:16]
        with self._lock:
            self._items[pid] = clips
            while len(self._items) > KEEP_PREDICTIONS:
                self._items.popitem(last=False)
        return pid

    def cam_png(self, pid: str, clip: int, index: int) -> bytes:
        import cv2

        with self._lock:
            clips = self._items.get(pid)
        if clips is None:
            raise NotFound(f"prediction: no prediction {pid!r} (predict again)")
        if not 0 <= clip < len(clips) or clips[clip].get("heatmap") is None:
            raise NotFound(f"clip: prediction {pid} has no heatmap for clip {clip}")
        item = clips[clip]
        if index not in item["indices"]:
            raise NotFound(f"frame: index {index} is outside clip {clip}'s window")
        heat = item["heatmap"][item["indices"].index(index)]
        x0, y0, x1, y1 = item["roi"]
        return _png(cv2.resize(colour(heat), (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR))


def public_prediction(result: dict, prep, predictions: Predictions) -> dict:
    """A `Predictor.predict` result as the page gets it: no arrays, no paths; heatmaps by id."""
    clips, kept = [], []
    for c in result["clips"]:
        indices = window(c, prep)
        heat = c.get("heatmap")
        kept.append({"roi": c["roi"], "indices": indices, "heatmap": heat})
        clips.append({
            "frame": c["frame"], "frame_number": c["frame"] + 1, "box": c["box"],
            "roi": c["roi"], "prob": c["prob"], "first_frame": c["first_frame"],
            "n_frames": c["n_frames"], "pad_before": c["pad_before"], "indices": indices,
            "has_cam": heat is not None,
        })  # fmt: skip
    keep = ("prob", "decision", "threshold", "threshold_source", "vote", "margin",
            "prob_interval", "warnings")  # fmt: skip
    out = {k: result.get(k) for k in keep}
    path, name = str(result.get("video", "")), _name(result)

    def hide(text) -> str:  # the server-side path and file name mean nothing on the page
        return str(text).replace(path, "this video").replace(name, "this video")

    out["notes"] = [hide(n) for n in result.get("notes", [])]
    out["warnings"] = [{k: hide(v) for k, v in w.items()} for w in result.get("warnings", [])]
    out["clips"] = clips
    out["id"] = predictions.add(kept)
    return out


def _name(result: dict) -> str:
    from pathlib import Path

    return Path(str(result.get("video", ""))).name or "\0"  # "\0": replaces nothing


def add_routes(app, predictor, predict, store: VideoStore, annotator=None, study=None) -> None:
    """Add the workstation's endpoints to `app`.

    Args:
        predictor: the loaded `Predictor` (its run, preprocessing and threshold).
        predict: (path, [(frame, box)], cam) -> `Predictor.predict`'s result, serialised.
        store: the opened videos.
        annotator: `thyrovid.serve.annotate.Annotator` (--annotate) or None.
        study: `thyrovid.serve.study.Study` (--study) or None.
    """
    from dataclasses import asdict

    from fastapi.responses import JSONResponse, Response

    predictions = Predictions()

    @app.exception_handler(UserError)
    async def user_error(request, exc: UserError):
        status = 413 if isinstance(exc, TooLarge) else 404 if isinstance(exc, NotFound) else 400
        return JSONResponse({"error": str(exc).splitlines()[0] if str(exc) else "error"}, status)

    def need(mode, what: str):
        if mode is None:
            raise Disabled(f"{what}: this server was not started with {what}")
        return mode

    @app.get("/api/info")
    def info() -> dict:
        return {
            "run": predictor.run_dir.name,
            "model": {"arch": predictor.config.arch, "dims": int(predictor.config.dims)},
            "preprocessing": asdict(predictor.prep) | {"notes": predictor.notes},
            "threshold": predictor.threshold,
            "threshold_source": predictor.threshold_source,
            "band": predictor.band
            and {
                k: predictor.band[k] for k in ("low", "high", "method") if k in predictor.band
            },  # fmt: skip
            "modes": {
                "root": store.root is not None,
                "annotate": annotator is not None,
                "study": study is not None,
            },  # fmt: skip
            "max_key_frames": MAX_KEY_FRAMES,
        }

    @app.get("/api/root")
    def root_list() -> dict:
        return store.list_root()

    @app.post("/api/videos/open")
    def open_path(body: Annotated[dict, Body()]) -> dict:
        return store.public(store.open_path(text_field(body, "path")))

    @app.post("/api/videos")
    def upload(file: Annotated[UploadFile, File(description="the video")]) -> dict:
        return store.public(store.add_upload(file))

    @app.get("/api/videos/{video_id}")
    def video(video_id: str) -> dict:
        return store.public(store.get(video_id))

    @app.get("/api/videos/{video_id}/frames/{name}")
    def frame(video_id: str, name: str):
        index, _, fmt = name.partition(".")
        if fmt not in FORMATS or not index.isdigit():
            raise NotFound(f"frame: {name!r} is not <0-based index>.jpg or .png")
        data = store.frame_image(video_id, int(index), fmt)
        return Response(
            data, media_type=FORMATS[fmt], headers={"Cache-Control": "private, max-age=3600"}
        )

    @app.post("/api/predict")
    def predict_route(body: Annotated[dict, Body()]) -> dict:
        entry = store.get(text_field(body, "video"))
        pairs = key_frames(body, entry.info)
        cam = body.get("cam", True)
        if not isinstance(cam, bool):
            raise UserError(f"cam: {cam!r} is not true or false")
        result = predict(entry.path, pairs, cam, entry.name)
        return public_prediction(result, predictor.prep, predictions)

    @app.get("/api/predictions/{pid}/cam/{clip}/{name}")
    def cam_image(pid: str, clip: int, name: str):
        index, _, fmt = name.partition(".")
        if fmt != "png" or not index.isdigit():
            raise NotFound(f"frame: {name!r} is not <0-based index>.png")
        return Response(predictions.cam_png(pid, clip, int(index)), media_type="image/png")

    @app.get("/api/colorbar.png")
    def colorbar():
        ramp = np.tile(np.linspace(0, 1, 256)[None, :], (12, 1))
        return Response(_png(colour(ramp)), media_type="image/png",
                        headers={"Cache-Control": "max-age=86400"})  # fmt: skip

    @app.get("/api/annotations")
    def annotations(video: str) -> dict:
        entry = store.get(video)
        need(annotator, "--annotate")
        if entry.source != "root":
            return {"rows": []}
        return {"rows": annotator.saved(entry.path)}

    @app.post("/api/annotations")
    def annotate(body: Annotated[dict, Body()]) -> dict:
        need(annotator, "--annotate")
        return annotator.save(store.get(text_field(body, "video")), body)

    @app.get("/api/study")
    def study_info() -> dict:
        s = need(study, "--study")
        from thyrovid.serve.study import MODALITIES, SCALES

        return {"n_cases": len(s.cases), "scale": s.scale, "scale_help": SCALES[s.scale],
                "modalities": list(MODALITIES)}  # fmt: skip

    @app.post("/api/study/session")
    def study_session(body: Annotated[dict, Body()]) -> dict:
        return need(study, "--study").start(body)

    @app.get("/api/study/case")
    def study_case(reader: str, case: str) -> dict:
        s = need(study, "--study")
        if case not in s.cases:
            raise UserError(f"case: {case!r} is not a case of this study")
        order = s.order(reader)
        position = order.index(case) + 1
        videos = list(s.cases[case]["videos"])
        entry = store.open_known(videos[0], f"case {position} of {len(order)}")
        return {"case": case, "position": position, "n_cases": len(order),
                "video": store.public(entry), "n_videos": len(videos)}  # fmt: skip

    @app.post("/api/study/readings")
    def study_reading(body: Annotated[dict, Body()]) -> dict:
        return need(study, "--study").score(body)

    @app.get("/api/study/model")
    def study_model(reader: str, case: str) -> dict:
        from thyrovid.reliability import decision_margin

        s = need(study, "--study")
        s.may_see_model(reader, case)
        out = s.model_output(case, lambda path, pairs: predict(path, pairs, True, "case video"))
        videos = []
        for n, (path, result) in enumerate(out["videos"]):
            entry = store.open_known(path, f"case video {n + 1}")
            if "public" not in result:
                result["public"] = public_prediction(result, predictor.prep, predictions)
            videos.append({"video": store.public(entry), **result["public"]})
        prob = float(np.mean([v["prob"] for v in videos]))
        thr = predictor.threshold
        decision = None if thr is None else ("malignant" if prob >= thr else "benign")
        return {"case": case, "prob": prob, "decision": decision, "threshold": thr,
                "threshold_source": predictor.threshold_source,
                "margin": decision_margin(prob, thr, predictor.band),
                "vote": f"mean of {len(videos)} video probabilities", "videos": videos}  # fmt: skip
