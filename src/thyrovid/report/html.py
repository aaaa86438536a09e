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
import base64
import datetime
import html
import io
import json
import math
import os
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from thyrovid import __version__
from thyrovid.errors import UserError
from thyrovid.report import write_text_atomic

HELP = "one HTML report of runs, comparisons, readers and Grad-CAM"
SPLIT_ORDER = ("train", "val", "test", "external")


# --------------------------------------------------------------------------- HTML pieces


def esc(x: object) -> str:
    """HTML-escape any value (quotes too)."""
    return html.escape(str(x), quote=True)


def num(x: object, digits: int = 3) -> str:
    """A number with ``digits`` decimals; "NA" for None, NaN or text that is not a number."""
    if x is None or isinstance(x, bool):
        return "NA" if x is None else str(x)
    try:
        v = float(x)
    except (TypeError, ValueError):
        return "NA"
    if math.isnan(v):
        return "NA"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return f"{v:.{digits}f}"


def ci(value: object, low: object = None, high: object = None, digits: int = 3) -> str:
    """``0.933 (0.893, 0.973)``; the interval is left out when undefined."""
    text = num(value, digits)
    if text != "NA" and num(low) != "NA" and num(high) != "NA":
        text += f" ({num(low, digits)}, {num(high, digits)})"
    return text


def pval(p: object) -> str:
    """p-value text: "<0.001" or three decimals."""
    try:
        return "<0.001" if float(p) < 0.001 else num(p)
    except (TypeError, ValueError):
        return "NA"


def table(head: list[str], rows: list[list[object]], caption: str = "", cls: str = "") -> str:
    """An HTML table; every cell is escaped (pass already formatted text)."""
    parts = ['<div class="scroll"><table' + (f' class="{esc(cls)}"' if cls else "") + ">"]
    if caption:
        parts.append(f"<caption>{esc(caption)}</caption>")
    if head:
        parts.append("<thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in head) + "</tr></thead>")
    parts.append("<tbody>")
    for row in rows:
        parts.append("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>")
    parts.append("</tbody></table></div>")
    return "".join(parts)


def png_file(path: Path) -> bytes | None:
    """A PNG file re-encoded without its metadata chunks; None when it is not a readable PNG."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            if im.format != "PNG":
                return None
            im.load()
            buf = io.BytesIO()
            im.save(buf, format="PNG")
    except (OSError, UnidentifiedImageError, ValueError):
        return None
    return buf.getvalue()


def figure(png: bytes | None, caption: str, alt: str = "") -> str:
    """``<figure>`` with the PNG embedded as base64; empty text when there is no image."""
    if not png:
        return ""
    data = base64.b64encode(png).decode("ascii")
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{esc(alt or caption)}">'
        f"<figcaption>{esc(caption)}</figcaption></figure>"
    )


def para(text: str, cls: str = "note") -> str:
    return f'<p class="{cls}">{esc(text)}</p>'


@dataclass
class Section:
    """One titled part of the report. ``parts`` are HTML fragments already escaped."""

    key: str
    title: str
    how: str
    parts: list[str] = field(default_factory=list)
    level: int = 2

    def render(self) -> str:
        how = f'<p class="how"><b>How to read this:</b> {esc(self.how)}</p>' if self.how else ""
        h = f"h{self.level}"
        return (
            f'<section id="{esc(self.key)}"><{h}>{esc(self.title)}</{h}>{how}'
            + "".join(self.parts)
            + "</section>"
        )


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


# --------------------------------------------------------------------------- the page


def render_page(title: str, sections: list[Section], footer: str) -> str:
    """Fill the template: title, table of contents, sections, footer."""
    from string import Template

    template = resources.files("thyrovid.report").joinpath("template.html").read_text("utf-8")
    toc = "\n".join(
        f'<li><a href="#{esc(s.key)}">{esc(s.title)}</a></li>' for s in sections if s.level == 2
    )
    subtitle = (
        "Malignancy of calcified thyroid nodules from ultrasound cine clips. Label 1 = malignant; "
        "every probability is P(malignant); intervals are 95% confidence intervals."
    )
    return Template(template).substitute(
        title=esc(title),
        version=esc(__version__),
        subtitle=esc(subtitle),
        toc=toc,
        body="\n".join(s.render() for s in sections),
        footer=footer,
    )


def footer_html(commands: list[str], skipped: list[str]) -> str:
    today = datetime.date.today().isoformat()
    parts = [f"<p>thyrovid {esc(__version__)} &middot; report written {esc(today)}</p>"]
    if commands:
        parts.append("<p>Commands that produced the inputs (reconstructed from the recorded "
                     "settings where not recorded verbatim):</p>")  # fmt: skip
        parts.append("<pre>" + esc("\n".join(commands)) + "</pre>")
    if skipped:
        parts.append("<p class=bad>Left out:</p><ul>")
        parts += [f"<li>{esc(s)}</li>" for s in skipped]
        parts.append("</ul>")
    return "\n".join(parts)


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
    from thyrovid.report.sections import build_sections

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
