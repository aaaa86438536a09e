"""`thyrovid synth OUT_DIR`: write a synthetic ultrasound phantom cohort with known truth."""

from __future__ import annotations

import argparse
import json
import os

from thyrovid.errors import UserError


def _range(text: str) -> tuple[int, int]:
    try:
        lo, hi = (int(v) for v in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--frames {text!r}: expected MIN:MAX, e.g. 44:72"
        ) from None
    if not 8 <= lo <= hi <= 4126:
        raise argparse.ArgumentTypeError(f"--frames {text!r}: need 8 <= MIN <= MAX <= 4126")
    return lo, hi


def _size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--size {text!r}: expected H,W, e.g. 240,320") from None
    if h < 48 or w < 64:
        raise argparse.ArgumentTypeError(f"--size {text!r}: frames must be at least 48x64")
    return h, w


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out_dir", metavar="OUT_DIR", help="output folder (created)")
    parser.add_argument("--patients", type=int, default=60, help="number of patients (default 60)")
    parser.add_argument("--seed", type=int, default=0, help="master seed; same seed, same bytes")
    parser.add_argument(
        "--centers",
        nargs="+",
        default=None,
        metavar="NAME",
        help="centers to use (default all: int_a int_b ext_c ext_d)",
    )
    parser.add_argument(
        "--frames",
        type=_range,
        default=(44, 72),
        metavar="MIN:MAX",
        help="frames per video (default 44:72, up to 4126)",
    )
    parser.add_argument(
        "--size",
        type=_size,
        default=None,
        metavar="H,W",
        help="base frame size; centers keep their relative sizes (default 240,320)",
    )
    parser.add_argument(
        "--prevalence-internal",
        type=float,
        default=0.70,
        help="expected malignant fraction at internal centers (default 0.70)",
    )
    parser.add_argument(
        "--prevalence-external",
        type=float,
        default=0.34,
        help="expected malignant fraction at external centers (default 0.34)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="worker processes (default min(2, CPUs)); output does not depend on it",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from thyrovid.synth.cohort import SynthConfig, synthesize

    if args.patients < 1:
        raise UserError(f"--patients {args.patients}: need at least 1 patient")
    for name in ("prevalence_internal", "prevalence_external"):
        value = getattr(args, name)
        if not 0.01 <= value <= 0.99:
            raise UserError(f"--{name.replace('_', '-')} {value}: must lie in [0.01, 0.99]")
    centers = None
    if args.centers:
        centers = tuple(c for item in args.centers for c in item.split(",") if c)
    config = SynthConfig(
        patients=args.patients,
        seed=args.seed,
        centers=centers,
        frames=args.frames,
        size=args.size,
        prevalence_internal=args.prevalence_internal,
        prevalence_external=args.prevalence_external,
        workers=max(1, args.workers),
    )
    if centers:
        from thyrovid.synth.profiles import select_centers

        try:
            select_centers(list(centers))
        except ValueError as exc:
            raise UserError(f"--centers: {exc}") from None
    summary = synthesize(args.out_dir, config, progress=not args.quiet)
    print(json.dumps(summary, indent=2))
    return 0
