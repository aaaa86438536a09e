"""The validation AUROC that picks the kept epoch votes patients as `evaluate` does."""

from __future__ import annotations

import pandas as pd
import pytest

from thyrovid.config import TrainConfig
from thyrovid.errors import UserError
from thyrovid.training.engine import validation_auroc


def _clips():
    # P1: one malignant nodule (0.9) beside three benign ones (0.1): malignant patient
    # P2: two benign nodules at 0.35: benign patient; P3: one benign nodule at 0.2
    rows = [("P1", "P1_n1", 1, 0.9)] + [("P1", f"P1_n{i}", 0, 0.1) for i in (2, 3, 4)]
    rows += [("P2", "P2_n1", 0, 0.35), ("P2", "P2_n2", 0, 0.35), ("P3", "P3_n1", 0, 0.2)]
    df = pd.DataFrame(rows, columns=["patient_id", "nodule_id", "label", "prob"])
    df["clip_id"] = [f"c{i}" for i in range(len(df))]
    preds = {c: (p, 0.0) for c, p in zip(df["clip_id"], df["prob"])}
    return df.drop(columns="prob"), preds


def test_noisy_or_and_max_rank_the_patient_with_one_malignant_nodule_first():
    clips, preds = _clips()
    # mean: P1 0.3 < P2 0.35: the malignant patient ranks below a benign one
    assert validation_auroc(clips, preds, "patient", "mean") == pytest.approx(0.5)
    assert validation_auroc(clips, preds, "patient", "max") == pytest.approx(1.0)
    assert validation_auroc(clips, preds, "patient", "noisy-or") == pytest.approx(1.0)
    assert validation_auroc(clips, preds, "clip") == pytest.approx(1.0)


def test_patient_vote_is_a_checked_training_option():
    assert TrainConfig().patient_vote == "mean" and TrainConfig().pool == "avg"  # the paper's
    with pytest.raises(UserError, match="patient_vote"):
        TrainConfig(patient_vote="median")
    with pytest.raises(UserError, match="pool"):
        TrainConfig(pool="sum")
