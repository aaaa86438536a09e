"""The 11 TI-RADS feature targets of the learning probes, from the phantom's truth.csv."""

import numpy as np
import pandas as pd

NAMES = ["solid", "mixed", "hypo+", "very_hypo", "ttw", "msus", "ete", "micro", "macro"]
NAMES += ["rim_continuous", "rim_interrupted"]


def targets(truth: pd.DataFrame, clips: pd.DataFrame) -> np.ndarray:
    """(n_clips, 11) float32 0/1 per clip of `clips`, `truth` indexed by nodule_id."""
    t = truth.loc[clips.nodule_id]
    cols = [
        t.composition == "solid",
        t.composition == "mixed",
        t.echogenicity != "iso_hyper",
        t.echogenicity == "very_hypo",
        t.taller_than_wide == 1,
        t.margin.isin(["lobulated", "irregular", "extrathyroidal"]),
        t.margin == "extrathyroidal",
        t.n_micro > 0,
        t.n_macro > 0,
        t.rim == "continuous",
        t.rim == "interrupted",
    ]
    return np.stack([np.asarray(c, dtype=np.float32) for c in cols], 1)
