"""Tables and figures of the paper's layout, written atomically.

``tables``: metric tables (rows = metrics, columns = models) to CSV and Markdown.
``figures``: ROC curves, the DeLong matrix, confusion matrices (matplotlib, Agg, PNG + SVG).
"""

from __future__ import annotations

from thyrovid.atomic import atomic_path, write_text_atomic

__all__ = ["atomic_path", "write_text_atomic"]
