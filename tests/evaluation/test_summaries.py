"""What evaluate prints to the terminal: a short table, with the reasons behind blanks."""

from __future__ import annotations

import numpy as np
import pandas as pd

from thyrovid.evaluation.evaluate import summary_table
from thyrovid.evaluation.metrics import metrics_from_predictions


def _pred(per_class: dict[str, int], seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for split, k in per_class.items():
        for label in (0, 1):
            for i in range(k if split != "val" or label else k + 1):
                rows.append(("patient", f"{split}{label}{i}", f"{split}{label}{i}", "A", split,
                             label, float(rng.uniform(0.1, 0.5) + 0.4 * label)))  # fmt: skip
    cols = ["level", "id", "patient_id", "center", "split", "label", "prob"]
    return pd.DataFrame(rows, columns=cols)


def test_summary_is_a_table_with_the_threshold_band_and_why_a_ci_is_blank():
    metrics = metrics_from_predictions(_pred({"val": 1, "test": 1}), quiet=True)
    text = summary_table(metrics, {"wrote": ["RUN/predictions.csv", "RUN/metrics.json"]})
    lines = text.splitlines()
    assert lines[0].startswith("threshold ") and "near-threshold band" in lines[0]
    assert lines[1].split()[:3] == ["split", "patients", "malignant"]
    assert lines[2].split()[:3] == ["val", "3", "1"]
    assert "val: AUROC no CI: DeLong's variance needs two cases of each class" in text
    assert "warning(s) above; metrics.json 'warnings'" in text
    assert lines[-1] == "wrote RUN/predictions.csv, RUN/metrics.json"
    assert "{" not in text  # not a JSON blob
