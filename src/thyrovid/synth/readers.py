"""Simulated radiologists for the phantom's reader study (readers.csv, unaided and aided).

Model (all on the logit scale of P(malignant)), per reader and case:

    unaided = skill * (case_logit + N(0, noise * sd)) + bias   (the reader's own impression)
    aided   = (1 - w) * unaided + w * model_logit               (moved toward the AI's output)

``case_logit`` is the patient's true logit (its most suspicious nodule) and ``sd`` the spread
(standard deviation) of the case logits, so a reader's accuracy does not depend on the scale of
the phantom's logits. ``skill`` < 1 shrinks the reader's confidence; ``w`` is the reader's
reliance on the model: ``reliance`` for juniors and ``0.7 * reliance`` for seniors (juniors
lean on the AI more). Juniors read with more noise, so they gain more from the AI, as the paper
reports (Table 4: +16.9% accuracy for juniors, +11.1% for seniors; unaided AUROCs 0.55-0.72).
The reader's noise is drawn once per case, so the aided and unaided reads of a case are
correlated, as they are when the same radiologist reads twice. Scores are probabilities
(3 decimals) and the decision is score >= 0.5.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from thyrovid.errors import UserError

# group -> skill (confidence scale), noise (SD in units of the case-logit SD), bias (logit),
# reliance multiplier.
READER_PROFILES = {
    "junior": {"skill": 0.5, "noise": 2.2, "bias": 0.3, "reliance": 1.0},
    "senior": {"skill": 0.6, "noise": 1.4, "bias": 0.1, "reliance": 0.7},
}
AI_NOISE = 0.5  # SD (units of the case-logit SD) of the stand-in AI when no model output is given


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


def _patients(truth: pd.DataFrame, split: str | None) -> pd.DataFrame:
    """One row per patient: case, truth (any malignant nodule), logit (most suspicious)."""
    need = {"patient_id", "label"}
    if not need <= set(truth.columns):
        raise UserError(f"truth table lacks columns {sorted(need - set(truth.columns))}")
    rows = truth
    if split is not None and "split" in truth.columns:
        rows = truth[truth["split"].astype(str) == split]
    if rows.empty:
        raise UserError(f"truth table has no rows in split {split!r}")
    if "true_logit" in rows.columns:
        logit = rows["true_logit"].astype(float)
    elif "p_malignant" in rows.columns:
        logit = pd.Series(_logit(rows["p_malignant"]), index=rows.index)
    else:  # only labels: a clearly separated but imperfect latent score
        logit = rows["label"].astype(float) * 3.0 - 1.5
    per = pd.DataFrame(
        {"case": rows["patient_id"].astype(str), "truth": rows["label"].astype(int), "logit": logit}
    )
    return per.groupby("case", sort=True).agg(truth=("truth", "max"), logit=("logit", "max"))


def simulate_readers(
    truth: pd.DataFrame,
    model_prob: Mapping[str, float] | None = None,
    n_junior: int = 2,
    n_senior: int = 2,
    reliance: float = 0.5,
    split: str | None = "external",
    seed: int = 0,
) -> pd.DataFrame:
    """Simulate a fully crossed reader study with and without the model's help.

    Args:
        truth: truth.csv rows (one per nodule) with patient_id, label and true_logit (or
            p_malignant); rows outside `split` are ignored (split=None keeps all).
        model_prob: patient_id -> the model's P(malignant); None: a simulated AI score
            (true logit + N(0, 0.5 sd)) stands in.
        n_junior, n_senior: number of junior (JR1, JR2, ...) and senior (SR1, ...) readers.
        reliance: weight in [0, 1] a junior gives the model's logit when aided (seniors 0.7x).
        split: which split's patients are the cases.
        seed: the simulation is a pure function of its inputs and this seed.

    Returns:
        DataFrame in the readers.csv contract: reader, group, case, modality ("unaided" /
        "aided"), truth (0/1), score (P(malignant), 3 decimals), decision (0/1); rows ordered
        by reader, modality (unaided first), case.
    """
    if not 0.0 <= reliance <= 1.0:
        raise UserError(f"reliance must be in [0, 1], got {reliance}")
    if n_junior + n_senior < 1:
        raise UserError("need at least one reader")
    cases = _patients(truth, split)
    rng = np.random.default_rng(seed)
    case_logit = cases["logit"].to_numpy()
    sd = float(case_logit.std()) if len(cases) > 1 and case_logit.std() > 0 else 1.0
    if model_prob is None:
        model_logit = case_logit + rng.normal(0.0, AI_NOISE * sd, len(cases))
    else:
        missing = [c for c in cases.index if c not in model_prob]
        if missing:
            raise UserError(f"model_prob has no probability for patient {missing[0]!r}")
        model_logit = _logit([model_prob[c] for c in cases.index])

    readers = [("junior", f"JR{i + 1}") for i in range(n_junior)]
    readers += [("senior", f"SR{i + 1}") for i in range(n_senior)]
    frames = []
    for group, name in readers:
        prof = READER_PROFILES[group]
        skill = prof["skill"] * rng.uniform(0.9, 1.1)
        noise = rng.normal(0.0, prof["noise"] * sd, len(cases))
        unaided = skill * (case_logit + noise) + prof["bias"]
        w = min(1.0, reliance * prof["reliance"])
        aided = (1 - w) * unaided + w * model_logit
        for modality, logit in (("unaided", unaided), ("aided", aided)):
            score = np.round(1 / (1 + np.exp(-logit)), 3)
            frames.append(
                pd.DataFrame(
                    {
                        "reader": name,
                        "group": group,
                        "case": cases.index,
                        "modality": modality,
                        "truth": cases["truth"].to_numpy(),
                        "score": score,
                        "decision": (score >= 0.5).astype(int),
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)
