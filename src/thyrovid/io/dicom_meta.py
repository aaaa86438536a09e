"""DICOM header -> video metadata and pixel conversions to 8-bit RGB/grey.

Every header value is read through `Header`, the one tolerant layer: pydicom converts a value
only when it is first read, and a value that does not parse (a non-numeric RescaleSlope, a
PixelSpacing with one value, an unknown VR) raises there, in many types. `Header` turns that
into either a note (optional attributes: ignored, listed in VideoInfo.extra["header_notes"])
or one `VideoError` line naming the file and the attribute (the ones the pixels depend on).

Pure functions on a `Header`: frame rate, physical spacing and imaging region (from
SequenceOfUltrasoundRegions), and the fixed per-video mappings that turn decoded samples into
uint8 (palette LUT, 16-bit -> 8-bit window).
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import warnings
from collections.abc import Iterator

import numpy as np
from pydicom.dataset import Dataset

from thyrovid.errors import VideoError

# PhysicalUnitsX/YDirection code for centimetres (DICOM PS3.3 C.8.5.5.1.15).
_UNITS_CM = 3
# RegionSpatialFormat code for a 2D image region (C.8.5.5.1.1).
_SPATIAL_2D = 1
# RegionDataType code for tissue (C.8.5.5.1.2).
_DATA_TISSUE = 1
_MISSING = object()


def one_line(exc: BaseException | str, limit: int = 160) -> str:
    """An exception's text on one line, shortened (no library line breaks in a user line)."""
    raw = exc if isinstance(exc, str) else str(exc)
    text = " ".join(line.strip() for line in raw.splitlines() if line.strip())
    text = "".join(c if c.isprintable() else "?" for c in text)
    if not text and not isinstance(exc, str):
        text = type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


class Header:
    """A tolerant view of a pydicom `Dataset` (read with stop_before_pixels).

    Args:
        ds: the dataset (or a sequence item).
        path: the file, named in every message.
        notes: shared list of notes about ignored values (sequence items share their file's).
    """

    def __init__(self, ds: Dataset, path: str, notes: list[str] | None = None):
        self.ds, self.path = ds, path
        self.notes = [] if notes is None else notes

    def _note(self, keyword: str, why: str) -> None:
        note = f"{keyword} ignored ({why})"
        if note not in self.notes:
            self.notes.append(note)

    def _bad(self, keyword: str, why: str) -> VideoError:
        return VideoError(f"{self.path}: DICOM attribute {keyword} {why}; fix or remove it")

    def value(self, keyword: str, *, required: bool = False, strict: bool = False):
        """The converted value, or `_MISSING` when absent or unreadable.

        required: absent -> VideoError; strict: present but unreadable -> VideoError (else a
        note and `_MISSING`).
        """
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if keyword not in self.ds:
                    value = _MISSING
                else:
                    value = self.ds[keyword].value
        except Exception as exc:  # pydicom raises many types on a value that does not parse
            if required or strict:
                raise self._bad(keyword, f"cannot be read ({one_line(exc)})") from None
            self._note(keyword, f"unreadable: {one_line(exc, 60)}")
            return _MISSING
        if value is _MISSING or value is None or (isinstance(value, (str, bytes)) and not value):
            if required:
                raise VideoError(f"{self.path}: DICOM attribute {keyword} is missing")
            return _MISSING
        return value

    def present(self, keyword: str) -> bool:
        """The attribute is in the header (readable or not)."""
        try:
            return keyword in self.ds
        except Exception:
            return False

    def has(self, keyword: str) -> bool:
        return self.value(keyword) is not _MISSING

    def numbers(self, keyword: str, *, strict: bool = False) -> list[float] | None:
        """All values of a numeric attribute as finite floats; None when absent/unusable."""
        value = self.value(keyword, strict=strict)
        if value is _MISSING:
            return None
        scalar = isinstance(value, (str, bytes)) or not hasattr(value, "__iter__")
        items = [value] if scalar else list(value)
        try:
            out = [float(v) for v in items]
        except (TypeError, ValueError, OverflowError):
            out = None
        if out is None or not all(math.isfinite(v) for v in out):
            if strict:
                raise self._bad(keyword, f"is not a number ({_show(value)})")
            self._note(keyword, f"not a number: {_show(value)}")
            return None
        return out

    def number(
        self, keyword: str, default: float | None = None, *, required=False, strict=False
    ) -> float | None:
        """One finite number; `default` when absent (or unusable, unless strict)."""
        if required and not self.has(keyword):
            self.value(keyword, required=True)
        values = self.numbers(keyword, strict=strict or required)
        if values is None:
            return default
        if len(values) != 1:
            if strict or required:
                raise self._bad(keyword, f"holds {len(values)} values where one is expected")
            self._note(keyword, f"{len(values)} values where one is expected")
            return default
        return values[0]

    def integer(
        self,
        keyword: str,
        default: int | None = None,
        *,
        required=False,
        strict=False,
        minimum: int | None = None,
        maximum: int | None = None,
    ) -> int | None:
        """One integer (a float with no fraction is accepted) within [minimum, maximum]."""
        value = self.number(keyword, None, required=required, strict=strict)
        if value is None:
            return default
        bad = (
            value != int(value)
            or (minimum is not None and value < minimum)
            or (maximum is not None and value > maximum)
        )
        if bad:
            span = f" (expected {minimum}..{maximum})" if minimum is not None else ""
            if strict or required:
                raise self._bad(keyword, f"is {_show(value)}{span}")
            self._note(keyword, f"{_show(value)}{span}")
            return default
        return int(value)

    def text(self, keyword: str, default: str | None = None) -> str | None:
        """A string value, stripped; `default` when absent or unreadable."""
        value = self.value(keyword)
        if value is _MISSING:
            return default
        try:
            text = str(value).strip()
        except Exception:  # a malformed value whose str() fails
            self._note(keyword, "unreadable text")
            return default
        return text or default

    def items(self, keyword: str) -> list[Header]:
        """The items of a sequence attribute as Headers (empty when absent or unreadable)."""
        value = self.value(keyword)
        if value is _MISSING:
            return []
        try:
            return [
                Header(item, self.path, self.notes) for item in value if isinstance(item, Dataset)
            ]
        except Exception as exc:
            self._note(keyword, f"unreadable sequence: {one_line(exc, 60)}")
            return []

    def raw_bytes(self, keyword: str) -> bytes | None:
        value = self.value(keyword)
        return value if isinstance(value, bytes) else None


def _show(value) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        value = int(value)
    text = repr(value)
    return one_line(text if len(text) <= 40 else text[:37] + "...")


_STDERR_LOCK = threading.RLock()  # re-entrant: a capture inside a capture is fine


@contextlib.contextmanager
def captured_stderr() -> Iterator[list[str]]:
    """Capture what C libraries (libjpeg inside OpenCV) print on file descriptor 2.

    Yields a list that holds the captured lines after the block; nothing reaches the
    terminal. A lock keeps two threads from swapping descriptor 2 under each other.
    """
    import tempfile

    lines: list[str] = []
    with _STDERR_LOCK, tempfile.TemporaryFile() as tmp:
        try:
            saved = os.dup(2)
        except OSError:  # no descriptor 2 (a daemon): nothing to capture
            yield lines
            return
        try:
            os.dup2(tmp.fileno(), 2)
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            text = tmp.read(4096).decode("utf-8", "replace")
            lines.extend(line.strip() for line in text.splitlines() if line.strip())


def frame_rate(h: Header) -> float | None:
    """Frames per second from FrameTime (ms), FrameTimeVector, CineRate or
    RecommendedDisplayFrameRate, in that order; None when none is usable."""
    frame_time = _positive(h.number("FrameTime"))
    if frame_time:
        return 1000.0 / frame_time
    vector = h.numbers("FrameTimeVector")
    if vector is not None:
        # The first entry is 0 (time of frame 0); the others are ms since the previous frame.
        times = np.asarray(vector[1:], dtype=float)
        times = times[times > 0]
        if times.size:
            return 1000.0 / float(times.mean())
    for keyword in ("CineRate", "RecommendedDisplayFrameRate"):
        rate = _positive(h.number(keyword))
        if rate:
            return rate
    return None


def _positive(value) -> float | None:
    if value is None:
        return None
    try:
        v = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return v if math.isfinite(v) and v > 0 else None


def imaging_region(h: Header) -> Header | None:
    """The ultrasound region to use: the largest 2D region, tissue regions first.

    Returns an item of SequenceOfUltrasoundRegions, or None when there is none.
    """
    regions = [r for r in h.items("SequenceOfUltrasoundRegions") if _box(r) is not None]
    if not regions:
        return None

    def rank(r: Header) -> tuple:
        x0, y0, x1, y1 = _box(r)
        return (
            r.integer("RegionSpatialFormat") == _SPATIAL_2D,
            r.integer("RegionDataType") == _DATA_TISSUE,
            (x1 - x0) * (y1 - y0),
        )

    return max(regions, key=rank)


_BOX_KEYS = (
    "RegionLocationMinX0",
    "RegionLocationMinY0",
    "RegionLocationMaxX1",
    "RegionLocationMaxY1",
)


def _box(region: Header) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) with x1/y1 exclusive (DICOM's Max X1/Y1 are inclusive)."""
    values = [region.integer(k, minimum=0, maximum=2**31) for k in _BOX_KEYS]
    if any(v is None for v in values):
        return None
    x0, y0, x1, y1 = values
    if x1 < x0 or y1 < y0:
        region._note("SequenceOfUltrasoundRegions", f"inverted region {tuple(values)}")
        return None
    return x0, y0, x1 + 1, y1 + 1


def region_box(h: Header, width: int, height: int) -> tuple[int, int, int, int] | None:
    """Imaging region (x0, y0, x1, y1) in pixels, x1/y1 exclusive, clipped to the frame;
    None (with a note) when none is given or it lies outside the frame."""
    region = imaging_region(h)
    if region is None:
        return None
    x0, y0, x1, y1 = _box(region)
    box = max(0, x0), max(0, y0), min(width, x1), min(height, y1)
    if box[2] - box[0] < 2 or box[3] - box[1] < 2:
        h._note("SequenceOfUltrasoundRegions", f"region {(x0, y0, x1, y1)} outside the frame")
        return None
    return box


def pixel_spacing_mm(h: Header) -> tuple[float, float] | None:
    """(row, column) spacing in mm: from the imaging region when its units are cm, else
    PixelSpacing; None when neither is given."""
    region = imaging_region(h)
    if region is not None:
        ux = region.integer("PhysicalUnitsXDirection")
        uy = region.integer("PhysicalUnitsYDirection")
        dx = _positive(abs(region.number("PhysicalDeltaX", 0.0)))
        dy = _positive(abs(region.number("PhysicalDeltaY", 0.0)))
        if ux == _UNITS_CM and uy == _UNITS_CM and dx and dy:
            return dy * 10.0, dx * 10.0
    spacing = h.numbers("PixelSpacing")
    if spacing is not None:
        if len(spacing) != 2:
            h._note("PixelSpacing", f"{len(spacing)} values where two are expected")
            return None
        row, col = _positive(spacing[0]), _positive(spacing[1])
        if row and col:
            return row, col
    return None


def palette_table(ds: Dataset, bits_allocated: int) -> np.ndarray:
    """Lookup table (2**bits_allocated, 3) uint8 for PALETTE COLOR pixel values.

    Built once per video with pydicom's `apply_color_lut`; 16-bit LUT entries are scaled to
    8 bits (x * 255 / 65535, rounded). Raises whatever pydicom raises on a broken table.
    """
    from pydicom.pixels import apply_color_lut

    dtype = np.uint8 if bits_allocated <= 8 else np.uint16
    values = np.arange(2 ** min(bits_allocated, 16), dtype=np.uint32).astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = apply_color_lut(values, ds)[..., :3]
    if table.dtype != np.uint8:
        table = np.rint(table.astype(np.float64) * (255.0 / 65535.0)).astype(np.uint8)
    return np.ascontiguousarray(table)


def grey_range(h: Header, bits_stored: int, signed: bool) -> tuple[float, float]:
    """Stored-value range (lo, hi) mapped linearly onto 0..255 for >8-bit (or signed) data.

    The choice, fixed per video so every frame uses the same mapping:
    1. the first VOI window (WindowCenter/WindowWidth, PS3.3 C.11.2.1.2), taken back to stored
       values through RescaleSlope/RescaleIntercept;
    2. else SmallestImagePixelValue..LargestImagePixelValue when both are given;
    3. else the full range that BitsStored allows.
    """
    center, width = _first(h.numbers("WindowCenter")), _first(h.numbers("WindowWidth"))
    if center is not None and width is not None and width >= 1:
        slope = h.number("RescaleSlope", 1.0) or 1.0
        intercept = h.number("RescaleIntercept", 0.0)
        lo = (center - 0.5 - (width - 1) / 2 - intercept) / slope
        hi = (center - 0.5 + (width - 1) / 2 - intercept) / slope
        if math.isfinite(lo) and math.isfinite(hi):
            return (min(lo, hi), max(lo, hi)) if lo != hi else (lo, lo + 1)
    small = h.integer("SmallestImagePixelValue")
    large = h.integer("LargestImagePixelValue")
    if small is not None and large is not None and large > small:
        return float(small), float(large)
    if signed:
        return float(-(2 ** (bits_stored - 1))), float(2 ** (bits_stored - 1) - 1)
    return 0.0, float(2**bits_stored - 1)


def _first(values: list[float] | None) -> float | None:
    return values[0] if values else None


def to_uint8(arr: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Map stored values linearly from [lo, hi] to [0, 255] uint8 (clipped, rounded)."""
    scaled = (arr.astype(np.float32) - np.float32(lo)) * np.float32(255.0 / (hi - lo))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def libjpeg_transforms(jpeg: bytes) -> bool | None:
    """Whether libjpeg converts this 3-component JPEG from YCbCr to RGB when decoding.

    libjpeg's rule: a JFIF marker means YCbCr; else an Adobe APP14 marker's transform flag
    decides; else component ids 'R','G','B' mean RGB and anything else YCbCr. pydicom instead
    keeps the samples as stored (unless APP14 says otherwise) and converts by the DICOM
    Photometric Interpretation; the OpenCV fast path is used only when both agree.
    Returns None when the header cannot be parsed.
    """
    jfif, adobe, ids, pos = False, None, None, 2
    while pos + 4 <= len(jpeg) and jpeg[pos] == 0xFF:
        marker = jpeg[pos + 1]
        length = int.from_bytes(jpeg[pos + 2 : pos + 4], "big")
        data = jpeg[pos + 4 : pos + 2 + length]
        if marker == 0xE0 and data.startswith(b"JFIF\0"):
            jfif = True
        elif marker == 0xEE and data.startswith(b"Adobe") and len(data) >= 12:
            adobe = data[11]
        elif 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC) and len(data) >= 6:
            ids = tuple(data[6 + 3 * k] for k in range(data[5]) if 6 + 3 * k < len(data))
        elif marker == 0xDA:
            break
        pos += 2 + length
    if ids is None:
        return None
    if jfif:
        return True
    if adobe is not None:
        return adobe != 0
    return ids[:3] != (82, 71, 66)
