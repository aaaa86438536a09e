"""The `thyrovid` command line: thin, one sub-command per stage.

Each command lives in a module named after it, `thyrovid/<package>/<command>.py` (or
`thyrovid/<command>.py`), which exposes

    add_arguments(parser) -> None  its arguments
    run(args) -> int               the exit code

and its one-line help is the second entry of its row in COMMANDS below.

Modules are imported only when their command runs, so `thyrovid --help` stays fast.
A UserError becomes one line on stderr and exit code 2; tracebacks are for bugs.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from thyrovid import __version__
from thyrovid.errors import UserError

# command -> (module, one-line help). Order is the order of the flow.
COMMANDS: dict[str, tuple[str, str]] = {
    "synth": (
        "thyrovid.synth.synth",
        "write a synthetic ultrasound phantom cohort (DICOM + cohort.csv)",
    ),
    "probe": ("thyrovid.io.probe", "print a video's metadata (never patient identifiers)"),
    "import": (
        "thyrovid.cohort.import",
        "CVAT video XML or COCO JSON box exports -> cohort.csv (ids as the annotator wrote them)",
    ),
    "check": (
        "thyrovid.clips.check",
        "check a cohort before extraction: decoding, sizes, sector, duplicates, balance",
    ),
    "extract": (
        "thyrovid.clips.extract",
        "validate cohort.csv and cut 32-frame ROI clips into a work folder",
    ),
    "pretrain": (
        "thyrovid.training.pretrain",
        "self-supervised pretraining on the clips (no labels read), for train --init-from",
    ),
    "train": ("thyrovid.training.train", "train a 2D or 3D network on the extracted clips"),
    "evaluate": (
        "thyrovid.evaluation.evaluate",
        "predict, soft-vote clip->video->nodule->patient, metrics with CIs",
    ),
    "compare": (
        "thyrovid.evaluation.compare",
        "compare runs: paper-style table, DeLong matrix, ROC curves",
    ),
    "stats": ("thyrovid.evaluation.stats", "AUROC/DeLong and confusion-matrix metrics from a CSV"),
    "readers": (
        "thyrovid.readers.readers",
        "reader study: Table 4, aided vs unaided, MRMC analysis",
    ),
    "cam": ("thyrovid.explain.cam", "3D/2D Grad-CAM heatmaps for clips"),
    "predict": (
        "thyrovid.inference.predict",
        "P(malignant) for new videos + boxes, with Grad-CAM heatmaps",
    ),
    "export": ("thyrovid.inference.export", "export a trained run to ONNX for deployment"),
    "serve": ("thyrovid.serve.serve", "a local web page and JSON API for predictions (FastAPI)"),
    "report": (
        "thyrovid.report.report",
        "one HTML report of runs, comparisons, readers and Grad-CAM",
    ),
    "demo": ("thyrovid.demo", "the whole flow on the phantom: synth, extract, train, evaluate"),
}


def _available() -> dict[str, tuple[str, str]]:
    """Commands whose module file exists; checked on disk so no package __init__ is imported."""
    root = Path(__file__).resolve().parent
    out = {}
    for name, (module, help_) in COMMANDS.items():
        rel = Path(*module.split(".")[1:])
        if (root / rel.with_suffix(".py")).exists() or (root / rel / "__init__.py").exists():
            out[name] = (module, help_)
    return out


def build_parser(load: str | None = None) -> argparse.ArgumentParser:
    """Build the parser; only the module of command `load` is imported."""
    parser = argparse.ArgumentParser(
        prog="thyrovid",
        description=(
            "Predict malignancy of calcified thyroid nodules from ultrasound cine clips. "
            "Stages read the files the previous stage wrote: synth -> extract -> train -> "
            "evaluate -> compare/readers/cam."
        ),
    )
    parser.add_argument("--version", action="version", version=f"thyrovid {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_) in _available().items():
        p = sub.add_parser(name, help=help_, description=help_)
        if name == load:
            mod = importlib.import_module(module)
            mod.add_arguments(p)
            p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(load=command)
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 0 if not argv or argv[0] in ("-h", "--help") else 2
    try:
        return int(args._run(args) or 0)
    except UserError as exc:
        print(f"thyrovid {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
