"""The one check of a clinician's box against its frame (cohort.csv rows and `predict` alike).

Kept apart from `schema` so that checking a box imports no pandas (the ONNX engine of
`thyrovid predict` runs on numpy, the video readers, OpenCV and onnxruntime alone).
"""

from __future__ import annotations


def box_problem(box: tuple[float, float, float, float], width: int, height: int) -> str | None:
    """Why `box` (x0, y0, x1, y1) does not fit a width x height frame, or None."""
    x0, y0, x1, y1 = box
    if x0 < 0 or y0 < 0 or x1 > width or y1 > height:
        return f"box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) is outside the {width}x{height} frame"
    return None
