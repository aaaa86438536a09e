"""`thyrovid report`: one self-contained HTML file with the paper's tables and figures, and more.

Reads what the other stages wrote and embeds it in a single file (images as base64 PNG, inline
CSS, no script, no network; a Content-Security-Policy forbids loading anything):

- cohort: counts per split from the runs' WORK/clips.csv; for the phantom, the Bayes AUROC
  ceiling per split from PHANTOM/truth.csv (P(malignant) of the generator itself);
- per run (RUN/config.yaml, log.csv, metrics.json, predictions.csv): configuration, training
  curves, patient-level metrics per split with CIs, the threshold and where it came from, ROC
  curves and a reliability diagram;
- per compare folder: the paper-layout table, the DeLong tests, ROC / DeLong / confusion figures;
- reader study (table4.csv, mrmc.json, fig7_readers.png): Table 4, per-reader tests, group
  gains, the MRMC analysis and Fig. 7;
- Grad-CAM (cam.csv, <clip_id>.png): montages with label, probability and localisation scores.

A section appears only when its inputs exist. Only whitelisted fields are shown (ids from
cohort.csv / clips.csv, never other columns), every text is HTML-escaped, and PNGs are
re-encoded so that no metadata chunk of an input image reaches the report.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from thyrovid.atomic import write_text_atomic
from thyrovid.errors import UserError
from thyrovid.report.html import Section, footer_html, render_page
from thyrovid.report.sections import (
    bayes_ceilings,
    cohort_section,
    find_work,
    overview_section,
    read_run,
    read_truth,
    run_section,
    train_command,
)
from thyrovid.report.study_sections import cam_section, compare_section, readers_section

# --------------------------------------------------------------------------- inputs


@dataclass
class ReportInputs:
    """Where everything is. Paths that were given must exist; found ones may be None."""

    runs: list[Path] = field(default_factory=list)
    compare: list[Path] = field(default_factory=list)
    readers: Path | None = None
    cam: Path | None = None
    phantom: Path | None = None
    work: list[Path] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)


def demo_inputs(demo_dir: str | os.PathLike) -> ReportInputs:
    """The inputs of a `thyrovid demo` folder: phantom/, work/, runs/*, compare/*, readers/, cam/."""
    root = Path(demo_dir)
    if not root.is_dir():
        raise UserError(f"{root}: demo folder not found; run `thyrovid demo --out {root}` first")

    def sub(name: str, marker: str) -> Path | None:
        p = root / name
        return p if (p / marker).is_file() else None

    runs = sorted(
        (p for p in (root / "runs").glob("*") if (p / "config.yaml").is_file()),
        key=lambda p: (-_dims(p), p.name),  # the 3D network first, as in the paper
    )
    compare = sorted(p for p in (root / "compare").glob("*") if (p / "table.csv").is_file())
    order = {"test": 0, "external": 1}
    compare.sort(key=lambda p: (order.get(p.name, 2), p.name))
    found = ReportInputs(
        runs=runs,
        compare=compare,
        readers=sub("readers", "table4.csv"),
        cam=sub("cam", "cam.csv"),
        phantom=sub("phantom", "truth.csv"),
        work=[root / "work"] if (root / "work" / "clips.csv").is_file() else [],
        commands=[f"thyrovid demo --out {root.name}"],
    )
    if not (found.runs or found.compare or found.readers or found.cam or found.phantom):
        raise UserError(f"{root}: nothing of a demo found (no runs/, compare/, readers/, cam/)")
    return found


def _dims(run_dir: Path) -> int:
    """The run's dims from config.yaml (0 when unreadable)."""
    import yaml

    try:
        doc = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
        return int(doc.get("dims") or 0)
    except (OSError, ValueError, TypeError, AttributeError, yaml.YAMLError):
        return 0


def _require(path: Path, what: str, marker: str | None = None) -> Path:
    if not path.is_dir():
        raise UserError(f"{path}: {what} folder not found")
    if marker and not (path / marker).is_file():
        raise UserError(f"{path}: no {marker}; is this a {what} folder?")
    return path


# --------------------------------------------------------------------------- all of them


def build_sections(inp, base: Path) -> tuple[list[Section], list[str], list[str]]:
    """Every section the inputs allow, in the order of the flow.

    Args:
        inp: `ReportInputs`.
        base: the report's folder (paths are shown relative to it).

    Returns:
        (sections, reconstructed commands, skipped-file lines).
    """
    skipped: list[str] = []
    runs = [read_run(p, skipped) for p in dict.fromkeys(inp.runs)]
    works = list(dict.fromkeys([w.resolve() for w in inp.work] + [
        w for w in (find_work(r) for r in runs) if w is not None]))  # fmt: skip
    truth = read_truth(inp.phantom, skipped)
    ceilings = bayes_ceilings(truth) if truth is not None else None
    sections: list[Section | None] = [cohort_section(works, ceilings, base, skipped)]
    commands: list[str] = []
    if runs:
        sections.append(overview_section(runs, ceilings))
        for i, run in enumerate(runs):
            sections.append(run_section(run, f"run-{i + 1}"))
            commands += train_command(run, base)
    if inp.compare:
        found = [compare_section(c, f"compare-{i + 1}", base, skipped)
                 for i, c in enumerate(inp.compare)]  # fmt: skip
        if any(found):
            how = "One block per compare folder (one split and level each)."
            sections.append(Section("compare", "Model comparison", how))
            sections += found
    if inp.readers is not None:
        sections.append(readers_section(inp.readers, skipped))
    if inp.cam is not None:
        sections.append(cam_section(inp.cam, skipped))
    return [s for s in sections if s is not None], commands, skipped


def build_report(
    runs=(),
    compare=(),
    readers=None,
    cam=None,
    phantom=None,
    title: str | None = None,
    out: str | os.PathLike = "report.html",
    demo=None,
    work=(),
) -> Path:
    """Write the HTML report and return its path.

    Args:
        runs: run folders (config.yaml, log.csv, metrics.json, predictions.csv; any may be missing).
        compare: folders written by ``thyrovid compare --out``.
        readers: folder written by ``thyrovid readers --out``.
        cam: folder written by ``thyrovid cam --out`` (cam.csv + <clip_id>.png).
        phantom: folder written by ``thyrovid synth`` (truth.csv gives the Bayes ceiling).
        title: page title (default: "thyrovid report", or "thyrovid demo report").
        out: the HTML file to write (atomically).
        demo: a ``thyrovid demo --out`` folder; its parts are added to the ones given.
        work: work folders (clips.csv) for the cohort summary; by default the runs' own.

    Raises:
        UserError: a given folder does not exist or lacks its main file, or nothing to report.
    """
    inp = demo_inputs(demo) if demo is not None else ReportInputs()
    inp.runs += [_require(Path(r), "run", "config.yaml") for r in runs]
    inp.compare += [_require(Path(c), "compare", "table.csv") for c in compare]
    inp.work += [_require(Path(w), "work", "clips.csv") for w in work]
    if readers is not None:
        inp.readers = _require(Path(readers), "readers", "table4.csv")
    if cam is not None:
        inp.cam = _require(Path(cam), "cam", "cam.csv")
    if phantom is not None:
        inp.phantom = _require(Path(phantom), "phantom", "truth.csv")
    if not (inp.runs or inp.compare or inp.readers or inp.cam or inp.phantom or inp.work):
        raise UserError("nothing to report: give --runs, --compare, --readers, --cam, --phantom "
                        "or --demo")  # fmt: skip
    out = Path(out)
    if out.is_dir():
        raise UserError(f"--out {out}: is a folder; give the file to write, e.g. {out}/report.html")
    title = title or ("thyrovid demo report" if demo is not None else "thyrovid report")
    sections, commands, skipped = build_sections(inp, out.parent)
    page = render_page(title, sections, footer_html(inp.commands + commands, skipped))
    for line in skipped:
        print(f"report: skipped {line}", file=sys.stderr)
    path = write_text_atomic(out, page)
    mask = os.umask(0)  # the temporary file was private (0600); a report is for sharing
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)
    return path


# --------------------------------------------------------------------------- CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs", nargs="+", default=[], metavar="RUN", help="run folders")
    parser.add_argument("--compare", nargs="+", default=[], metavar="DIR",
                        help="folders written by `thyrovid compare --out`")  # fmt: skip
    parser.add_argument("--readers", metavar="DIR", help="folder of `thyrovid readers --out`")
    parser.add_argument("--cam", metavar="DIR", help="folder of `thyrovid cam --out`")
    parser.add_argument("--phantom", metavar="DIR", help="phantom folder (Bayes AUROC ceiling)")
    parser.add_argument("--work", nargs="+", default=[], metavar="WORK",
                        help="work folders for the cohort summary (default: the runs' own)")  # fmt: skip
    parser.add_argument("--demo", metavar="DEMO_DIR", help="a `thyrovid demo --out` folder")
    parser.add_argument("--title", help="page title")
    parser.add_argument("--out", help="HTML file (default report.html, or DEMO_DIR/report.html)")


def run(args: argparse.Namespace) -> int:
    out = args.out or (Path(args.demo) / "report.html" if args.demo else "report.html")
    path = build_report(
        runs=args.runs, compare=args.compare, readers=args.readers, cam=args.cam,
        phantom=args.phantom, title=args.title, out=out, demo=args.demo, work=args.work,
    )  # fmt: skip
    size = path.stat().st_size
    print(json.dumps({"report": str(path), "bytes": size}))
    return 0
