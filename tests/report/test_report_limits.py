"""The report's "limits of this result" box, built from metrics.json's warnings."""

from __future__ import annotations

import numpy as np
import pandas as pd

from thyrovid.evaluation.metrics import metrics_from_predictions
from thyrovid.report.html import limits_box
from thyrovid.report.sections import Run, metrics_table, run_limits


def _pred(per_class: int, seed=0, gap=0.45) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = [("patient", f"{s}{y}{i}", f"{s}{y}{i}", "A", s, y, float(rng.uniform(0.05, 0.5) + gap * y))
            for s in ("val", "test") for y in (0, 1) for i in range(per_class)]  # fmt: skip
    return pd.DataFrame(
        rows, columns=["level", "id", "patient_id", "center", "split", "label", "prob"]
    )


def _run(metrics) -> Run:
    return Run(path=__import__("pathlib").Path("r"), config={}, log=None, metrics=metrics,
               predictions=None)  # fmt: skip


def test_a_small_run_gets_a_limits_box_naming_its_counts():
    metrics = metrics_from_predictions(_pred(2), ci="wald", quiet=True)
    lines = run_limits(_run(metrics))
    assert lines[0].startswith("decision threshold chosen by Youden on 4 validation patients")
    html = limits_box(lines)
    assert "Limits of this result" in html and "at least 10 of each class" in html
    table = metrics_table({s: lv["patient"] for s, lv in metrics["splits"].items()})
    if any(w["code"] == "ci_clipped" for w in metrics["warnings"]):
        assert "(CI clipped to range)" in table


def test_a_large_clean_run_has_no_box():
    metrics = metrics_from_predictions(_pred(40, gap=0.25), quiet=True)  # kappa well below 1
    assert run_limits(_run(metrics)) == [] and limits_box([]) == ""
