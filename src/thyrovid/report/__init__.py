"""Presentation: tables and figures of the paper's layout, and the one-page HTML report.

``tables``: metric tables (rows = metrics, columns = models) to CSV and Markdown.
``figures``: ROC curves, the DeLong matrix, confusion matrices (matplotlib, Agg, PNG + SVG).
``html``: the pieces of the page; ``sections`` / ``study_sections``: one builder per input;
``run_figures``: a run's training curves and reliability diagram; ``report``: `thyrovid report`.
Every module here reads files that the stages wrote; none imports a stage.
"""
