"""The bad-input corpus: every case is a folder of files, a command line, the exit code, the
one line it must print (a fragment of it, naming the file or row) and the proof that the good
rows were kept. Generated, so it is deterministic and small; `python tests/corpus/corpus_cases.py
OUT` writes it to OUT (one folder per case plus cases.json) to replay by hand.

Kinds of case:
- "probe": a damaged DICOM given to `thyrovid probe` -> exit 2, one error line naming it;
- "extract-video": the same DICOM listed in a cohort.csv with two good videos -> exit 0, one
  `skipped:` line naming the row, clips.csv holds the two good rows;
- "extract-row": a bad cohort.csv row -> exit 0, one `skipped:` line, the good rows cut;
- "extract-file": a cohort.csv that cannot be read at all -> exit 2, one line naming it;
- "tolerated": export quirks that must be read as the user meant (no line, every row kept);
- "stats": bad tables for `thyrovid stats auc|metrics` -> exit 2, one line naming the line;
- "readers": bad readers.csv tables for `thyrovid readers` -> exit 2, one line;
- "run" (needs the tiny trained run): broken run folders, --cam/--out naming a file, an empty
  clips.csv, a corrupt clip for cam, a bad row of a predict --boxes file.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pydicom

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: helpers, fuzz_inputs
import fuzz_inputs  # noqa: E402
from helpers import pattern, write_dicom  # noqa: E402

COHORT_COLUMNS = ["patient_id", "video", "center", "label", "frame", "x0", "y0", "x1", "y1"]
# Every video of the extract cases fits this box and window (the seeds are 24 x 32, 6 frames).
BOX = {"frame": "2", "x0": "4", "y0": "4", "x1": "20", "y1": "16"}
EXTRACT = ["--frames", "4", "--size", "16", "--workers", "1"]


@dataclass
class Case:
    """One bad (or tolerated) input.

    build(folder) writes the files and returns argv for `thyrovid.cli.main`; `line` is a
    fragment of the one line on stderr (None: no line at all); `names` must appear in it too
    (the file or row); kept(folder, stdout) asserts that the good rows were processed.
    `summary`: prefixes of the summary lines a command prints after its per-row lines.
    """

    name: str
    kind: str
    build: Callable[[Path], list[str]]
    code: int
    line: str | None
    names: str = ""
    kept: Callable[[Path, str], None] | None = None
    summary: tuple[str, ...] = ()
    needs_run: bool = False
    extra: dict = field(default_factory=dict)


# ----------------------------------------------------------------------------- DICOMs
def _seed_ds(seed: str):
    return pydicom.dcmread(io.BytesIO(fuzz_inputs.seed_dicoms()[seed]))


def _save(ds, path: Path) -> Path:
    ds.save_as(path)
    return path


def _raw(ds, keyword: str, vr: str, value: bytes) -> None:
    tag = pydicom.datadict.tag_for_keyword(keyword)
    ds[tag] = pydicom.dataelem.RawDataElement(tag, vr, len(value), value, 0, False, True)


def _changed(seed: str, **changes) -> Callable[[Path], Path]:
    def make(path: Path) -> Path:
        ds = _seed_ds(seed)
        for key, value in changes.items():
            if isinstance(value, tuple):
                _raw(ds, key, *value)
            elif value is None:
                del ds[key]
            else:
                setattr(ds, key, value)
        return _save(ds, path)

    return make


def _bytes(make_bytes: Callable[[], bytes]) -> Callable[[Path], Path]:
    def make(path: Path) -> Path:
        path.write_bytes(make_bytes())
        return path

    return make


def _native() -> bytes:
    return fuzz_inputs.seed_dicoms()["native_grey"]


def _cut_jpeg(path: Path) -> Path:
    import cv2
    from pydicom.encaps import encapsulate

    jpegs = [cv2.imencode(".jpg", f)[1].tobytes() for f in fuzz_inputs._video()]
    scan = jpegs[2].index(b"\xff\xda")
    jpegs[2] = jpegs[2][: (scan + len(jpegs[2])) // 2] + b"\xff\xd9"
    ds = _seed_ds("jpeg_grey")
    ds.PixelData = encapsulate(jpegs, has_bot=True)
    return _save(ds, path)


BAD_DICOMS: dict[str, tuple[Callable[[Path], Path], str]] = {
    "empty": (_bytes(lambda: b""), "not a DICOM file (the file is empty)"),
    "text": (_bytes(lambda: b"not an image\n" * 30), "not a DICOM file (no 'DICM' marker"),
    "truncated": (_bytes(lambda: _native()[:-700]), "file is truncated"),
    "frames_zero": (_changed("native_grey", NumberOfFrames=0), "empty image"),
    "frames_half": (
        _changed("native_grey", NumberOfFrames=3),
        "NumberOfFrames says 3 but the pixel data holds 6 frames",
    ),
    "frames_double": (
        _changed("native_grey", NumberOfFrames=12),
        "NumberOfFrames says 12 but the pixel data holds 6 frames",
    ),
    "huge_frame": (
        _changed("jpeg_grey", Rows=60000, Columns=60000),
        "Rows x Columns 60000x60000 is not an ultrasound frame",
    ),
    "jpeg_frames_half": (
        _changed("jpeg_grey", NumberOfFrames=3),
        "cannot map 6 pixel data fragments to 3 frames",
    ),
    "bad_syntax_uid": (
        _bytes(lambda: _native().replace(b"1.2.840.10008.1.2.1\x00", b"1.2.x\x00" + b"\0" * 15)),
        "TransferSyntaxUID '1.2.x' is not a UID",
    ),
    "rows_bad_vr": (_changed("native_grey", Rows=("US", b"\x01")), "Rows cannot be read"),
    "bits_stored_two": (
        _changed("native_grey", BitsStored=("US", b"\x07\x00\x08\x00")),
        "BitsStored holds 2 values",
    ),
    "pixel_representation_2": (
        _changed("native_grey", PixelRepresentation=2),
        "PixelRepresentation is 2 (expected 0..1)",
    ),
    "bits_stored_over": (
        _changed("native_grey", BitsStored=12),
        "BitsStored 12 exceeds BitsAllocated 8",
    ),
    "samples_2": (_changed("native_grey", SamplesPerPixel=2), "unsupported pixel format"),
    "no_pixel_data": (_changed("native_grey", PixelData=None), "no pixel data"),
    "palette_without_lut": (
        _changed("native_grey", PhotometricInterpretation="PALETTE COLOR"),
        "PALETTE COLOR without a usable lookup table",
    ),
}


def _good_videos(folder: Path) -> list[dict]:
    """Two good, distinct videos (patients G1, G2) and their cohort rows."""
    rows = []
    for k in (1, 2):
        write_dicom(folder / f"good{k}.dcm", pattern(12, 24, 32) + 40 * k)
        rows.append({"patient_id": f"G{k}", "video": f"good{k}.dcm", "center": "A",
                     "label": str(k % 2), **BOX})  # fmt: skip
    return rows


def _write_cohort(path: Path, rows: list[dict], columns=None) -> Path:
    columns = columns or list(rows[0])
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return path


def _clips_kept(*patients: str) -> Callable[[Path, str], None]:
    def kept(folder: Path, stdout: str) -> None:
        with open(folder / "work" / "clips.csv", newline="") as fh:
            got = sorted({r["patient_id"] for r in csv.DictReader(fh)})
        assert got == sorted(patients), got
        for p in patients:
            assert list((folder / "work" / "clips").glob("*.npy")), p

    return kept


def _probe_case(name: str, make, expected: str) -> Case:
    def build(folder: Path) -> list[str]:
        return ["probe", str(make(folder / f"{name}.dcm"))]

    return Case(f"probe/{name}", "probe", build, 2, expected, names=f"{name}.dcm")


def _extract_video_case(name: str, make, expected: str) -> Case:
    def build(folder: Path) -> list[str]:
        rows = _good_videos(folder)
        make(folder / f"{name}.dcm")
        rows.append({"patient_id": "B1", "video": f"{name}.dcm", "center": "A", "label": "1",
                     **BOX})  # fmt: skip
        csv_path = _write_cohort(folder / "cohort.csv", rows)
        return ["extract", str(csv_path), "--out", str(folder / "work"), *EXTRACT]

    return Case(
        f"extract-video/{name}", "extract-video", build, 0, expected,
        names=f"cohort.csv row 3 (line 4): video '{name}.dcm'", kept=_clips_kept("G1", "G2"),
    )  # fmt: skip


# ----------------------------------------------------------------------------- cohort.csv
def _extract_text(text_of: Callable[[list[dict]], str], encoding="utf-8"):
    """build(): two good videos, their rows + the case's bad third row, as text."""

    def build(folder: Path) -> list[str]:
        rows = _good_videos(folder)
        (folder / "cohort.csv").write_bytes(text_of(rows).encode(encoding, "surrogateescape"))
        return ["extract", str(folder / "cohort.csv"), "--out", str(folder / "work"), *EXTRACT]

    return build


def _as_text(rows: list[dict], sep=",", end="\n", trailing="", header=None) -> str:
    columns = header or list(rows[0])
    lines = [sep.join(columns) + trailing]
    lines += [sep.join(str(r.get(c, "")) for c in columns) + trailing for r in rows]
    return end.join(lines) + end


def _with_row(**bad) -> Callable[[list[dict]], str]:
    def text(rows: list[dict]) -> str:
        third = {**rows[0], "patient_id": "B1", **bad}
        return _as_text([*rows, third], header=[*rows[0], *(k for k in bad if k not in rows[0])])

    return text


ROW_CASES = {
    "label_word": (dict(label="maybe"), "label 'maybe'"),
    "frame_text": (dict(frame="abc"), "frame"),
    "frame_fraction": (dict(frame="2.5"), "frame"),
    "frame_beyond": (dict(frame="400"), "400"),
    "box_inverted": (dict(x0="20", x1="4"), "x1 <= x0"),
    "box_negative": (dict(x0="-3"), "negative coordinate"),
    "box_infinite": (dict(x1="1e999"), "x1"),
    "box_outside": (dict(x0="100", x1="120"), "outside"),
    "video_missing": (dict(video="nope.dcm"), "video 'nope.dcm' not found"),
    "split_unknown": (dict(split="holdout"), "split 'holdout' is not one of"),
    "patient_empty": (dict(patient_id=""), "patient_id is empty"),
    "video_nul": (dict(video="good1\0.dcm"), "NUL byte"),
}


def _ragged(rows: list[dict]) -> str:
    text = _as_text(rows, header=[*rows[0], "note"])
    return text + "B1,good1.dcm,A,1,2,4,4,20,16,left lobe, upper pole\n"


FILE_CASES = {
    "column_twice": (
        lambda rows: _as_text(rows, header=[*rows[0], "label"]),
        "column 'label' appears twice (columns 4 and 10); keep one",
    ),
    "column_twice_case": (
        lambda rows: (
            _as_text(rows)
            .replace("label", "Label", 1)
            .replace("frame", "frame,LABEL", 1)
            .replace(",2,4", ",2,1,4")
        ),
        "column 'LABEL' appears twice",
    ),  # fmt: skip
    "column_missing": (
        lambda rows: _as_text(rows, header=[c for c in rows[0] if c != "label"]),
        "missing required column(s): label",
    ),
    "not_utf8": (lambda rows: _as_text(rows).replace("A", "\udce9", 1), "not UTF-8 text"),
    "empty_file": (lambda rows: "", "not a readable CSV"),
    "header_nul": (lambda rows: _as_text(rows).replace("center", "cen\0ter", 1), "NUL byte"),
    "header_unnamed": (
        lambda rows: _as_text(rows).replace("center,", "center,,", 1).replace(",A,", ",A,x,"),
        "column 4 of the header has no name",
    ),
    "header_only": (lambda rows: _as_text(rows).splitlines()[0] + "\n", "no usable rows"),
}

TOLERATED = {
    "trailing_separator": lambda rows: _as_text(rows, trailing=","),
    "trailing_separator_semicolon": lambda rows: _as_text(rows, sep=";", trailing=";"),
    "crlf_bom": lambda rows: "\ufeff" + _as_text(rows, end="\r\n"),
    "lone_cr_in_header": lambda rows: _as_text(rows).replace("center,", "center\r,", 1),
    "cr_line_ends": lambda rows: _as_text(rows, end="\r"),
    "tabs_trailing": lambda rows: _as_text(rows, sep="\t", trailing="\t"),
}


# ----------------------------------------------------------------------------- stats
def _stats_build(rows: list[list[str]], command: str, extra=()) -> Callable[[Path], list[str]]:
    def build(folder: Path) -> list[str]:
        text = "\n".join(",".join(r) for r in rows) + "\n"
        (folder / "t.csv").write_text(text)
        tail = (
            ["--score", "score"] if command == "auc" else ["--pred", "score", "--threshold", "0.5"]
        )
        return ["stats", command, "--csv", str(folder / "t.csv"), "--truth", "truth", *tail,
                *extra]  # fmt: skip

    return build


def _truth_rows(third: str | None = None, score_at_5: str = "0.5") -> list[list[str]]:
    rows = [["truth", "score"]] + [[t, s] for t, s in zip("0101010", "0.1 0.9 0.2 0.8 0.3 0.7 0.4".split())]  # fmt: skip
    rows.insert(4, [third if third is not None else "1", score_at_5])  # line 5
    return rows


def _stats_cases() -> list[Case]:
    out = []
    for command in ("auc", "metrics"):
        for third in ("2", "-1", "NA", "Unknown"):
            out.append(Case(
                f"stats/{command}_third_truth_{third}", "stats",
                _stats_build(_truth_rows(third), command), 2,
                f"truth column 'truth' holds '{third}', neither positive '1' nor negative '0'",
                names="t.csv, line 5",
            ))  # fmt: skip
        out.append(Case(f"stats/{command}_truth_empty", "stats",
                        _stats_build(_truth_rows(""), command), 2,
                        "truth column 'truth' is empty", names="t.csv, line 5"))  # fmt: skip
        out.append(Case(f"stats/{command}_column_twice", "stats",
                        _stats_build([["truth", "score", "truth"], *[[*r, r[0]] for r in _truth_rows()[1:]]], command),
                        2, "column 'truth' appears twice", names="t.csv"))  # fmt: skip
    out.append(Case("stats/auc_score_text", "stats",
                    _stats_build(_truth_rows(score_at_5="high"), "auc"), 2,
                    "score column 'score' is not a finite number ('high')",
                    names="t.csv, line 5"))  # fmt: skip
    out.append(Case("stats/auc_missing_column", "stats",
                    _stats_build([["truth", "prob"], ["0", "0.1"], ["1", "0.9"]], "auc"), 2,
                    "no column 'score'", names="t.csv"))  # fmt: skip
    return out


# ----------------------------------------------------------------------------- readers
def _readers_rows(bad: dict | None = None, at: int = 5) -> list[list[str]]:
    rows = [["reader", "modality", "case", "truth", "score"]]
    for reader in ("R1", "R2"):
        for modality in ("unaided", "aided"):
            for case in range(6):
                rows.append([reader, modality, f"C{case}", str(case % 2), str((case * 7 + len(reader)) % 5 + 1)])  # fmt: skip
    if bad:
        names = rows[0]
        for k, v in bad.items():
            rows[at - 1][names.index(k)] = v
    return rows


def _readers_build(rows: list[list[str]], trailing: str = "") -> Callable[[Path], list[str]]:
    def build(folder: Path) -> list[str]:
        (folder / "readers.csv").write_text("\n".join(",".join(r) + trailing for r in rows) + "\n")
        return ["readers", str(folder / "readers.csv")]

    return build


def _readers_cases() -> list[Case]:
    dup = [r + [r[3]] for r in _readers_rows()]
    return [
        Case("readers/truth_third_value", "readers", _readers_build(_readers_rows({"truth": "2"})),
             2, "truth", names="line 5"),
        Case("readers/score_text", "readers", _readers_build(_readers_rows({"score": "high"})),
             2, "'high' is not a number", names="line 5"),
        Case("readers/column_twice", "readers", _readers_build(dup), 2,
             "column 'truth' appears twice", names="readers.csv"),
        Case("readers/case_empty", "readers", _readers_build(_readers_rows({"case": ""})), 2,
             "empty case", names="line 5"),
    ]  # fmt: skip


def _same_as_clean_readers(folder: Path, stdout: str) -> None:
    """The table with trailing separators gives the very output of the clean table (the
    study's own warnings about its size are the same in both, hence `summary`)."""
    from contextlib import redirect_stderr, redirect_stdout

    from thyrovid.cli import main

    clean = folder / "clean"
    clean.mkdir()
    argv = _readers_build(_readers_rows())(clean)
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        assert main(argv) == 0
    assert stdout.replace(str(folder), "") == out.getvalue().replace(str(clean), "")


# ----------------------------------------------------------------------------- run folders
def _copy_run(tiny: dict, folder: Path) -> Path:
    run = folder / "run"
    run.mkdir()
    for name in ("config.yaml", "model.safetensors", "metrics.json"):
        shutil.copy(tiny["run"] / name, run / name)
    return run


def _predict_argv(tiny: dict, run: Path, *extra: str) -> list[str]:
    row = tiny["clips"].iloc[0]
    video = str(tiny["phantom"] / row["video"])
    box = ",".join(str(int(float(row[k]))) for k in ("x0", "y0", "x1", "y1"))
    return ["predict", str(run), video, "--frame", str(int(row["key_frame"])), "--box", box,
            "--work", str(tiny["work"]), *extra]  # fmt: skip


def _broken_run(change: Callable[[Path], None]) -> Callable[[Path, dict], list[str]]:
    def build(folder: Path, tiny: dict) -> list[str]:
        run = _copy_run(tiny, folder)
        change(run)
        return _predict_argv(tiny, run)

    return build


def _write(name: str, data: bytes | Callable[[bytes], bytes]) -> Callable[[Path], None]:
    def change(run: Path) -> None:
        path = run / name
        path.write_bytes(data(path.read_bytes()) if callable(data) else data)

    return change


def _other_arch(run: Path) -> None:
    text = (run / "config.yaml").read_text()
    (run / "config.yaml").write_text(text.replace("arch: resnet50", "arch: densenet121", 1))


def _cam_with_a_corrupt_clip(folder: Path, tiny: dict) -> list[str]:
    run = _copy_run(tiny, folder)
    work = folder / "work"
    shutil.copytree(tiny["work"], work)
    test = tiny["clips"][tiny["clips"]["split"] == "test"].sort_values(
        ["label", "clip_id"], ascending=[False, True]
    )
    victim = test.iloc[0]["clip_id"]
    (work / "clips" / f"{victim}.npy").write_bytes(b"\x93NUMPY garbage")
    return ["cam", str(run), "--work", str(work), "-n", "2", "--out", str(folder / "cam")]


def _cam_kept(folder: Path, stdout: str) -> None:
    with open(folder / "cam" / "cam.csv", newline="") as fh:
        assert len(list(csv.DictReader(fh))) == 1  # the other clip of the two


def _boxes_build(bad_row: dict) -> Callable[[Path, dict], list[str]]:
    def build(folder: Path, tiny: dict) -> list[str]:
        rows = []
        for _, r in tiny["clips"].head(2).iterrows():
            rows.append({"video": str(tiny["phantom"] / r["video"]), "frame": int(r["key_frame"]),
                         **{k: int(float(r[k])) for k in ("x0", "y0", "x1", "y1")}})  # fmt: skip
        rows.insert(1, {**rows[0], **bad_row})
        text = _as_text(rows, trailing=",")  # a spreadsheet's trailing separator, too
        (folder / "boxes.csv").write_text(text)
        return ["predict", str(tiny["run"]), "--boxes", str(folder / "boxes.csv"),
                "--work", str(tiny["work"])]  # fmt: skip

    return build


def _predicted(n_lines: int) -> Callable[[Path, str], None]:
    def kept(folder: Path, stdout: str) -> None:
        lines = [x for x in stdout.splitlines() if "P(malignant)" in x or "prob" in x.lower()]
        assert len(lines) >= n_lines, stdout

    return kept


def _run_cases() -> list[Case]:
    cases = [
        ("weights_empty", _write("model.safetensors", b""), "model.safetensors: empty file"),
        ("weights_truncated", _write("model.safetensors", lambda b: b[: len(b) // 2]),
         "model.safetensors: not a readable safetensors file"),
        ("weights_garbage", _write("model.safetensors", b"\xff" * 4096),
         "model.safetensors: not a readable safetensors file"),
        ("config_other_arch", _other_arch,
         "model.safetensors: does not fit the network its config.yaml describes (densenet121"),
        ("config_unparsable", _write("config.yaml", b"arch: [resnet50\n  dims: 3: 4\n"),
         "config.yaml: not valid YAML"),
        ("config_not_mapping", _write("config.yaml", b"- resnet50\n- 3\n"),
         "config.yaml: expected a mapping"),
    ]  # fmt: skip
    out = [
        Case(f"run/{name}", "run", _broken_run(change), 2, line, needs_run=True)
        for name, change, line in cases
    ]

    def cam_file(folder: Path, tiny: dict) -> list[str]:
        (folder / "cam.png").write_bytes(b"x")
        return _predict_argv(tiny, tiny["run"], "--cam", str(folder / "cam.png"))

    def out_file(folder: Path, tiny: dict) -> list[str]:
        (folder / "work.txt").write_text("x")
        return ["extract", str(tiny["phantom"] / "cohort.csv"), "--out", str(folder / "work.txt")]

    def empty_clips(folder: Path, tiny: dict) -> list[str]:
        run = _copy_run(tiny, folder)
        (folder / "work").mkdir()
        (folder / "work" / "clips.csv").write_text("")
        return ["evaluate", str(run), "--work", str(folder / "work")]

    def export_broken(folder: Path, tiny: dict) -> list[str]:
        run = _copy_run(tiny, folder)
        (run / "model.safetensors").write_bytes(b"\0" * 64)
        return ["export", str(run), "--out", str(folder / "m.onnx")]

    def train_empty_clips(folder: Path, tiny: dict) -> list[str]:
        (folder / "work").mkdir()
        (folder / "work" / "clips.csv").write_text("")
        return ["train", str(folder / "work"), "--out", str(folder / "run"), "--device", "cpu"]

    out += [
        Case("run/export_weights_zeroed", "run", export_broken, 2,
             "not a readable safetensors file", names="model.safetensors", needs_run=True),
        Case("run/train_clips_csv_empty", "run", train_empty_clips, 2,
             "not a readable clips.csv", names="clips.csv", needs_run=True),
        Case("run/predict_cam_is_a_file", "run", cam_file, 2,
             "--cam names an existing file", names="cam.png", needs_run=True),
        Case("run/extract_out_is_a_file", "run", out_file, 2,
             "--out names an existing file", names="work.txt", needs_run=True),
        Case("run/clips_csv_empty", "run", empty_clips, 2,
             "not a readable clips.csv", names="clips.csv", needs_run=True),
        Case("run/cam_corrupt_clip", "run", _cam_with_a_corrupt_clip, 0,
             "not a readable clip", names=".npy", kept=_cam_kept, needs_run=True),
        Case("run/boxes_bad_frame", "run", _boxes_build({"frame": "x"}), 0,
             "frame 'x' is not a 0-based frame index", names="boxes.csv: row 2 (line 3)",
             kept=_predicted(2), summary=("skipped 1 row(s)",), needs_run=True),
        Case("run/boxes_nul_video", "run", _boxes_build({"video": "a\0b.dcm"}), 0,
             "NUL byte", names="boxes.csv", kept=_predicted(2),
             summary=("skipped 1 row(s)",), needs_run=True),
    ]  # fmt: skip
    return out


# ----------------------------------------------------------------------------- all
def all_cases() -> list[Case]:
    cases = []
    for name, (make, expected) in BAD_DICOMS.items():
        cases.append(_probe_case(name, make, expected))
        cases.append(_extract_video_case(name, make, expected))
    cases.append(_extract_video_case("jpeg_frame_cut", _cut_jpeg, "frame 2 is corrupt (libjpeg"))
    for name, (bad, expected) in ROW_CASES.items():
        cases.append(Case(f"extract-row/{name}", "extract-row", _extract_text(_with_row(**bad)),
                          0, expected, names="cohort.csv row 3 (line 4)",
                          kept=_clips_kept("G1", "G2")))  # fmt: skip
    cases.append(Case("extract-row/ragged", "extract-row", _extract_text(_ragged), 0,
                      "has 11 fields but the header has 10", names="cohort.csv row 3 (line 4)",
                      kept=_clips_kept("G1", "G2")))  # fmt: skip
    for name, (text, expected) in FILE_CASES.items():
        cases.append(Case(f"extract-file/{name}", "extract-file", _extract_text(text), 2,
                          expected, names="cohort.csv"))  # fmt: skip
    cases.append(Case("tolerated/readers_trailing_separator", "tolerated",
                      _readers_build(_readers_rows(), trailing=","), 0, None,
                      kept=_same_as_clean_readers, summary=("warning: ",)))  # fmt: skip
    for name, text in TOLERATED.items():
        cases.append(Case(f"tolerated/{name}", "tolerated", _extract_text(text), 0, None,
                          kept=_clips_kept("G1", "G2")))  # fmt: skip
    cases += _stats_cases()
    cases += _readers_cases()
    cases += _run_cases()
    return cases


def write_corpus(out: Path) -> Path:
    """Materialise every case that needs no trained run under `out`, with cases.json."""
    manifest = []
    for case in all_cases():
        if case.needs_run:
            continue
        folder = out / case.name
        folder.mkdir(parents=True)
        argv = case.build(folder)
        manifest.append({"name": case.name, "argv": argv, "code": case.code, "line": case.line})
    (out / "cases.json").write_text(json.dumps(manifest, indent=1))
    return out


if __name__ == "__main__":
    print(write_corpus(Path(sys.argv[1])))
