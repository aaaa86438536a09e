"""`thyrovid serve RUN [--host 127.0.0.1] [--port 8000]`: predictions over HTTP, and a page.

    GET  /          one static page: upload a video, give the key frame and box, see the result
    GET  /info      the run: architecture, preprocessing (frames, size, expand), threshold
    POST /predict   multipart form: file (the video), frame (0-based key frame) and box
                    ("x0,y0,x1,y1", pixels, x1/y1 exclusive); frame and box may repeat (one
                    clip per pair, soft-voted); cam=true adds a Grad-CAM montage per clip
                    (base64 PNG). Answers JSON: prob (P(malignant) of the video), decision,
                    threshold, threshold_source, margin (how far from the threshold, in
                    words: "near the threshold" inside the validation band), prob_interval,
                    warnings (e.g. an all-zero heatmap), clips; a bad input answers 400
                    {"error": ...}.

The prediction is `thyrovid.inference.predict.Predictor.predict`, the same code as `thyrovid predict`;
the model is loaded once when the app starts: RUN/model.onnx through onnxruntime when `thyrovid
export RUN` wrote it (`--engine auto`, the default; `onnx` or `torch` to choose). Uploads go to a temporary folder that is removed
after the request; the answer never contains the file name or any DICOM identifier.
No authentication: keep the default host 127.0.0.1 unless a proxy in front handles access.

The page is the clinician's workstation (`static/index.html`, `app.js`, `app.css`: no build
step, no CDN): open a video (upload, or a path under `--root`), scrub and play it, draw boxes
on 1-10 key frames, predict with the threshold, the margin and the Grad-CAM over the frames;
`--annotate COHORT_CSV` saves the boxes to cohort.csv, `--study CASES --readers-out
READERS_CSV` runs a reader study. Its JSON API is `thyrovid.serve.workstation` (under /api).
"""

import base64
import os
import sys
import tempfile
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

from thyrovid.errors import UserError
from thyrovid.options import add_device_argument, add_work_argument
from thyrovid.serve.security import FORM_SLACK, check_pairs, harden
from thyrovid.serve.videos import TooLarge, save_upload

INSTALL = "pip install thyrovid[serve]  (fastapi, uvicorn, python-multipart)"
STATIC = Path(__file__).resolve().parent / "static"
STATIC_FILES = {"app.js": "text/javascript", "app.css": "text/css"}
KNOWN_SUFFIXES = {".dcm", ".dicom", ".dic", ".avi", ".mp4", ".mov", ".mkv", ".m4v", ".mpg",
                  ".mpeg", ".wmv"}  # fmt: skip


def _require_fastapi():
    try:
        import fastapi  # noqa: F401
        import multipart  # noqa: F401  (python-multipart: FastAPI's form parser)
    except ImportError as exc:
        raise UserError(f"thyrovid serve needs {exc.name}: {INSTALL}") from None


def _png_base64(rgb) -> str:
    import cv2

    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:  # pragma: no cover - cv2 encodes any uint8 RGB image
        raise RuntimeError("PNG encoding failed")
    return base64.b64encode(buf.tobytes()).decode("ascii")


def _answer(result: dict) -> dict:
    """The JSON answer: the prediction without file paths, montages as base64 PNG."""
    clips = []
    for c in result["clips"]:
        item = {k: v for k, v in c.items() if k not in ("montage", "heatmap", "cam_png", "cam_avi")}
        if "montage" in c:
            item["heatmap_png"] = _png_base64(c["montage"])
        clips.append(item)
    keep = ("prob", "decision", "threshold", "threshold_source", "vote", "run", "model",
            "engine", "preprocessing", "notes", "margin", "prob_interval", "warnings")  # fmt: skip
    return {**{k: result[k] for k in keep}, "clips": clips}


FIELDS = {"file": "the video", "frame": "the 0-based key frame, an integer",
          "box": "x0,y0,x1,y1 in pixels", "cam": "true or false"}  # fmt: skip


def _form_problem(errors) -> str:
    """FastAPI's validation errors as one line naming each form field and what it takes."""
    parts = []
    for err in errors:
        loc = [str(v) for v in err.get("loc", ()) if v != "body"]
        name = loc[0] if loc else "request"
        what = FIELDS.get(name, "")
        if err.get("type") == "missing":
            parts.append(f"missing form field {name!r} ({what})" if what else f"missing {name}")
        else:
            got = repr(err.get("input"))
            got = got if len(got) <= 40 else got[:37] + "..."
            parts.append(f"form field {name!r}: {got} is not {what or 'valid'}")
    return "; ".join(dict.fromkeys(parts))


def _upload_path(upload, folder: str) -> Path:
    """Where an upload is saved: `folder`/upload plus its suffix when it is a known one."""
    suffix = Path(upload.filename or "").suffix.lower()
    return Path(folder) / ("upload" + (suffix if suffix in KNOWN_SUFFIXES else ""))


def create_app(
    run_dir: str | os.PathLike,
    device: str = "cpu",
    work_dir: str | os.PathLike | None = None,
    max_upload_mb: int = 2048,
    engine: str = "auto",
    root: str | os.PathLike | None = None,
    annotate: str | os.PathLike | None = None,
    study: str | os.PathLike | None = None,
    readers_out: str | os.PathLike | None = None,
    seed: int = 0,
    score_scale: str = "probability",
    host: str = "127.0.0.1",
):
    """The FastAPI app serving one run.

    Args:
        run_dir: run folder from `thyrovid train` (threshold from its metrics.json).
        device: torch device for inference.
        work_dir: the run's work folder, when the run does not record its extract parameters.
        max_upload_mb: largest accepted video.
        engine: "auto", "onnx" or "torch" (see `thyrovid.inference.predict.choose_engine`).
        root: folder whose videos the page may open by path (never outside it).
        annotate: cohort.csv the page's boxes are saved to (needs `root`).
        study: a cohort.csv of reading-study cases (needs `readers_out`).
        readers_out: the readers.csv the study's readings are written to.
        seed: the study's case order seed.
        score_scale: what a reader's score is: "probability" or "tirads".
        host: the address served (`--host`): Host headers are checked against it
            (`thyrovid.serve.security`).

    Returns:
        fastapi.FastAPI.
    """
    _require_fastapi()
    from fastapi import FastAPI, File, Form, UploadFile
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, HTMLResponse, JSONResponse

    from thyrovid.inference.predict import Predictor, parse_box
    from thyrovid.serve.annotate import Annotator
    from thyrovid.serve.study import Study
    from thyrovid.serve.videos import VideoStore
    from thyrovid.serve.workstation import add_routes

    if annotate is not None and root is None:
        raise UserError("--annotate needs --root VIDEOS: the folder whose videos are annotated")
    if (study is None) != (readers_out is None):
        raise UserError("--study CASES and --readers-out READERS_CSV go together")
    predictor = Predictor(run_dir, device, work_dir=work_dir, engine=engine)
    store = VideoStore(root, max_upload_mb << 20)
    annotator = Annotator(annotate) if annotate is not None else None
    reading = Study(study, readers_out, seed, score_scale) if study is not None else None
    predictor.ready()  # a model that cannot run stops the server at start, not at a request
    lock = threading.Lock()  # one prediction at a time: Grad-CAM hooks the shared model
    app = FastAPI(title="thyrovid", description=__doc__.split("\n\n")[0])
    app.router.add_event_handler("shutdown", store.close)

    def locked_predict(path, pairs, cam, name):
        """`Predictor.predict` under the lock; a reader's error line names the video as `name`."""
        try:
            with lock:
                return predictor.predict(path, pairs, cam=cam)
        except UserError as exc:
            raise UserError(str(exc).replace(str(path), name)) from None

    add_routes(app, predictor, locked_predict, store, annotator, reading)
    harden(app, host, (max_upload_mb << 20) + FORM_SLACK)  # Host, Origin, sizes, headers, docs

    @app.exception_handler(RequestValidationError)
    async def bad_form(request, exc: RequestValidationError):  # not FastAPI's 422 detail list
        return JSONResponse({"error": _form_problem(exc.errors())}, 400)

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return (STATIC / "index.html").read_text(encoding="utf-8")

    @app.get("/static/{name}")
    def static(name: str):
        if name not in STATIC_FILES:
            return JSONResponse({"error": f"static: no file {name!r}"}, 404)
        return FileResponse(STATIC / name, media_type=STATIC_FILES[name])

    @app.get("/info")
    def info() -> dict:
        return {
            "run": predictor.run_dir.name,
            "model": {"arch": predictor.config.arch, "dims": int(predictor.config.dims)},
            "engine": predictor.engine,
            "preprocessing": asdict(predictor.prep) | {"notes": predictor.notes},
            "threshold": predictor.threshold,
            "threshold_source": predictor.threshold_source,
        }

    @app.post("/predict")
    def predict(
        file: Annotated[UploadFile, File(description="the video: DICOM, AVI, MP4, ...")],
        frame: Annotated[list[int], Form(description="0-based key frame; repeat per box")],
        box: Annotated[list[str], Form(description="x0,y0,x1,y1 in pixels, x1/y1 exclusive")],
        cam: Annotated[bool, Form(description="add a Grad-CAM montage per clip")] = False,
    ):
        with tempfile.TemporaryDirectory(prefix="thyrovid-serve-") as folder:
            path = _upload_path(file, folder)
            try:
                check_pairs(len(frame))
                if len(frame) != len(box):
                    raise UserError(f"give one frame per box (got {len(frame)} and {len(box)})")
                pairs = [(f, parse_box(b)) for f, b in zip(frame, box)]
                save_upload(file, path, max_upload_mb << 20)
                with lock:
                    result = predictor.predict(path, pairs, cam=cam)
            except UserError as exc:  # the temp path means nothing to the user
                message = str(exc).replace(str(path), "uploaded video")
                status = 413 if isinstance(exc, TooLarge) else 400
                return JSONResponse({"error": message.replace(folder, "upload")}, status)
        return _answer(result)

    return app


def add_arguments(parser) -> None:
    """The `thyrovid serve` arguments."""
    parser.add_argument("run", help="run folder written by `thyrovid train`")
    parser.add_argument("--host", default="127.0.0.1", help="address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    add_device_argument(parser, default="cpu")
    add_work_argument(parser)
    parser.add_argument("--max-upload-mb", type=int, default=2048, help="largest video accepted")
    parser.add_argument("--engine", choices=("auto", "onnx", "torch"), default="auto",
                        help="onnx: RUN/model.onnx through onnxruntime (no torch); torch: the "
                        "PyTorch network; auto (default): onnx when exported and --device cpu")  # fmt: skip
    parser.add_argument(
        "--root",
        metavar="VIDEOS",
        help="folder whose videos the page may open by path (never outside it)",
    )
    parser.add_argument("--annotate", metavar="COHORT_CSV",
                        help="annotate mode: save the page's boxes to this cohort.csv "
                        "(needs --root)")  # fmt: skip
    parser.add_argument(
        "--study",
        metavar="CASES",
        help="reading mode: a cohort.csv of the study's cases (patients)",
    )
    parser.add_argument(
        "--readers-out",
        metavar="READERS_CSV",
        help="reading mode: the readers.csv the readings go to (resumable)",
    )
    parser.add_argument("--seed", type=int, default=0, help="reading mode: case order seed")
    parser.add_argument("--score-scale", choices=("probability", "tirads"),
                        default="probability",
                        help="reading mode: a score is P(malignant) 0-1 or TI-RADS 1-5")  # fmt: skip


def run(args) -> int:
    """Serve until interrupted."""
    _require_fastapi()
    try:
        import uvicorn
    except ImportError:
        raise UserError(f"thyrovid serve needs uvicorn: {INSTALL}") from None
    app = create_app(
        args.run, args.device, args.work, args.max_upload_mb, root=args.root,
        annotate=args.annotate, study=args.study, readers_out=args.readers_out, seed=args.seed,
        score_scale=args.score_scale, engine=args.engine, host=args.host,
    )  # fmt: skip
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: serving on {args.host} without authentication", file=sys.stderr)
    print(f"thyrovid serve: http://{args.host}:{args.port}/  (Ctrl-C to stop)", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
