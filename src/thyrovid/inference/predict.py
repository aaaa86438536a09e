"""`thyrovid predict`: P(malignant) for a NEW video and the clinician's box(es), one call.

    thyrovid predict RUN VIDEO --frame 40 --box 120,80,200,150 [--frame K --box ...] [--cam OUT]
    thyrovid predict RUN --boxes boxes.csv [--json]       (rows: video, frame, x0, y0, x1, y1)

Each (key frame, box) pair is cut exactly as `thyrovid extract` cuts a cohort row, with the
parameters the run was trained on (frames, size, expand; see `run_preprocessing`): the same
window (`clip_window`, `window_indices`), the same box expansion clamped to the imaging region
(`expand_box`), the same grey conversion and resize (`to_gray`, `resize_crop`) and the same
normalisation (`to_model_input`). So a clip of a cohort video gets here the probability that
`thyrovid evaluate` gives it.

The clip probabilities of a video are soft-voted (their mean, `thyrovid.inference.voting.mean_vote`,
as `soft_vote` votes a video) into one video P(malignant). The decision uses the run's threshold from RUN/metrics.json (chosen by
`thyrovid evaluate` on the validation patients), or `--threshold`; without either there is
no decision. Outputs never contain DICOM identifiers: only the path the user gave.

Output: one line per video with the decision's margin (how far P(malignant) is from the
threshold, "near the threshold" inside the band `thyrovid evaluate` derived from the validation
patients) and, for several clips, a bootstrap interval of the probability; or with `--json` the
`predict_video` dict (with `--boxes`, always a list of them, ending with one entry per skipped
video or row: video, skipped (the reason), prob null, clips []). A boxes-file row that does not parse, or a video that cannot be read, is
skipped with one line naming it, and the rest are predicted; the one video given on the command
line is the error instead (exit 2). A 3D run's clip of a video shorter than the clip is padded,
with a note.

Engines (`--engine`): when `thyrovid export RUN` has written RUN/model.onnx, the network runs
through onnxruntime on the CPU, the session made once per process with one thread per usable
CPU; that path imports neither torch nor pandas (numpy, the video readers, OpenCV and
onnxruntime), so a bedside answer takes about a second instead of torch's import alone. The
answer equals the torch engine's within 1e-4. `--engine torch` (or a `--device` other than
cpu) runs the PyTorch network; `--cam` loads it for the Grad-CAM heatmaps whatever the engine.
An export older than the run's weights is not used (a note says so). `--timing` prints the
seconds of each stage: load (config, threshold, session or network), read (decode the frames),
crop (grey, crop, resize), model, and cam when asked.
"""

from __future__ import annotations

import copy
import json
import math
import os
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from thyrovid.errors import ModelError, UserError
from thyrovid.inference.newvideo import Box, cut_clips, short_video_note
from thyrovid.options import add_device_argument, add_work_argument
from thyrovid.reliability import (
    decision_margin,
    emit,
    empty_heatmap,
    from_json,
    prob_interval,
)
from thyrovid.reliability import to_json as cautions_json
from thyrovid.runs import (
    ONNX,
    check_threshold,
    read_config,
    run_onnx,
    run_preprocessing,
    run_threshold,
    threshold_band,
)

BOX_COLUMNS = ("video", "frame", "x0", "y0", "x1", "y1")
BATCH = 8  # clips per forward pass
ENGINES = ("auto", "onnx", "torch")


def parse_box(text: str) -> Box:
    """ "x0,y0,x1,y1" (pixels, x1/y1 exclusive) -> 4 floats; malformed -> UserError."""
    try:
        box = tuple(float(v) for v in str(text).replace(" ", "").split(","))
    except ValueError:
        box = ()
    if len(box) != 4 or not all(math.isfinite(v) for v in box):
        raise UserError(f"box {text!r}: expected x0,y0,x1,y1 in pixels, e.g. 120,80,200,150")
    return check_box(box, repr(text))


def check_box(box: Box, shown: str) -> Box:
    """`box` if x1 > x0 and y1 > y0, else UserError naming it as `shown`."""
    if box[2] <= box[0] or box[3] <= box[1]:
        raise UserError(f"box {shown}: need x1 > x0 and y1 > y0 (x1/y1 exclusive)")
    return box


def choose_engine(run_dir, engine: str, device: str) -> tuple[str, list[str]]:
    """The engine that runs: "onnx" or "torch", and notes for the user.

    "auto" takes RUN/model.onnx when `thyrovid export` wrote it from the run's current weights
    and the device is the CPU (onnxruntime runs there); "onnx" requires it; "torch" never
    uses it.
    """
    if engine not in ENGINES:
        raise UserError(f"--engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if engine == "torch":
        return "torch", []
    if engine == "onnx" and device not in ("cpu", "auto"):
        raise UserError(f"--engine onnx runs on the CPU; for --device {device} use --engine torch")
    if engine == "auto" and device != "cpu":
        return "torch", []
    path, why = run_onnx(run_dir)
    if path is not None:
        return "onnx", []
    if engine == "onnx":
        raise UserError(why)
    stale = (Path(run_dir) / ONNX).is_file()  # auto: a stale export is worth a line, none is not
    return "torch", ([f"{why}; predicting with torch meanwhile"] if stale else [])


class Predictor:
    """A loaded run, ready to predict videos (load once, predict many: used by `serve`).

    Args:
        run_dir: run folder from `thyrovid train`.
        device: torch device ("cpu", "cuda", "cuda:1", "auto").
        work_dir: the work folder the run was trained on (for its extract.json), when the run
            does not record it.
        expand: override the box expansion.
        threshold: decision threshold on P(malignant); default the run's (metrics.json).
        tta: test-time views per clip, as in `thyrovid evaluate --tta`.
        engine: "auto" (RUN/model.onnx through onnxruntime when `thyrovid export` wrote it and
            the device is the CPU, else torch), "onnx" or "torch" (see `choose_engine`). The
            ONNX engine imports no torch; Grad-CAM (`cam`) loads the torch network when asked.
        timing: add the seconds of each stage (load, read, crop, model) to each result.
    """

    def __init__(
        self, run_dir, device="cpu", work_dir=None, expand=None, threshold=None, tta=1,
        engine="auto", timing=False,
    ):  # fmt: skip
        start = time.perf_counter()
        self.run_dir, self.tta, self.timing = Path(run_dir), int(tta), bool(timing)
        if self.tta < 1:
            raise UserError("--tta must be >= 1")
        self.config = read_config(self.run_dir)
        self.engine, engine_notes = choose_engine(self.run_dir, engine, device)
        self._cam_model = None
        self._cam_stems: set[str] = set()  # heatmap file names written: never overwrite one
        self.prep, self.notes = run_preprocessing(self.run_dir, self.config, work_dir, expand)
        self.band = None  # the run's near-threshold band (metrics.json threshold.band)
        self.notes = engine_notes + self.notes
        self.model = self.onnx = None
        if self.engine == "onnx":
            from thyrovid.inference.onnxmodel import OnnxModel

            self.device = "cpu"
            self.onnx = OnnxModel(self.run_dir / ONNX, self._clip_shape())
        else:
            from thyrovid.distributed import inference_device
            from thyrovid.runs import load_run

            self.device = inference_device(device)
            self.model, _ = load_run(self.run_dir, device=self.device)
        if threshold is not None:
            self.threshold, self.threshold_source = check_threshold(threshold), "--threshold"
        else:
            self.threshold, self.threshold_source = run_threshold(self.run_dir)
            self.band = threshold_band(self.run_dir) if self.threshold is not None else None
        self.load_seconds = time.perf_counter() - start

    def ready(self) -> float:
        """Wait until the model can run; the seconds waited (the ONNX session loads in the
        background from construction on, see `OnnxModel`). Raises ModelError when it cannot."""
        return 0.0 if self.onnx is None else self.onnx.ready()

    def _clip_shape(self) -> tuple[int, ...]:
        size = (self.prep.size, self.prep.size)
        return (self.prep.frames, *size) if self.prep.dims == 3 else size

    def engine_line(self) -> str:
        """ "onnxruntime 1.20.1, 2 threads" / "torch 2.5.1, cpu, 2 threads": what runs the net."""
        if self.onnx is not None:
            import onnxruntime

            return f"onnxruntime {onnxruntime.__version__}, {self.onnx.threads} threads"
        import torch

        return f"torch {torch.__version__}, {self.device}, {torch.get_num_threads()} threads"

    def clip_probs(self, x: np.ndarray) -> np.ndarray:
        """uint8 clips (N, T, S, S) or images (N, S, S) -> (N,) float64 P(malignant)."""
        if self.onnx is not None:
            return self.onnx.clip_probs(x, self.tta)
        import torch

        from thyrovid.clips.dataset import to_model_input
        from thyrovid.inference.views import tta_views

        out = []
        for start in range(0, len(x), BATCH):  # bounded memory for many key frames
            part = torch.from_numpy(np.ascontiguousarray(x[start : start + BATCH]))
            batch = to_model_input(part[:, None].to(self.device))
            with torch.inference_mode():
                views = tta_views(batch, self.tta)
                probs = [torch.sigmoid(self.model(v)[:, 0].float()).cpu().numpy() for v in views]
            out.append(np.mean(probs, axis=0))
        return np.concatenate(out).astype(np.float64)

    def cams(self, x: np.ndarray) -> list:
        """Grad-CAM (`thyrovid.explain.gradcam.grad_cam`) of each clip -> list of CamResult."""
        import torch

        from thyrovid.clips.dataset import to_model_input
        from thyrovid.explain.gradcam import grad_cam

        if self._cam_model is None:  # explain returns maps via .numpy(): keep them on the CPU
            if self.model is None:  # the ONNX engine: Grad-CAM needs the torch network
                from thyrovid.runs import load_run

                self._cam_model, _ = load_run(self.run_dir, device="cpu")
            elif self.device == "cpu":
                self._cam_model = self.model
            else:
                self._cam_model = copy.deepcopy(self.model).cpu().eval()
        out = []
        for clip in x:  # one at a time: the backward pass of a full-size 3D net is large
            batch = to_model_input(torch.from_numpy(np.ascontiguousarray(clip))[None, None])
            with warnings.catch_warnings():  # explain converts a grad-requiring logit to float
                warnings.simplefilter("ignore", UserWarning)
                out += grad_cam(self._cam_model, batch)
        return out

    def predict(self, video_path, pairs: Sequence[tuple[int, Box]], cam=False, cam_dir=None):
        """Predict one video; see `predict_video` for the result."""
        from thyrovid.inference.voting import mean_vote

        seconds: dict[str, float] = {"load": self.load_seconds}
        x, plans = cut_clips(video_path, pairs, self.prep, timing=seconds)
        seconds["load"] += self.ready()  # the ONNX session loads while the video is read
        start = time.perf_counter()
        probs = self.clip_probs(x)
        seconds["model"] = time.perf_counter() - start
        for plan, p in zip(plans, probs):
            plan["prob"] = float(p)
        prob = mean_vote([p["prob"] for p in plans])  # the video: mean of its clips
        decision = None
        if self.threshold is not None:
            decision = "malignant" if prob >= self.threshold else "benign"
        result = {
            "video": str(video_path),
            "run": self.run_dir.name,
            "model": {"arch": self.config.arch, "dims": int(self.config.dims)},
            "engine": self.engine,
            "preprocessing": asdict(self.prep),
            "clips": plans,
            "prob": prob,
            "vote": f"mean of {len(plans)} clip probabilities",
            "threshold": self.threshold,
            "threshold_source": self.threshold_source,
            "decision": decision,
            "margin": decision_margin(prob, self.threshold, self.band),
            "prob_interval": prob_interval(probs),
            "notes": self.notes
            + short_video_note(str(video_path), plans[0]["n_frames"], self.prep),
            "warnings": [],
        }
        if cam or cam_dir is not None:
            start = time.perf_counter()
            self._add_cams(result, x, video_path, cam_dir)
            seconds["cam"] = time.perf_counter() - start
        if self.timing:
            result["timing"] = {k: round(v, 4) for k, v in seconds.items()}
        return result

    def _add_cams(self, result: dict, x: np.ndarray, video_path, cam_dir) -> None:
        from thyrovid.explain.overlay import montage, overlay, write_avi, write_png

        clips = x if x.ndim == 4 else x[:, None]
        for plan, clip, res in zip(result["clips"], clips, self.cams(x)):
            cam3 = res.cam if res.cam.ndim == 3 else res.cam[None]
            empty = empty_heatmap(res.cam, f"{Path(video_path).name}, key frame {plan['frame']}")
            result["warnings"] += cautions_json(empty)
            plan["montage"] = montage(clip, cam3)  # (2S, nS, 3) uint8 RGB, not JSON
            plan["heatmap"] = cam3.astype(np.float32)  # (T, S, S) in [0, 1]: serve's overlay
            if cam_dir is not None:
                out = Path(cam_dir)
                out.mkdir(parents=True, exist_ok=True)
                stem = self._cam_stem(f"{Path(video_path).stem}_f{plan['frame']:05d}")
                write_png(out / f"{stem}.png", plan["montage"])
                plan["cam_png"] = str(out / f"{stem}.png")
                if clip.shape[0] > 1:
                    write_avi(out / f"{stem}.avi", overlay(clip, cam3))
                    plan["cam_avi"] = str(out / f"{stem}.avi")

    def _cam_stem(self, stem: str) -> str:
        """`stem`, or `stem`_2, _3, ... when a clip (same key frame, same video name) has it."""
        name, k = stem, 2
        while name in self._cam_stems:
            name, k = f"{stem}_{k}", k + 1
        self._cam_stems.add(name)
        return name


def predict_video(
    run_dir: str | os.PathLike,
    video_path: str | os.PathLike,
    boxes: Sequence[tuple[int, Box]],
    cam: bool = False,
    device: str = "cpu",
    work_dir: str | os.PathLike | None = None,
    threshold: float | None = None,
    cam_dir: str | os.PathLike | None = None,
    tta: int = 1,
    engine: str = "auto",
) -> dict:
    """P(malignant) of one new video from its labelled key frames.

    Args:
        run_dir: run folder from `thyrovid train` (and `evaluate`, for the threshold).
        video_path: any video `thyrovid.io.open_video` reads (DICOM, AVI/MP4, frame folder).
        boxes: (key frame, (x0, y0, x1, y1)) pairs: 0-based frame, box in pixels of the
            original frame, x1/y1 exclusive.
        cam: also compute Grad-CAM; each clip dict then holds `montage` (uint8 RGB array)
            and `heatmap` (the map, float32 (T, S, S) in [0, 1], one per window frame).
        device: torch device.
        work_dir: the run's work folder (only needed when the run does not record it).
        threshold: override the run's decision threshold.
        cam_dir: write `<video stem>_f<frame>.png` (montage) and `.avi` (heatmap video) here.
        tta: test-time views per clip.
        engine: "auto" (RUN/model.onnx when exported and the device is the CPU), "onnx" or
            "torch"; the answer is the same within 1e-4.

    Returns:
        dict video, run, model, engine ("onnx"/"torch"), preprocessing, clips (per pair:
        frame, box, roi, first_frame, n_frames, pad_before, prob), prob (video P(malignant),
        mean over clips), vote, threshold (or None), threshold_source, decision
        ("malignant"/"benign"/None), margin (`thyrovid.reliability.decision_margin`:
        difference, near, band, words; None without a threshold), prob_interval (bootstrap
        over the clips; None for one clip), notes, warnings (an all-zero Grad-CAM map,
        `thyrovid.reliability.empty_heatmap`).

    Raises:
        UserError / VideoError: unreadable video, key frame out of range, bad box.
    """
    predictor = Predictor(
        run_dir, device, work_dir=work_dir, threshold=threshold, tta=tta, engine=engine
    )
    return predictor.predict(video_path, boxes, cam=cam, cam_dir=cam_dir)


def to_json(result: dict) -> dict:
    """A prediction result without its arrays (the Grad-CAM montages), ready for json.dumps."""
    out = {k: v for k, v in result.items() if k != "clips"}
    out["clips"] = [{k: v for k, v in c.items() if not isinstance(v, np.ndarray)}
                    for c in result["clips"]]  # fmt: skip
    return out


def read_boxes_csv(
    path: str | os.PathLike, video: str | None = None, frame_base: int = 0
) -> tuple[dict[str, list], list[str]]:
    """Key frames and boxes from a cohort.csv-like file, grouped by video.

    Read as cohort.csv is (`thyrovid.csv_input.read_table`): comma, semicolon (decimal commas)
    or tab separated; column names ignore case and spaces. A row that does not parse is not
    fatal: it is returned as a problem line naming the file and row, the others are kept.

    Args:
        path: CSV with columns video, frame, x0, y0, x1, y1 (others ignored); video paths
            relative to the CSV's folder.
        video: keep only the rows of this video (matched by resolved path).
        frame_base: 1 when the file numbers frames from 1 (a viewer's numbers); the frames
            returned are 0-based.

    Returns:
        ({video path (as resolved): [(frame, box), ...]} in file order, problem lines).
    """
    from thyrovid.cohort.schema import resolve_video
    from thyrovid.csv_input import NUL_ROW, normalise_column, read_table, to_number

    path = Path(path)
    df, sep = read_table(path, "boxes file", keep_ragged=True)  # a bad row: a line, not fatal
    first = df.iloc[:, 0]  # a bad row's marker (csv_input.RAGGED / NUL_ROW) is in its first cell
    df.columns = [normalise_column(c) for c in df.columns]
    missing = [c for c in BOX_COLUMNS if c not in df.columns]
    if missing:
        need = ", ".join(BOX_COLUMNS)
        raise UserError(f"{path}: missing column(s) {', '.join(missing)}; the columns are {need}")
    numbers = {c: to_number(df[c], sep) for c in BOX_COLUMNS[1:]}
    out: dict[str, list] = {}
    problems: list[str] = []
    want = str(Path(video).resolve()) if video else None
    for idx in df.index:  # the index keeps the file's row numbers (blank rows dropped)
        if first[idx].startswith("\0"):
            why = "holds a NUL byte" if first[idx] == NUL_ROW else "has more fields than the header"
            problems.append(f"{path}: row {idx + 1} (line {idx + 2}): {why}")
            continue
        vid = Path(resolve_video(df.at[idx, "video"], path.parent))  # "sub\\v.dcm" too
        if want and str(vid) != want:
            continue
        try:
            pair = _box_row(df.loc[idx], {c: numbers[c][idx] for c in numbers}, frame_base)
        except UserError as exc:
            problems.append(f"{path}: row {idx + 1} (line {idx + 2}): {exc}")
            continue
        out.setdefault(str(vid), []).append(pair)
    if not out and not problems:
        raise UserError(f"{path}: no rows" + (f" for video {video}" if video else ""))
    return out, problems


def _box_row(text, value: dict, frame_base: int = 0) -> tuple[int, Box]:
    """(0-based frame, box) of one boxes-file row: `text` the cells as written, `value` as
    numbers; `frame_base` 1 when the file numbers frames from 1."""
    if not text["video"]:
        raise UserError("video is empty")
    frame = value["frame"]
    if not (math.isfinite(frame) and frame.is_integer() and frame >= frame_base):
        raise UserError(f"frame {text['frame']!r} is not a {frame_base}-based frame index")
    frame -= frame_base
    for k in ("x0", "y0", "x1", "y1"):
        if not math.isfinite(value[k]):
            raise UserError(f"{k} {text[k]!r} is not a number")
    box = tuple(float(value[k]) for k in ("x0", "y0", "x1", "y1"))
    return int(frame), check_box(box, ",".join(text[k] for k in ("x0", "y0", "x1", "y1")))


def add_arguments(parser) -> None:
    """The `thyrovid predict` arguments."""
    parser.add_argument("run", help="run folder written by `thyrovid train`")
    parser.add_argument("video", nargs="?", help="video (DICOM, AVI/MP4, frame folder)")
    parser.add_argument("--frame", type=int, action="append", default=[], metavar="K",
                        help="key frame, 0-based (the first frame is 0; see --frame-base); "
                        "repeat, one per --box")  # fmt: skip
    parser.add_argument("--box", action="append", default=[], metavar="x0,y0,x1,y1",
                        help="nodule box on that frame, pixels, x1/y1 exclusive")  # fmt: skip
    parser.add_argument("--boxes", metavar="CSV",
                        help="rows: video, frame (0-based), x0, y0, x1, y1")  # fmt: skip
    parser.add_argument("--cam", metavar="OUT_DIR", help="write Grad-CAM PNG + AVI per clip")
    parser.add_argument("--json", action="store_true", help="print the full result as JSON")
    add_device_argument(parser, default="cpu")
    add_work_argument(parser)
    parser.add_argument("--expand", type=float, help="override the box expansion")
    parser.add_argument("--threshold", type=float, help="override the run's threshold")
    parser.add_argument("--tta", type=int, default=1, help="test-time views per clip")
    parser.add_argument(
        "--frame-base", type=int, choices=(0, 1), default=0,
        help="how --frame and the boxes file number frames: 0 (default) or 1 (as DICOM viewers "
        "do); the output's frames are 0-based",
    )  # fmt: skip
    parser.add_argument("--engine", choices=ENGINES, default="auto",
                        help="onnx: RUN/model.onnx (from `thyrovid export RUN`) through "
                        "onnxruntime, no torch; torch: the PyTorch network; auto (default): "
                        "onnx when exported and --device is cpu")  # fmt: skip
    parser.add_argument("--timing", action="store_true",
                        help="print the seconds of each stage (load, read, crop, model)")  # fmt: skip


def _jobs(args) -> tuple[dict[str, list], list[str]]:
    """{video: [(frame, box), ...]} to predict, and the boxes-file rows skipped (one line each)."""
    if len(args.frame) != len(args.box):
        raise UserError(f"give one --frame per --box (got {len(args.frame)} and {len(args.box)})")
    jobs: dict[str, list] = {}
    problems: list[str] = []
    base = getattr(args, "frame_base", 0)
    if args.boxes:
        jobs, problems = read_boxes_csv(args.boxes, args.video, base)
    if args.box:
        if not args.video:
            raise UserError("--box needs a VIDEO argument")
        low = [f for f in args.frame if f < base]
        if low:
            raise UserError(f"--frame {low[0]} is not a {base}-based frame index")
        pairs = [(f - base, parse_box(b)) for f, b in zip(args.frame, args.box)]
        jobs.setdefault(args.video, []).extend(pairs)
    if not jobs and problems:
        raise UserError(f"no usable row; the first: {problems[0]}")
    if not jobs:
        raise UserError("nothing to predict: give VIDEO --frame K --box x0,y0,x1,y1, or --boxes")
    return jobs, problems


def _line(r: dict) -> str:
    call = r["decision"] or "no decision"
    thr = f"threshold {r['threshold']:.4f}" if r["threshold"] is not None else "no threshold"
    clips = ", ".join(f"frame {c['frame']}: {c['prob']:.4f}" for c in r["clips"])
    line = f"{r['video']}: P(malignant) = {r['prob']:.4f} -> {call} ({thr}; {clips})"
    if r.get("margin"):
        line += f"\n  {r['margin']['words']}"
    if r.get("prob_interval"):
        i = r["prob_interval"]
        line += f"\n  P(malignant) {i['low']:.4f}-{i['high']:.4f} ({i['method']})"
    return line


def _skipped_entry(video: str | None, reason: str) -> dict:
    """A `--json` list entry for a video (or boxes-file row) that was not predicted."""
    return {"video": video, "skipped": reason, "prob": None, "decision": None, "clips": []}


def _timing_line(r: dict, predictor: Predictor) -> str:
    t = r["timing"]
    stages = ", ".join(f"{k} {v:.3f} s" for k, v in t.items())
    return f"timing: {r['video']}: {stages} ({r['engine']}: {predictor.engine_line()})"


def run(args) -> int:
    """Predict each video; one line each (or JSON); a bad video or row is skipped with one line."""
    if args.cam and Path(args.cam).exists() and not Path(args.cam).is_dir():
        raise UserError(f"{args.cam}: --cam names an existing file; give a folder")
    jobs, skipped = _jobs(args)
    for line in skipped:
        print(f"skipped: {line}", file=sys.stderr)
    predictor = Predictor(args.run, args.device, args.work, args.expand, args.threshold,
                          args.tta, engine=args.engine, timing=args.timing)  # fmt: skip
    results, bad = [], 0
    listed = [_skipped_entry(None, line) for line in skipped]  # --json lists what it skipped
    for video, pairs in jobs.items():
        try:
            results.append(to_json(predictor.predict(video, pairs, cam_dir=args.cam)))
            if args.timing:
                print(_timing_line(results[-1], predictor), file=sys.stderr)
        except UserError as exc:
            if isinstance(exc, ModelError) or (len(jobs) == 1 and not args.boxes):
                raise
            bad += 1
            listed.append(_skipped_entry(video, str(exc)))
            print(f"skipped: {exc}", file=sys.stderr)
    emit(from_json([w for r in results for w in r["warnings"]]))
    if args.json:  # --boxes always answers a list, however many videos the file names
        print(json.dumps([*results, *listed] if args.boxes else results[0], indent=2))
    else:
        for r in results:
            print(_line(r))
        if results:
            print(f"threshold source: {results[0]['threshold_source']}")
    for note in dict.fromkeys(n for r in results for n in r["notes"]) or predictor.notes:
        print(f"note: {note}", file=sys.stderr)
    if skipped or bad:
        print(f"skipped {len(skipped)} row(s), {bad} of {len(jobs)} video(s)", file=sys.stderr)
    return 0 if results else 2
