"""`thyrovid extract`: validated cohort.csv -> uint8 clip cache + WORK/clips.csv.

The paper's labelling procedure at scale: for every labelled key frame, take the window of
`frames` frames around it, crop the clinician's box expanded `expand`x about its centre
(clamped to the imaging region), resize to size x size and store it as grey uint8.

Conventions:
- Window: the key frame sits at window index frames // 2; near the ends of the video the
  window is shifted to stay inside it. A video shorter than the window contributes all its
  frames, padded by repeating the first frame (pad_before = (frames - n) // 2 times) and the
  last frame; clips.csv records n_frames (real frames), padded and pad_before, and the report
  has one warning line per such video. A single-frame video (a still image) thus gives a clip
  of one repeated frame: usable by the 2D models, motionless for the 3D ones.
- Box: expanded about its centre (aspect kept), rounded to whole pixels, clamped to the
  ultrasound region (VideoInfo.region) or the frame; the box used is roi_x0..roi_y1 in
  clips.csv. With --mask-outside-sector, each video's scan sector is estimated from 16 spread
  frames (`thyrovid.io.sector`: what changes over time, within the region), the box is clamped
  to the sector's rectangle and every pixel outside the sector (black wedges, burned-in text)
  is set to 0 in the clip; clips.csv then has sector_masked = 1 and sector_source (pixels, or
  dicom when only the header's rectangle is known), and extract.json mask_outside_sector. The crop is resized to size x size without keeping its aspect ratio (the paper
  resizes to 224 x 224): cv2.INTER_AREA when shrinking, INTER_LINEAR when enlarging.
- Files: WORK/clips/<clip_id>.npy uint8 (T, size, size); WORK/images/<clip_id>.npy uint8
  (size, size), the key frame's crop (for the 2D models); WORK/clips.csv; WORK/extract.json
  (the parameters; a WORK folder never mixes parameters unless --overwrite); WORK/videos.json
  (cached video geometry: frames, size, region; no identifiers).
- Resume: each .npy is written to a temporary name and renamed, so a clip file that exists is
  complete; a rerun reuses every clip whose file has the right shape and whose window and box
  match the previous clips.csv. Test hook: THYROVID_EXTRACT_DELAY_S sleeps after each clip.

Cutting and caching live in `thyrovid.clips.cache`, the window and box geometry in
`thyrovid.clips.geometry`, the parameters (`ClipSpec`, WORK/extract.json) in `thyrovid.runs`.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from thyrovid.atomic import write_text_atomic
from thyrovid.clips.cache import is_done, remove_stale_temps, run_jobs, start_pool, video_jobs
from thyrovid.clips.geometry import clip_window, expand_box, padding_note
from thyrovid.errors import UserError
from thyrovid.runs import ClipSpec, read_extract_json

if TYPE_CHECKING:  # pandas and the cohort code load lazily: worker processes never need them
    import pandas as pd

    from thyrovid.cohort.schema import Cohort

# Fewer clips than this: the run stays in this process. Spawned workers cost ~0.5-1 s to start
# (imports); on a 16-core machine 2 workers only broke even at ~270 clips (BENCHMARKS.md).
POOL_MIN_CLIPS = 256
FIRST_COLUMNS = [
    "clip_id", "patient_id", "nodule_id", "video_id", "center", "label", "split", "key_frame",
    "first_frame", "n_frames", "padded", "pad_before", "clip_path", "image_path",
    "roi_x0", "roi_y0", "roi_x1", "roi_y1", "x0", "y0", "x1", "y1", "row", "video",
]  # fmt: skip
_PLAN_KEYS = ["video_id", "key_frame", "first_frame", "n_frames", "pad_before",
              "roi_x0", "roi_y0", "roi_x1", "roi_y1"]  # fmt: skip


@dataclass
class ExtractReport:
    """What `extract` did. `skipped`: one line per dropped row; `clips`: rows in clips.csv."""

    work_dir: str
    rows: int
    clips: int
    extracted: int
    reused: int
    skipped: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    splits: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def video_ids(videos: Iterable[str]) -> dict[str, str]:
    """Cohort video paths -> pseudonymous ids: the file stem, with parent folders if shared.

    Each video gets the shortest "_"-joined tail of its (sanitised) path that no other video
    shares; when even its whole path clashes, its rank among the sorted paths is appended.
    One pass per path depth with a counter of the tails, so thousands of videos that all
    share a stem ("IMG0001.dcm" in every patient folder) take linear time, not quadratic.
    """
    parts = {}
    for v in videos:
        p = PurePosixPath(v.replace("\\", "/"))
        names = [x for x in p.parts if x not in ("", ".", "..", "/")]
        names[-1] = PurePosixPath(names[-1]).stem or names[-1]
        parts[v] = [re.sub(r"[^A-Za-z0-9._-]+", "_", x) for x in names]
    out: dict[str, str | None] = {}
    pending = list(parts)
    depth = 1
    while pending:
        tails = {v: "_".join(n[-depth:]) for v, n in parts.items()}
        count = Counter(tails.values())
        rest = []
        for v in pending:
            if count[tails[v]] == 1:
                out[v] = tails[v]
            elif depth >= len(parts[v]):
                out[v] = None  # whole path shared: numbered below
            else:
                rest.append(v)
        pending, depth = rest, depth + 1
    rank = {v: i for i, v in enumerate(sorted(parts))}
    return {v: out[v] if out[v] is not None else f"{'_'.join(parts[v])}_{rank[v]}" for v in parts}


def _read_headers(cohort: Cohort, cache_file: Path) -> dict[str, object]:
    """Each distinct video's header: video_path -> VideoInfo, or an error line.

    Opens each video once (header only). Headers are cached in `cache_file` (geometry only,
    keyed by path, size and modification time), so a rerun on a large cohort opens nothing.
    """
    from thyrovid.clips.check import video_digests
    from thyrovid.io import VideoInfo, open_video

    try:
        cache = json.loads(cache_file.read_text())
        if not isinstance(cache, dict):
            cache = {}
    except (OSError, ValueError):
        cache = {}
    headers: dict[str, object] = {}
    fresh = {}
    for path, video in cohort.rows.groupby("video_path", sort=False)["video"].first().items():
        st = os.stat(path)
        stamp = [st.st_size, st.st_mtime_ns]
        hit = cache.get(path)
        try:
            if hit and hit["stamp"] == stamp and "digests" in hit:
                region = tuple(hit["region"]) if hit["region"] else None
                headers[path] = VideoInfo(hit["format"], *hit["shape"], region=region)
                fresh[path] = hit
                continue
        except (KeyError, TypeError, ValueError):  # a damaged cache entry: read the video again
            pass
        try:
            with open_video(path) as v:
                info = headers[path] = v.info
                digests = video_digests(path, v)
        except UserError as exc:
            why = str(exc).removeprefix(f"{path}: ")  # the row names the video already
            headers[path] = f"video {video!r} could not be opened: {why}"
            continue
        shape = [info.n_frames, info.height, info.width, info.channels]
        region = list(info.region) if info.region else None
        fresh[path] = {
            "stamp": stamp, "format": info.format, "shape": shape, "region": region,
            "digests": digests,
        }  # fmt: skip
    if fresh != cache:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(cache_file, json.dumps(fresh, sort_keys=True) + "\n")
    headers["_digests"] = {p: e["digests"] for p, e in fresh.items()}
    return headers


class SharedVideosError(UserError):
    """Videos that are another patient's recording too; `lines` names each (one line each)."""

    def __init__(self, lines: list[str]):
        self.lines = lines
        more = f" ({len(lines) - 1} more such video(s) above)" if len(lines) > 1 else ""
        super().__init__(
            f"{lines[0]}{more}; nothing extracted: fix the rows, or pass --allow-shared-videos "
            "when the sharing is intended"
        )


def plan_clips(
    cohort: Cohort, headers: dict, frames: int, size: int, expand: float, sectors=None
) -> tuple[pd.DataFrame, list]:
    """Plan one clip per cohort row: (clips.csv rows without split, Problems of rows dropped).

    clip_id is ``<video_id>_f<key frame:05d>``, with ``_<nodule_id>`` appended when two nodules
    share a key frame; a nodule_id used by two patients becomes ``<patient_id>:<nodule_id>``.
    """
    import pandas as pd

    from thyrovid.cohort.schema import Problem, format_number

    rows = cohort.rows
    ids = video_ids(rows["video"].unique())
    shared = rows.groupby("nodule_id")["patient_id"].nunique()
    shared = set(shared[shared > 1].index)
    problems, out, seen, taken = [], [], {}, set()
    for row, r in zip(rows.index, rows.to_dict("records")):
        info = headers[r["video_path"]]
        bounds = info.region or (0, 0, info.width, info.height)
        sector = sectors.get(r["video_path"]) if sectors else None
        if sector is not None:
            bounds = sector.box
        bounds = (max(bounds[0], 0), max(bounds[1], 0), min(bounds[2], info.width),
                  min(bounds[3], info.height))  # fmt: skip
        roi = expand_box((r["x0"], r["y0"], r["x1"], r["y1"]), expand, bounds)
        if roi is None:
            box = ", ".join(format_number(float(r[k])) for k in ("x0", "y0", "x1", "y1"))
            region = ", ".join(str(b) for b in bounds)
            what = "scan sector" if sector is not None else "ultrasound imaging region"
            msg = f"box ({box}) is outside the {what} ({region}) of the video"
            problems.append(Problem(row, msg))
            continue
        first, n_real, pad = clip_window(int(r["frame"]), info.n_frames, frames)
        vid = ids[r["video"]]
        nodule = (
            f"{r['patient_id']}:{r['nodule_id']}" if r["nodule_id"] in shared else r["nodule_id"]
        )
        key = (r["video_path"], int(r["frame"]), r["patient_id"], r["nodule_id"])
        if key in seen:
            problems.append(Problem(row, f"same video, key frame and nodule as row {seen[key]}"))
            continue
        seen[key] = row
        clip_id = f"{vid}_f{int(r['frame']):05d}"
        if clip_id in taken:  # another nodule boxed on the same key frame
            clip_id += "_" + re.sub(r"[^A-Za-z0-9._-]+", "_", str(r["nodule_id"]))
        if clip_id in taken:  # nodule ids that differ only in characters dropped above
            clip_id += f"_r{row}"
        taken.add(clip_id)
        rec = {
            "clip_id": clip_id, "patient_id": r["patient_id"], "nodule_id": nodule,
            "video_id": vid, "center": r["center"], "label": int(r["label"]),
            "split": r["split"], "key_frame": int(r["frame"]), "first_frame": first,
            "n_frames": n_real, "padded": int(n_real < frames), "pad_before": pad,
            "clip_path": f"clips/{clip_id}.npy", "image_path": f"images/{clip_id}.npy",
            "roi_x0": roi[0], "roi_y0": roi[1], "roi_x1": roi[2], "roi_y1": roi[3],
            "x0": format_number(r["x0"]), "y0": format_number(r["y0"]), "x1": format_number(r["x1"]), "y1": format_number(r["y1"]),
            "row": row, "video": r["video"], "video_path": r["video_path"],
        }  # fmt: skip
        if sectors is not None:
            rec["sector_masked"] = int(sector is not None and sector.mask is not None)
            rec["sector_source"] = sector.source if sector is not None else ""
        for col in cohort.extras:
            rec[col if col not in FIRST_COLUMNS else f"cohort_{col}"] = r[col]
        out.append(rec)
    source = cohort.path.name
    return pd.DataFrame(out), [Problem(p.row, p.message, source) for p in problems]


def _check_params(work: Path, params: dict, overwrite: bool) -> None:

    path = work / "extract.json"
    if path.exists() and not overwrite:
        old = read_extract_json(work) or {}
        if any(old.get(k) != v for k, v in params.items()):
            have = ", ".join(f"{k}={old.get(k)}" for k in params)
            raise UserError(
                f"{work}: already extracted with {have}; use the same parameters, another "
                "--out folder, or --overwrite"
            )
    write_text_atomic(path, json.dumps(params, indent=2, sort_keys=True) + "\n")


def _pending(plan: pd.DataFrame, work: Path, frames: int, size: int, overwrite: bool) -> pd.Series:
    """Boolean mask of the plan rows whose clip must be (re)extracted."""
    import pandas as pd

    if overwrite:
        return pd.Series(True, index=plan.index, dtype=bool)
    old = {}
    if (work / "clips.csv").exists():
        prev = pd.read_csv(work / "clips.csv", dtype=str, keep_default_na=False)
        if set(_PLAN_KEYS) <= set(prev.columns):
            old = {r["clip_id"]: [r[k] for k in _PLAN_KEYS] for r in prev.to_dict("records")}
    todo = []
    for rec in plan.to_dict("records"):
        same = old.get(rec["clip_id"], None) in (None, [str(rec[k]) for k in _PLAN_KEYS])
        ok = (
            same
            and is_done(work / rec["clip_path"], (frames, size, size))
            and is_done(work / rec["image_path"], (size, size))
        )
        todo.append(not ok)
    return pd.Series(todo, index=plan.index, dtype=bool)


def extract(
    cohort_csv: str | os.PathLike,
    out_dir: str | os.PathLike,
    frames: int = ClipSpec.frames,
    size: int = ClipSpec.size,
    expand: float = ClipSpec.expand,
    workers: int | None = None,
    overwrite: bool = False,
    strict: bool = False,
    external_centers: Sequence[str] = (),
    seed: int = 0,
    mask_outside_sector: bool = False,
    frame_base: int = 0,
    allow_shared_videos: bool = False,
) -> ExtractReport:
    """Validate `cohort_csv` and write the clip cache and clips.csv into `out_dir`.

    Args:
        cohort_csv: the cohort (columns in README.md, 'Your own data').
        out_dir: the work folder WORK (created).
        frames: clip length T (paper: 32).
        size: output height = width in pixels (paper: 224).
        expand: box expansion about its centre (paper: 1.5).
        workers: processes decoding videos in parallel; default min(2, cpu count). Runs with
            fewer than POOL_MIN_CLIPS clips to cut stay in this process.
        overwrite: re-extract every clip, and allow new parameters in an existing WORK.
        strict: stop with CohortError at the first bad row instead of skipping it (a video
            that fails to decode mid-run: the run finishes the others, then raises).
        external_centers: centers whose patients form the external test split.
        seed: the split seed (see thyrovid.cohort.splits).
        mask_outside_sector: clamp boxes to each video's scan sector and blank what lies
            outside it (see the module docstring).
        frame_base: 1 when cohort.csv numbers frames from 1 (as viewers do); clips.csv's
            key_frame is always 0-based.
        allow_shared_videos: go on (with a warning per video) when one video, a copy of it
            or its pixels are listed under two patients; by default SharedVideosError, before
            any clip is cut.

    Returns:
        ExtractReport. Rows that could not be used are listed in its `skipped`.
    """
    from thyrovid.cohort.schema import Problem, read_cohort

    t0 = time.perf_counter()
    spec = ClipSpec(frames, size, expand).check()
    workers = workers or min(2, os.cpu_count() or 1)
    work = Path(out_dir)
    if work.exists() and not work.is_dir():
        raise UserError(f"{work}: --out names an existing file; give a folder (WORK)")
    if frame_base not in (0, 1):
        raise UserError(f"--frame-base must be 0 or 1, got {frame_base}")
    cohort = read_cohort(cohort_csv, strict=strict, frame_base=frame_base)
    n_rows = len(cohort.rows) + len({p.row for p in cohort.problems})
    first_run = overwrite or not (work / "clips.csv").exists()
    with ExitStack() as stack:
        pool = None
        if workers > 1 and first_run and len(cohort.rows) >= POOL_MIN_CLIPS:
            pool = start_pool(workers)  # the workers start while the headers are read
            stack.callback(pool.shutdown, cancel_futures=True)
        plan, warnings, sectors = _validate_and_plan(
            cohort, work, frames, size, expand, strict, external_centers, seed,
            mask_outside_sector, allow_shared_videos,
        )  # fmt: skip
        (work / "clips").mkdir(parents=True, exist_ok=True)
        (work / "images").mkdir(parents=True, exist_ok=True)
        params = spec.to_json()
        if mask_outside_sector:
            params["mask_outside_sector"] = True
        _check_params(work, params, overwrite)
        remove_stale_temps(work)
        failed, n_todo = {}, 0
        if not plan.empty:
            todo = _pending(plan, work, frames, size, overwrite)
            n_todo = int(todo.sum())
            jobs = video_jobs(plan[todo], work, frames, size)
            for job in jobs:
                sector = sectors.get(job["video_path"]) if sectors else None
                job["mask"] = sector.mask if sector is not None else None
            results = run_jobs(jobs, workers, POOL_MIN_CLIPS, pool)
            failed = {row: msg for row, msg in results if msg}
    problems = cohort.problems + [Problem(r, m, cohort.path.name) for r, m in failed.items()]
    skipped = [str(p) for p in sorted(problems, key=lambda p: p.row)]
    if not plan.empty:
        plan = plan[~plan["row"].isin(failed)]
    _write_clips_csv(plan, work)
    if strict and failed:
        raise UserError(skipped[0])
    return ExtractReport(
        work_dir=str(work),
        rows=n_rows,
        clips=len(plan),
        extracted=n_todo - len(failed),
        reused=len(plan) - (n_todo - len(failed)),
        skipped=skipped,
        warnings=warnings,
        splits=dict(sorted(Counter(plan["split"]).items())) if len(plan) else {},
        seconds=round(time.perf_counter() - t0, 3),
    )


def _sectors(cohort: Cohort, headers: dict) -> dict:
    """Each openable video's scan sector (None when neither pixels nor header give one)."""
    from tqdm import tqdm

    from thyrovid.io import open_video
    from thyrovid.io.sector import video_sector

    out = {}
    paths = [p for p in cohort.rows["video_path"].unique() if not isinstance(headers[p], str)]
    for path in tqdm(paths, unit="video", desc="sector", file=sys.stderr, disable=None):
        try:
            with open_video(path) as video:
                out[path] = video_sector(video)
        except UserError:  # a frame that does not decode: the clip cutting reports it
            out[path] = None
    return out


def _validate_and_plan(
    cohort: Cohort, work: Path, frames, size, expand, strict, external_centers, seed,
    mask_outside_sector=False, allow_shared_videos=False,
) -> tuple[pd.DataFrame, list[str], dict | None]:  # fmt: skip
    """Check rows against the video headers, plan the clips, assign splits; drop bad rows."""
    from thyrovid.clips.check import shared_videos
    from thyrovid.cohort.schema import check_against_videos
    from thyrovid.cohort.splits import assign_splits, conflicts, patient_table, unknown_centers

    headers = _read_headers(cohort, work / "videos.json")
    digests = headers.pop("_digests")
    check_against_videos(cohort, headers, strict=strict)
    sectors = _sectors(cohort, headers) if mask_outside_sector else None
    plan, problems = plan_clips(cohort, headers, frames, size, expand, sectors)
    cohort.drop(problems, strict=strict)
    # Leakage, among the rows that would be cut, before any clip is.
    shared = shared_videos(cohort.rows, digests, cohort.path.name) if len(cohort.rows) else []
    if shared and not allow_shared_videos:
        raise SharedVideosError(shared)
    patients = patient_table(cohort.rows)
    warnings = shared + unknown_centers(patients, external_centers)
    warnings += list(conflicts(patients, external_centers).values())
    if not plan.empty:
        plan = plan[plan["row"].isin(cohort.rows.index)].reset_index(drop=True)
        warnings += _short_video_warnings(plan, frames)
        split_of = assign_splits(patients, external_centers, seed=seed)
        plan["split"] = plan["patient_id"].map(split_of)
    return plan, warnings, sectors


def _short_video_warnings(plan: pd.DataFrame, frames: int) -> list[str]:
    """One line per video shorter than the clip: its clips are padded (see the module doc)."""
    out = []
    for video, grp in plan[plan["n_frames"] < frames].groupby("video", sort=False):
        note = padding_note(int(grp["n_frames"].iloc[0]), frames, f"its {len(grp)} clip(s)")
        out.append(f"video {video!r} {note} (clips.csv: padded = 1)")
    return out


def _write_clips_csv(plan: pd.DataFrame, work: Path) -> None:
    import pandas as pd

    if plan.empty:
        plan = pd.DataFrame(columns=FIRST_COLUMNS)
    cols = FIRST_COLUMNS + [c for c in plan.columns if c not in FIRST_COLUMNS + ["video_path"]]
    write_text_atomic(work / "clips.csv", plan[cols].to_csv(index=False, lineterminator="\n"))


def add_arguments(parser) -> None:
    """The `thyrovid extract` arguments."""
    parser.add_argument(
        "cohort", metavar="COHORT_CSV", help="cohort.csv (columns: README.md, 'Your own data')"
    )
    parser.add_argument("--out", required=True, metavar="WORK", help="work folder to write")
    spec = ClipSpec()
    parser.add_argument("--frames", type=int, default=spec.frames,
                        help=f"frames per clip (default {spec.frames})")  # fmt: skip
    parser.add_argument("--size", type=int, default=spec.size,
                        help=f"clip height/width (default {spec.size})")  # fmt: skip
    parser.add_argument("--expand", type=float, default=spec.expand,
                        help=f"box expansion (default {spec.expand})")  # fmt: skip
    parser.add_argument(
        "--workers", type=int, default=None, help="processes (default min(2, CPUs))"
    )
    parser.add_argument("--overwrite", action="store_true", help="re-extract every clip")
    parser.add_argument("--strict", action="store_true", help="stop at the first bad row")
    parser.add_argument(
        "--external-centers",
        default="",
        metavar="A,B",
        help="centers forming the external test set",
    )
    parser.add_argument("--seed", type=int, default=0, help="split seed (default 0)")
    parser.add_argument(
        "--mask-outside-sector",
        action="store_true",
        help="estimate each video's scan sector (the fan of a convex probe: what changes over "
        "time), clamp boxes to it and blank the black wedges and burned-in text outside it; "
        "recorded in clips.csv (sector_masked) and extract.json",
    )
    parser.add_argument(
        "--frame-base", type=int, choices=(0, 1), default=0,
        help="how cohort.csv numbers its frames: 0 (default: the first frame is 0) or 1 (as "
        "DICOM viewers number them); clips.csv's key_frame is always 0-based",
    )  # fmt: skip
    parser.add_argument(
        "--allow-shared-videos", action="store_true",
        help="go on when one video (the same file, a copy or the same pixels) is listed under "
        "two patients; by default extract refuses: it would sit on both sides of a split",
    )  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def summary_text(report: ExtractReport) -> str:
    """The terminal summary: what was read, cut, reused and skipped, and the clips per split."""
    lines = [
        f"work folder   {report.work_dir}",
        f"rows read     {report.rows}",
        f"clips         {report.clips} ({report.extracted} cut, {report.reused} reused)",
        f"rows skipped  {len(report.skipped)}" + (" (lines above)" if report.skipped else ""),
    ]
    if report.warnings:
        lines.append(f"warnings      {len(report.warnings)} (lines above)")
    if report.splits:
        width = max(len(s) for s in report.splits)
        lines += ["", f"{'split'.ljust(width)}  clips"]
        lines += [f"{s.ljust(width)}  {n}" for s, n in report.splits.items()]
    lines.append(f"\n{report.seconds:.1f} s; --json for this summary as JSON")
    return "\n".join(lines)


def run(args) -> int:
    """Run `extract`, print skipped rows to stderr and a summary table (or --json) to stdout."""
    try:
        report = extract(
            args.cohort,
            args.out,
            frames=args.frames,
            size=args.size,
            expand=args.expand,
            workers=args.workers,
            overwrite=args.overwrite,
            strict=args.strict,
            external_centers=[c for c in args.external_centers.split(",") if c.strip()],
            seed=args.seed,
            mask_outside_sector=args.mask_outside_sector,
            frame_base=args.frame_base,
            allow_shared_videos=args.allow_shared_videos,
        )
    except SharedVideosError as exc:
        for line in exc.lines[1:]:
            print(f"error: {line}", file=sys.stderr)
        raise
    for line in report.warnings:
        print(f"warning: {line}", file=sys.stderr)
    for line in report.skipped:
        print(f"skipped: {line}", file=sys.stderr)
    print(json.dumps(report.to_dict(), indent=2) if args.json else summary_text(report))
    if not report.clips:
        print(f"thyrovid extract: error: no usable rows in {args.cohort}", file=sys.stderr)
    return 0 if report.clips else 2
