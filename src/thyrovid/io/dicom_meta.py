"""DICOM header -> video metadata and pixel conversions to 8-bit RGB/grey.

Pure functions on a pydicom `Dataset` read without its pixel data: frame rate, physical
spacing and imaging region (from SequenceOfUltrasoundRegions), and the fixed per-video
mappings that turn decoded samples into uint8 (palette LUT, 16-bit -> 8-bit window).
"""

from __future__ import annotations

import numpy as np
from pydicom.dataset import Dataset

# PhysicalUnitsX/YDirection code for centimetres (DICOM PS3.3 C.8.5.5.1.15).
_UNITS_CM = 3
# RegionSpatialFormat code for a 2D image region (C.8.5.5.1.1).
_SPATIAL_2D = 1
# RegionDataType code for tissue (C.8.5.5.1.2).
_DATA_TISSUE = 1


def frame_rate(ds: Dataset) -> float | None:
    """Frames per second from FrameTime (ms), FrameTimeVector, CineRate or
    RecommendedDisplayFrameRate, in that order; None when none is usable."""
    frame_time = _positive(ds.get("FrameTime"))
    if frame_time:
        return 1000.0 / frame_time
    vector = ds.get("FrameTimeVector")
    if vector is not None:
        # The first entry is 0 (time of frame 0); the others are ms since the previous frame.
        times = np.asarray([float(t) for t in np.atleast_1d(vector)][1:], dtype=float)
        times = times[times > 0]
        if times.size:
            return 1000.0 / float(times.mean())
    for keyword in ("CineRate", "RecommendedDisplayFrameRate"):
        rate = _positive(ds.get(keyword))
        if rate:
            return rate
    return None


def _positive(value) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if v > 0 else None


def imaging_region(ds: Dataset) -> Dataset | None:
    """The ultrasound region to use: the largest 2D region, tissue regions first.

    Returns an item of SequenceOfUltrasoundRegions, or None when there is none.
    """
    regions = [r for r in ds.get("SequenceOfUltrasoundRegions", []) if _box(r) is not None]
    if not regions:
        return None

    def rank(r: Dataset) -> tuple:
        x0, y0, x1, y1 = _box(r)
        return (
            r.get("RegionSpatialFormat") == _SPATIAL_2D,
            r.get("RegionDataType") == _DATA_TISSUE,
            (x1 - x0) * (y1 - y0),
        )

    return max(regions, key=rank)


def _box(region: Dataset) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) with x1/y1 exclusive (DICOM's Max X1/Y1 are inclusive)."""
    keys = (
        "RegionLocationMinX0",
        "RegionLocationMinY0",
        "RegionLocationMaxX1",
        "RegionLocationMaxY1",
    )
    values = [region.get(k) for k in keys]
    if any(v is None for v in values):
        return None
    x0, y0, x1, y1 = (int(v) for v in values)
    if x1 < x0 or y1 < y0:
        return None
    return x0, y0, x1 + 1, y1 + 1


def region_box(ds: Dataset, width: int, height: int) -> tuple[int, int, int, int] | None:
    """Imaging region (x0, y0, x1, y1) in pixels, x1/y1 exclusive, clipped to the frame."""
    region = imaging_region(ds)
    if region is None:
        return None
    x0, y0, x1, y1 = _box(region)
    return max(0, x0), max(0, y0), min(width, x1), min(height, y1)


def pixel_spacing_mm(ds: Dataset) -> tuple[float, float] | None:
    """(row, column) spacing in mm: from the imaging region when its units are cm, else
    PixelSpacing; None when neither is given."""
    region = imaging_region(ds)
    if region is not None:
        ux, uy = region.get("PhysicalUnitsXDirection"), region.get("PhysicalUnitsYDirection")
        dx, dy = (
            _positive(abs(region.get("PhysicalDeltaX") or 0)),
            _positive(abs(region.get("PhysicalDeltaY") or 0)),
        )
        if ux == _UNITS_CM and uy == _UNITS_CM and dx and dy:
            return dy * 10.0, dx * 10.0
    spacing = ds.get("PixelSpacing")
    if spacing is not None and len(spacing) == 2:
        row, col = _positive(spacing[0]), _positive(spacing[1])
        if row and col:
            return row, col
    return None


def palette_table(ds: Dataset, bits_allocated: int) -> np.ndarray:
    """Lookup table (2**bits_allocated, 3) uint8 for PALETTE COLOR pixel values.

    Built once per video with pydicom's `apply_color_lut`; 16-bit LUT entries are scaled to
    8 bits (x * 255 / 65535, rounded).
    """
    from pydicom.pixels import apply_color_lut

    dtype = np.uint8 if bits_allocated <= 8 else np.uint16
    values = np.arange(2 ** min(bits_allocated, 16), dtype=np.uint32).astype(dtype)
    table = apply_color_lut(values, ds)[..., :3]
    if table.dtype != np.uint8:
        table = np.rint(table.astype(np.float64) * (255.0 / 65535.0)).astype(np.uint8)
    return np.ascontiguousarray(table)


def grey_range(ds: Dataset, bits_stored: int, signed: bool) -> tuple[float, float]:
    """Stored-value range (lo, hi) mapped linearly onto 0..255 for >8-bit data.

    The choice, fixed per video so every frame uses the same mapping:
    1. the first VOI window (WindowCenter/WindowWidth, PS3.3 C.11.2.1.2), taken back to stored
       values through RescaleSlope/RescaleIntercept;
    2. else SmallestImagePixelValue..LargestImagePixelValue when both are given;
    3. else the full range that BitsStored allows.
    """
    center, width = _first(ds.get("WindowCenter")), _first(ds.get("WindowWidth"))
    if center is not None and width is not None and width >= 1:
        slope = float(ds.get("RescaleSlope", 1) or 1)
        intercept = float(ds.get("RescaleIntercept", 0) or 0)
        lo = (center - 0.5 - (width - 1) / 2 - intercept) / slope
        hi = (center - 0.5 + (width - 1) / 2 - intercept) / slope
        return (min(lo, hi), max(lo, hi)) if lo != hi else (lo, lo + 1)
    small, large = ds.get("SmallestImagePixelValue"), ds.get("LargestImagePixelValue")
    if isinstance(small, int) and isinstance(large, int) and large > small:
        return float(small), float(large)
    if signed:
        return float(-(2 ** (bits_stored - 1))), float(2 ** (bits_stored - 1) - 1)
    return 0.0, float(2**bits_stored - 1)


def _first(value) -> float | None:
    if value is None:
        return None
    try:
        return float(np.atleast_1d(value)[0])
    except (TypeError, ValueError, IndexError):
        return None


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
