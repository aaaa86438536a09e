"""The options several commands share, declared once: `--device` and `--work`."""

from __future__ import annotations

from pathlib import Path


def add_device_argument(parser, default: str | None = "auto") -> None:
    """The one `--device` option; `default` None leaves the choice to the training config."""
    shown = "the config's, auto" if default is None else default
    parser.add_argument(
        "--device",
        default=default,
        help=f"torch device: auto (CUDA when available), cpu, cuda, cuda:N (default: {shown})",
    )


def add_work_argument(parser, what: str = "the run's work folder") -> None:
    """The one `--work WORK` option of the commands that read a run."""
    parser.add_argument(
        "--work",
        type=Path,
        default=None,
        help=f"{what} (default: the one recorded in RUN/config.yaml; give it if moved)",
    )
