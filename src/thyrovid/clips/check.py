"""`thyrovid check COHORT_CSV`: a cohort's data problems found in minute 1, not at epoch 1.

Reads cohort.csv the way `extract` does, opens every video once (in parallel, with a progress
bar) and decodes a sample of its frames (every frame with ``--decode all``):

- per file: decodable or not (and the package that would fix it), frames, fps, size, colour
  model, transfer syntax, pixel spacing, the scan sector (`thyrovid.io.sector`), how many
  of the decoded frames fail;
- per row: key frame beyond the video, box outside the frame or the scan sector, a video
  shorter than a clip (padded by extract), the rows `read_cohort` already refuses;
- across the cohort: the same video under two patients (the same file, the same SOP Instance
  UID, or the same pixels), which would put one recording on both sides of a split;
- per centre and split (splits as extract assigns them): patients, nodules, label balance.

Severity: an *error* is something `extract` would skip or refuse (a row it drops, a video or a
frame that does not decode) or a video shared by two patients; a *warning* is worth a look
(a short video, a box partly outside the sector, a split with one class). The exit code is 1
when there is any error, 0 otherwise (2 for a cohort.csv that cannot be read at all).

``--decode sample`` decodes, per video, 16 frames spread over it, every key frame and the first
and last frame of every clip window; ``--decode all`` decodes every frame (a file whose middle
frames are damaged is found only so). Duplicate pixels are compared on frames 0, n // 2 and
n - 1; "the same file" means the same path, or the same size and the same bytes at the start,
middle and end. SOP Instance UIDs are compared as hashes and never written out; no output
carries a DICOM identifier, only the ids and paths of cohort.csv.

Writes ``OUT/check.json`` (everything), ``OUT/check_problems.csv`` (one row per problem),
``OUT/check_videos.csv`` (one row per video) and ``OUT/check_balance.csv`` (centre x split).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from thyrovid.atomic import write_text_atomic
from thyrovid.clips.geometry import clip_window
from thyrovid.errors import UserError
from thyrovid.runs import ClipSpec

DECODE_MODES = ("sample", "all")
CHUNK = 32  # frames per frames() call
POOL_MIN_VIDEOS = 16  # fewer videos: stay in this process (a spawned worker costs ~1 s)
_HASH_BLOCK = 1 << 20
_SHOWN = 40  # problem lines printed in the terminal; all are in the files
VIDEO_COLUMNS = [
    "video", "decodable", "error", "fix", "format", "frames", "fps", "height", "width",
    "channels", "photometric", "transfer_syntax", "decoder", "pixel_spacing_mm",
    "ultrasound_region", "sector", "sector_source", "sector_fraction", "frames_decoded",
    "frames_failed", "failed_frames", "rows",
]  # fmt: skip


# --------------------------------------------------------------------------- one video
def _fix_hint(message: str) -> str | None:
    found = re.search(r"install ([A-Za-z0-9_.\-]+)", message)
    return found.group(1) if found else None


def _file_digest(path: str) -> str:
    """Size plus the first, middle and last MiB: equal for copies of one file."""
    h = hashlib.blake2b(digest_size=16)
    size = os.path.getsize(path)
    h.update(str(size).encode())
    with open(path, "rb") as fh:
        for start in sorted({0, max(0, size // 2 - _HASH_BLOCK // 2), max(0, size - _HASH_BLOCK)}):
            fh.seek(start)
            h.update(fh.read(_HASH_BLOCK))
    return h.hexdigest()


def _pixel_digest(info, frames: dict) -> str:
    """Hash of the decoded frames 0, n // 2 and n - 1 (`frames`: index -> frame) and the shape."""
    h = hashlib.blake2b(digest_size=16)
    h.update(repr((info.n_frames, info.height, info.width, info.channels)).encode())
    for i in sorted(frames):
        f = frames[i]
        h.update(f if isinstance(f, bytes) else np.ascontiguousarray(f).tobytes())
    return h.hexdigest()


def video_digests(path: str, video) -> dict:
    """The hashes `_duplicates` compares, for an open video: file (size and bytes), SOP
    Instance UID, pixels (frames 0, middle and last as stored in a DICOM, so a copy with
    another header matches; decoded for other formats; None when one cannot be read)."""
    uid = getattr(video, "instance_uid", None)
    out = {
        "file_digest": _file_digest(path),
        "uid_digest": hashlib.blake2b(uid.encode(), digest_size=16).hexdigest() if uid else None,
        "pixel_digest": None,
    }
    n = video.info.n_frames
    idx = sorted({0, n // 2, n - 1})
    encoded = getattr(video, "encoded_frame", None)  # DICOM: the stored bytes, no decoding
    try:
        frames = {i: encoded(i) if encoded else video.frame(i) for i in idx}
    except UserError:
        return out
    if all(f is not None for f in frames.values()):
        out["pixel_digest"] = _pixel_digest(video.info, frames)
    return out


def shared_videos(rows, results: dict, source: str) -> list[str]:
    """One line per video that is another patient's recording too (the same path, file, SOP
    Instance UID or pixels): the leaks that put one recording on both sides of a split.

    `rows`: cohort rows (video_path, video, patient_id, label, split); `results`: video_path
    -> `video_digests` (missing for videos that did not open).
    """
    results = {p: results.get(p) or {} for p in rows["video_path"].unique()}
    path_of = rows.groupby("video", sort=False)["video_path"].first().to_dict()
    out, named = [], set()
    for problem in _duplicates(rows, results, source):
        path = path_of[problem["video"]]
        if problem["severity"] != "error" or path in named:
            continue  # a copy already named on the line of its twin: one line per recording
        out.append(problem["line"])
        named.add(path)
        for key in ("file_digest", "uid_digest", "pixel_digest"):
            digest = results[path].get(key)
            if digest:
                named |= {q for q, r in results.items() if r.get(key) == digest}
    return out


def _wanted_frames(job: dict, n: int) -> list[int]:
    from thyrovid.io.sector import sample_indices

    if job["decode"] == "all":
        return list(range(n))
    want = set(sample_indices(n, 16)) | {0, n // 2, n - 1}
    for key in job["keys"]:
        if 0 <= key < n:
            first, n_real, _ = clip_window(key, n, job["frames"])
            want |= {key, first, first + n_real - 1}
    return sorted(want)


def inspect_video(job: dict) -> dict:
    """Open one video, decode its sample, estimate its sector. Never raises for bad input.

    Args:
        job: path, video (as cohort.csv names it), keys (key frames), frames (clip length),
            decode ("sample" or "all").

    Returns:
        dict with the VIDEO_COLUMNS fields plus the internal hashes (file_digest,
        uid_digest, pixel_digest) used for duplicates.
    """
    from thyrovid.io import open_video, to_gray
    from thyrovid.io.sector import estimate_sector, header_sector, sample_indices

    out: dict = {"path": job["path"], "video": job["video"], "decodable": False}
    try:
        out["file_digest"] = _file_digest(job["path"])
        video = open_video(job["path"])
    except UserError as exc:
        why = str(exc).removeprefix(f"{job['path']}: ")
        out.update(error=why, fix=_fix_hint(why))
        return out
    except OSError as exc:
        out.update(error=f"cannot read file ({exc.strerror or exc})", fix=None)
        return out
    with video:
        info = video.info
        extra = info.extra
        uid = getattr(video, "instance_uid", None)
        out.update(
            format=info.format, frames=info.n_frames, height=info.height, width=info.width,
            channels=info.channels, fps=round(info.fps, 3) if info.fps else None,
            photometric=extra.get("photometric"),
            transfer_syntax=extra.get("transfer_syntax") or extra.get("codec"),
            decoder=extra.get("decoder"),
            pixel_spacing_mm=[round(v, 6) for v in info.pixel_spacing_mm]
            if info.pixel_spacing_mm else None,
            ultrasound_region=list(info.region) if info.region else None,
            uid_digest=hashlib.blake2b(uid.encode(), digest_size=16).hexdigest() if uid else None,
        )  # fmt: skip
        n = info.n_frames
        wanted = _wanted_frames(job, n)
        for_sector = set(sample_indices(n, 16))
        for_hash = {0: None, n // 2: None, n - 1: None}
        grey, failed, first_error = [], [], None
        for start in range(0, len(wanted), CHUNK):
            chunk = wanted[start : start + CHUNK]
            try:
                block = list(zip(chunk, video.frames(chunk)))
            except UserError:  # find which frames fail, one at a time
                block = []
                for i in chunk:
                    try:
                        block.append((i, video.frame(i)))
                    except UserError as exc:
                        failed.append(i)
                        first_error = first_error or str(exc).removeprefix(f"{job['path']}: ")
            for i, frame in block:
                if i in for_sector:
                    grey.append(to_gray(frame))
                if i in for_hash:
                    for_hash[i] = frame
        out["frames_decoded"] = len(wanted)
        out["frames_failed"] = len(failed)
        out["failed_frames"] = failed
        out["decode_error"] = first_error
        out["decodable"] = not failed
        if all(v is not None for v in for_hash.values()):
            out["pixel_digest"] = _pixel_digest(info, for_hash)
        sector = None
        if len(grey) >= 3:
            sector = estimate_sector(np.stack(grey), info.region)
        sector = sector or header_sector(info.region)
        if sector is not None:
            out["sector"] = list(sector.box)
            out["sector_source"] = sector.source
            out["sector_fraction"] = sector.fraction
    return out


# --------------------------------------------------------------------------- the cohort
def _init_worker(parent: int | None = None) -> None:
    from thyrovid.clips.cache import die_with_parent

    os.environ["OMP_NUM_THREADS"] = "1"
    if parent is not None:
        die_with_parent(parent)
    import cv2

    cv2.setNumThreads(1)


def _run(jobs: list[dict], workers: int, progress: bool) -> list[dict]:
    from tqdm import tqdm

    results = []
    disable = None if progress else True
    with tqdm(total=len(jobs), unit="video", desc="check", file=sys.stderr, disable=disable) as bar:
        if workers <= 1 or len(jobs) < POOL_MIN_VIDEOS:
            for job in jobs:
                results.append(inspect_video(job))
                bar.update()
            return results
        ctx = get_context("spawn")
        with ProcessPoolExecutor(
            workers, mp_context=ctx, initializer=_init_worker, initargs=(os.getpid(),)
        ) as pool:
            futures = [pool.submit(inspect_video, job) for job in jobs]
            for fut in as_completed(futures):
                results.append(fut.result())
                bar.update()
    order = {job["path"]: k for k, job in enumerate(jobs)}
    return sorted(results, key=lambda r: order[r["path"]])


def _problem(row: int, video: str | None, severity: str, kind: str, message: str, source: str):
    from thyrovid.cohort.schema import Problem

    return {
        "row": int(row),
        "video": video,
        "severity": severity,
        "kind": kind,
        "message": message,
        "line": str(Problem(row, message, source)),
    }


def _row_problems(rows, results: dict, frames: int, source: str) -> list[dict]:
    """Key frame, box, sector, decoding and length checks of every row."""
    from thyrovid.cohort.schema import box_problem, format_number

    out = []
    short_seen = set()
    for row, r in zip(rows.index, rows.to_dict("records")):
        res = results[r["video_path"]]
        video = r["video"]
        if "frames" not in res:
            fix = (
                f"; install {res['fix']}"
                if res.get("fix") and "install" not in res["error"]
                else ""
            )
            msg = f"video {video!r} could not be opened: {res['error']}{fix}"
            out.append(_problem(row, video, "error", "undecodable", msg, source))
            continue
        n = res["frames"]
        if r["frame"] >= n:
            msg = f"key frame {r['frame']} is beyond the video ({n} frames, 0-based)"
            out.append(_problem(row, video, "error", "key_frame", msg, source))
            continue
        if res["frames_failed"]:
            first, n_real, _ = clip_window(int(r["frame"]), n, frames)
            bad = [i for i in res["failed_frames"] if first <= i < first + n_real]
            shown = ", ".join(map(str, res["failed_frames"][:8]))
            more = "..." if res["frames_failed"] > 8 else ""
            msg = (
                f"video {video!r}: {res['frames_failed']} of {res['frames_decoded']} decoded "
                f"frames do not decode (frames {shown}{more}; {res['decode_error']})"
            )
            if bad:
                msg += f"; {len(bad)} of them in this row's clip window: extract skips the row"
            out.append(_problem(row, video, "error", "corrupt_frames", msg, source))
        box = (r["x0"], r["y0"], r["x1"], r["y1"])
        why = box_problem(box, res["width"], res["height"])
        if why:
            out.append(_problem(row, video, "error", "box_outside_frame", why, source))
            continue
        sector = res.get("sector")
        if sector:
            sx0, sy0, sx1, sy1 = sector
            ix = max(0.0, min(box[2], sx1) - max(box[0], sx0))
            iy = max(0.0, min(box[3], sy1) - max(box[1], sy0))
            inside = ix * iy / ((box[2] - box[0]) * (box[3] - box[1]))
            text = ", ".join(format_number(float(v)) for v in box)
            where = f"the scan sector ({', '.join(map(str, sector))}; {res['sector_source']})"
            if inside == 0:
                msg = f"box ({text}) is outside {where}: extract skips the row"
                out.append(_problem(row, video, "error", "box_outside_sector", msg, source))
            elif inside < 1:
                msg = f"box ({text}) is {100 * (1 - inside):.0f}% outside {where}"
                out.append(_problem(row, video, "warning", "box_outside_sector", msg, source))
        if n < frames and video not in short_seen:
            short_seen.add(video)
            msg = (
                f"video {video!r} has {n} frame(s), fewer than the {frames} of a clip: extract "
                "pads its clips by repeating the first and last frames"
            )
            out.append(_problem(row, video, "warning", "short_video", msg, source))
    return out


def _duplicates(rows, results: dict, source: str) -> list[dict]:
    """Videos that are one recording: the same file, SOP Instance UID or pixels."""
    by_video = rows.groupby("video_path", sort=False)
    patients = by_video["patient_id"].agg(lambda s: sorted(set(s))).to_dict()
    first_row = by_video.apply(lambda g: int(g.index[0]), include_groups=False).to_dict()
    name = by_video["video"].first().to_dict()
    out = []
    # The same path under two patients.
    for path, pats in patients.items():
        if len(pats) > 1:
            msg = (
                f"video {name[path]!r} is listed under {len(pats)} patients "
                f"({', '.join(map(repr, pats))}): one recording on both sides of a split"
            ) + _differ(rows, [path])
            out.append(_problem(first_row[path], name[path], "error", "duplicate", msg, source))
    kinds = (
        ("file_digest", "the same file (size and bytes) as"),
        ("uid_digest", "the same SOP Instance UID as"),
        ("pixel_digest", "the same pixels as"),
    )
    groups: dict[str, dict[str, list[str]]] = {key: defaultdict(list) for key, _ in kinds}
    for path in patients:
        for key, _ in kinds:
            if results[path].get(key):
                groups[key][results[path][key]].append(path)
    for path in patients:
        for key, what in kinds:  # the strongest kind only, one line per video
            digest = results[path].get(key)
            others = [p for p in groups[key][digest] if p != path] if digest else []
            if not others:
                continue
            other_pats = {q for p in others for q in patients[p]}
            cross = bool(other_pats - set(patients[path]))
            listed = ", ".join(
                f"{name[p]!r} (row {first_row[p]}, patient {', '.join(map(repr, patients[p]))})"
                for p in others[:3]
            ) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
            msg = f"video {name[path]!r} is {what} {listed}"
            if cross:
                msg += ": another patient's recording, on both sides of a split"
                msg += _differ(rows, [path, *others])
            sev = "error" if cross else "warning"
            out.append(_problem(first_row[path], name[path], sev, "duplicate", msg, source))
            break
    return out


def _differ(rows, paths: list[str]) -> str:
    """' (labels 0 and 1; splits train and test)' when the rows of `paths` disagree."""
    sub = rows[rows["video_path"].isin(paths)]
    parts = []
    for col, what in (("label", "labels"), ("split", "splits")):
        if col in sub:
            values = sorted({str(v) for v in sub[col] if str(v)})
            if len(values) > 1:
                parts.append(f"{what} {' and '.join(values)}")
    return f" ({'; '.join(parts)})" if parts else ""


def _balance(rows, external_centers, seed) -> tuple[list[dict], list[str]]:
    """Per centre and split: patients, nodules, label balance; warnings for one-class splits."""
    from thyrovid.cohort.splits import assign_splits, patient_table

    if rows.empty:
        return [], []
    patients = patient_table(rows)
    split_of = assign_splits(patients, external_centers, seed=seed)
    r = rows.assign(split=rows["patient_id"].map(split_of))
    nodules = r.groupby(["center", "split", "patient_id", "nodule_id"], sort=True)["label"].max()
    pats = r.groupby(["center", "split", "patient_id"], sort=True)["label"].max()
    table = []
    for (center, split), grp in nodules.groupby(level=[0, 1], sort=True):
        p = pats.loc[(center, split)]
        table.append({
            "center": center, "split": split, "patients": int(p.size),
            "malignant_patients": int(p.sum()), "nodules": int(grp.size),
            "malignant_nodules": int(grp.sum()), "benign_nodules": int(grp.size - grp.sum()),
            "malignant_fraction": round(float(grp.mean()), 3),
        })  # fmt: skip
    warnings = []
    by_split = pats.groupby(level=1)
    for split, p in by_split:
        if split in ("val", "test", "external") and p.nunique() < 2:
            only = "malignant" if int(p.iloc[0]) else "benign"
            warnings.append(
                f"split {split!r} has only {only} patients ({p.size}): its AUROC is undefined"
                + (" and the threshold falls back to 0.5" if split == "val" else "")
            )
    return table, warnings


def check(
    cohort_csv: str | os.PathLike,
    frames: int = ClipSpec.frames,
    decode: str = "sample",
    workers: int | None = None,
    external_centers=(),
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Check a cohort before extraction. See the module docstring.

    Returns:
        dict: cohort, rows, videos, decode, frames, seconds, errors, warnings, problems
        [{row, video, severity, kind, message, line}], videos_table [per video], balance
        [per centre and split], summary {frames, fps, sizes, photometric, ...}.
    """
    from thyrovid.cohort.schema import read_cohort

    if decode not in DECODE_MODES:
        raise UserError(f"--decode must be one of {', '.join(DECODE_MODES)}, got {decode!r}")
    if frames < 1:
        raise UserError(f"--frames must be >= 1, got {frames}")
    t0 = time.perf_counter()
    workers = workers or min(2, os.cpu_count() or 1)
    cohort = read_cohort(cohort_csv)
    source = cohort.path.name
    rows = cohort.rows
    problems = [_problem(p.row, None, "error", "row", p.message, source) for p in cohort.problems]
    jobs = []
    if not rows.empty:
        for path, grp in rows.groupby("video_path", sort=False):
            jobs.append({
                "path": path, "video": grp["video"].iloc[0], "keys": sorted(set(grp["frame"])),
                "frames": frames, "decode": decode,
            })  # fmt: skip
    results = {r["path"]: r for r in _run(jobs, workers, progress)}
    if not rows.empty:
        problems += _row_problems(rows, results, frames, source)
        problems += _duplicates(rows, results, source)
    balance, split_warnings = _balance(rows, external_centers, seed)
    problems += [_problem(0, None, "warning", "balance", w, source) for w in split_warnings]
    problems.sort(key=lambda p: (p["row"], p["severity"] != "error", p["kind"]))
    videos = []
    n_rows = rows.groupby("video_path", sort=False).size().to_dict() if not rows.empty else {}
    for job in jobs:
        res = results[job["path"]]
        rec = {k: res.get(k) for k in VIDEO_COLUMNS}
        rec["rows"] = int(n_rows.get(job["path"], 0))
        videos.append(rec)
    errors = sum(p["severity"] == "error" for p in problems)
    return {
        "cohort": str(cohort_csv),
        "rows": len(rows) + len({p.row for p in cohort.problems}),
        "videos": len(jobs),
        "decode": decode,
        "frames": frames,
        "seconds": round(time.perf_counter() - t0, 3),
        "errors": errors,
        "warnings": len(problems) - errors,
        "frames_decoded": int(sum(v["frames_decoded"] or 0 for v in videos)),
        "summary": _summary(videos),
        "balance": balance,
        "problems": problems,
        "videos_table": videos,
    }


def _summary(videos: list[dict]) -> dict:
    ok = [v for v in videos if v.get("frames")]

    def span(key):
        vals = [v[key] for v in ok if v.get(key) is not None]
        return [min(vals), max(vals)] if vals else None

    def counts(fn):
        c: dict[str, int] = defaultdict(int)
        for v in ok:
            c[fn(v)] += 1
        return dict(sorted(c.items(), key=lambda kv: -kv[1]))

    return {
        "opened": len(ok),
        "not_opened": len(videos) - len(ok),
        "with_failed_frames": sum(bool(v.get("frames_failed")) for v in ok),
        "frames": span("frames"),
        "fps": span("fps"),
        "no_fps": sum(v.get("fps") is None for v in ok),
        "sizes": counts(lambda v: f"{v['width']}x{v['height']}"),
        "photometric": counts(lambda v: str(v.get("photometric") or v.get("format"))),
        "transfer_syntax": counts(lambda v: str(v.get("transfer_syntax"))),
        "sector_source": counts(lambda v: str(v.get("sector_source"))),
    }


# --------------------------------------------------------------------------- files, terminal
def write_report(report: dict, out: Path) -> list[Path]:
    """OUT/check.json, check_problems.csv, check_videos.csv, check_balance.csv (atomic)."""
    import pandas as pd

    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "check.json"]
    write_text_atomic(paths[0], json.dumps(report, indent=2) + "\n")
    tables = {
        "check_problems.csv": (report["problems"], ["row", "video", "severity", "kind", "message"]),
        "check_videos.csv": (report["videos_table"], VIDEO_COLUMNS),
        "check_balance.csv": (report["balance"], None),
    }
    for name, (recs, cols) in tables.items():
        df = pd.DataFrame(recs, columns=cols) if cols else pd.DataFrame(recs)
        for col in df.columns:
            if df[col].map(lambda v: isinstance(v, list)).any():
                df[col] = df[col].map(lambda v: " ".join(map(str, v)) if isinstance(v, list) else v)
        write_text_atomic(out / name, df.to_csv(index=False, lineterminator="\n"))
        paths.append(out / name)
    return paths


def format_table(report: dict) -> str:
    """The short terminal summary: videos, centre x split balance, the problems."""
    s = report["summary"]
    lines = [
        f"{report['cohort']}: {report['rows']} rows, {report['videos']} videos; "
        f"{report['frames_decoded']} frames decoded ({report['decode']}) in {report['seconds']:.1f} s",
        f"videos: {s['opened']} open, {s['not_opened']} do not, {s['with_failed_frames']} with "
        f"frames that do not decode; frames {_span(s['frames'])}, fps {_span(s['fps'])}"
        + (f" ({s['no_fps']} without)" if s["no_fps"] else ""),
        "sizes: " + _top(s["sizes"]) + "; colour: " + _top(s["photometric"]),
        "sector: " + _top(s["sector_source"]),
        "",
        f"{'centre':<14}{'split':<10}{'patients':>9}{'nodules':>9}{'malignant':>10}"
        f"{'benign':>8}{'%malig':>8}",
    ]
    for b in report["balance"]:
        lines.append(
            f"{str(b['center'])[:13]:<14}{b['split']:<10}{b['patients']:>9}{b['nodules']:>9}"
            f"{b['malignant_nodules']:>10}{b['benign_nodules']:>8}"
            f"{100 * b['malignant_fraction']:>7.0f}%"
        )
    lines.append("")
    lines.append(f"{report['errors']} error(s), {report['warnings']} warning(s)")
    for p in report["problems"][:_SHOWN]:
        lines.append(f"{p['severity']}: {p['line']}")
    if len(report["problems"]) > _SHOWN:
        lines.append(f"... and {len(report['problems']) - _SHOWN} more (check_problems.csv)")
    return "\n".join(lines)


def _span(v) -> str:
    if not v:
        return "-"
    return f"{v[0]:g}" if v[0] == v[1] else f"{v[0]:g}-{v[1]:g}"


def _top(counts: dict, k: int = 4) -> str:
    items = [f"{name} ({n})" for name, n in list(counts.items())[:k]]
    if len(counts) > k:
        items.append(f"+{len(counts) - k} more")
    return ", ".join(items) or "-"


def add_arguments(parser) -> None:
    """The `thyrovid check` arguments."""
    parser.description = (
        "Check a cohort before extraction: every video opened and a sample of its frames "
        "decoded (in parallel); frames, fps, size, colour, spacing, scan sector per file; key "
        "frames and boxes against each video and its sector; the same video under two "
        "patients; patients, nodules and label balance per centre and split. Exit 1 when "
        "`extract` would skip or refuse anything (or a video is shared by two patients), "
        "else 0."
    )
    parser.add_argument(
        "cohort", metavar="COHORT_CSV", help="cohort.csv (columns: README.md, 'Your own data')"
    )
    parser.add_argument(
        "--decode",
        choices=DECODE_MODES,
        default="sample",
        help="sample: 16 spread frames, the key frames and each clip window's ends per video "
        "(default); all: every frame (finds damage anywhere, slower)",
    )
    parser.add_argument(
        "--frames",
        type=int,
        default=ClipSpec.frames,
        help=f"clip length extract will use (default {ClipSpec.frames}): windows, short videos",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("thyrovid_check"),
        metavar="DIR",
        help="folder for check.json and the CSVs (default: ./thyrovid_check)",
    )
    parser.add_argument("--json", action="store_true", help="print the full report as JSON")
    parser.add_argument(
        "--workers", type=int, default=None, help="processes (default min(2, CPUs))"
    )
    parser.add_argument(
        "--external-centers",
        default="",
        metavar="A,B",
        help="centers forming the external test set (as for extract: the split table)",
    )
    parser.add_argument("--seed", type=int, default=0, help="split seed, as for extract")


def run(args) -> int:
    report = check(
        args.cohort,
        frames=args.frames,
        decode=args.decode,
        workers=args.workers,
        external_centers=[c for c in args.external_centers.split(",") if c.strip()],
        seed=args.seed,
    )
    written = write_report(report, args.out)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(format_table(report))
        print(f"wrote {', '.join(str(p) for p in written)}")
    return 1 if report["errors"] else 0
