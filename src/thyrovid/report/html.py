"""The pieces of the HTML report: escaped values, tables, figures, sections and the page.

Every text is HTML-escaped here; PNGs are re-encoded (`png_file`) so that no metadata chunk of
an input image reaches the page. `thyrovid.report.report` puts the page together.
"""

from __future__ import annotations

import base64
import datetime
import html
import io
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from thyrovid import __version__

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


# cv2.COLORMAP_INFERNO (thyrovid.explain.overlay) at 0, 1/8, ..., 1: the heatmaps' colours
INFERNO = ("#000004", "#1f0c48", "#550f6d", "#88226a", "#ba3655", "#e35933", "#f98c0a",
           "#f9c932", "#fcffa4")  # fmt: skip


def colour_bar(low: str = "0: none", high: str = "1: the clip's maximum", note: str = "") -> str:
    """A vertical colour bar of the heatmaps' colour map (inferno), labelled at both ends."""
    stops = ", ".join(INFERNO[::-1])
    extra = f'<span class="cbar-note">{esc(note)}</span>' if note else ""
    return (
        f'<div class="cbar" role="img" aria-label="colour bar: {esc(low)} to {esc(high)}">'
        f'<span class="cbar-end">{esc(high)}</span>'
        f'<span class="cbar-ramp" style="background: linear-gradient({stops})"></span>'
        f'<span class="cbar-end">{esc(low)}</span>{extra}</div>'
    )


def heatmap_figure(png: bytes | None, caption: str, bar: str | None = None) -> str:
    """`figure` of a heatmap with a colour bar beside it; empty text when there is no image."""
    fig = figure(png, caption)
    return f'<div class="heat">{fig}{bar or colour_bar()}</div>' if fig else ""


def para(text: str, cls: str = "note") -> str:
    return f'<p class="{cls}">{esc(text)}</p>'


def limits_box(lines: list[str], title: str = "Limits of this result") -> str:
    """A boxed list of what makes a result unreliable (`thyrovid.reliability`); "" without."""
    if not lines:
        return ""
    items = "".join(f"<li>{esc(line)}</li>" for line in lines)
    return f'<div class="limits"><p><b>{esc(title)}</b></p><ul>{items}</ul></div>'


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
