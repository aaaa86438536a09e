"""Latent nodule features, the true malignancy model and ACR TI-RADS points.

Every nodule has a latent severity ``s ~ N(shift, 1)`` that drives its visible features
(composition, echogenicity, shape, margin, calcifications). Its label is drawn from a logistic
model of those *visible* features only, with the same coefficients at every center, so
P(malignant | features) is the Bayes-optimal score an observer of the whole nodule could reach
(the "Bayes AUROC" ceiling). Centers differ in case mix (``shift``), which sets the prevalence.

Feature codes (ints in arrays, names in truth.csv):
    composition: 0 spongiform, 1 mixed cystic-solid, 2 solid        (TI-RADS 0 / 1 / 2)
    echogenicity: 1 iso/hyper, 2 hypo, 3 very hypo                   (TI-RADS points = code)
    taller_than_wide: 0 / 1                                          (0 / 3)
    margin: 0 smooth, 1 ill-defined, 2 lobulated, 3 irregular, 4 extrathyroidal (0/0/2/2/3)
    n_micro: punctate echogenic foci (microcalcifications, <= 1 mm)   (present: 3)
    n_macro: macrocalcifications with shadowing                       (present: 1)
    rim: 0 none, 1 continuous, 2 interrupted peripheral calcification (present: 2)
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

COMPOSITIONS = ("spongiform", "mixed", "solid")
ECHOGENICITIES = {1: "iso_hyper", 2: "hypo", 3: "very_hypo"}
MARGINS = ("smooth", "ill_defined", "lobulated", "irregular", "extrathyroidal")
RIMS = ("none", "continuous", "interrupted")
MARGIN_POINTS = np.array([0, 0, 2, 2, 3])
COMPOSITION_POINTS = np.array([0, 1, 2])

# Coefficients of the true logit (same at every center). Chosen so that the Bayes AUROC of a
# few hundred nodules is about 0.92 and microcalcifications carry much of the signal.
INTERCEPT = -5.0
WEIGHTS = {
    "composition": 0.45,  # per TI-RADS point
    "echogenicity": 0.9,  # per TI-RADS point
    "taller_than_wide": 1.9,
    "margin_suspicious": 1.6,  # lobulated / irregular
    "extrathyroidal": 2.8,
    "micro_present": 2.4,
    "micro_per_focus": 0.1,
    "macro_present": -0.9,
    "rim_continuous": -1.6,
    "rim_interrupted": 0.8,
}
FEATURE_KEYS = (
    "composition",
    "echogenicity",
    "taller_than_wide",
    "margin",
    "n_micro",
    "n_macro",
    "rim",
)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def draw_noise(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """The random numbers behind `n` nodules' features (so features are a function of shift)."""
    names = ("s", "comp", "comp2", "echo", "ttw", "margin", "micro", "macro", "rim", "rim2")
    out = {
        k: rng.standard_normal(n) if k in ("s", "echo", "margin") else rng.random(n) for k in names
    }
    out["n_micro"] = rng.poisson(4.0, n)
    out["n_macro"] = rng.integers(1, 4, n)
    return out


def features_from_noise(noise: dict[str, np.ndarray], shift: float) -> dict[str, np.ndarray]:
    """Features of the nodules whose random numbers are `noise`, at case-mix `shift`.

    Returns:
        dict of int arrays (n,) keyed by FEATURE_KEYS, plus "severity" (float).
    """
    s = shift + noise["s"]
    solid = noise["comp"] < _sigmoid(0.8 + 0.7 * s)
    composition = np.where(solid, 2, np.where(noise["comp2"] < 0.75, 1, 0))
    e = 0.6 * s + noise["echo"]
    echogenicity = np.where(e < -0.4, 1, np.where(e < 1.3, 2, 3))
    ttw = (noise["ttw"] < _sigmoid(-1.9 + 0.7 * s)).astype(int)
    m = 0.6 * s + noise["margin"]
    margin = np.digitize(m, [-0.2, 0.5, 1.2, 2.4])
    has_micro = noise["micro"] < _sigmoid(-1.3 + 0.8 * s)
    n_micro = np.where(has_micro, 1 + noise["n_micro"], 0)
    has_macro = noise["macro"] < _sigmoid(-0.3 - 0.6 * s)
    has_rim = noise["rim"] < _sigmoid(-1.8 - 0.5 * s)
    rim = np.where(has_rim, np.where(noise["rim2"] < _sigmoid(-0.5 + 1.2 * s), 2, 1), 0)
    # Inclusion criterion of the paper: every nodule is calcified.
    none = ~has_micro & ~has_macro & ~has_rim
    n_macro = np.where(has_macro | none, noise["n_macro"], 0)
    return {
        "composition": composition.astype(int),
        "echogenicity": echogenicity.astype(int),
        "taller_than_wide": ttw,
        "margin": margin.astype(int),
        "n_micro": n_micro.astype(int),
        "n_macro": n_macro.astype(int),
        "rim": rim.astype(int),
        "severity": s,
    }


def true_logit(f: dict[str, np.ndarray]) -> np.ndarray:
    """The logit of P(malignant | visible features), (n,) float."""
    w = WEIGHTS
    return (
        INTERCEPT
        + w["composition"] * COMPOSITION_POINTS[f["composition"]]
        + w["echogenicity"] * f["echogenicity"]
        + w["taller_than_wide"] * f["taller_than_wide"]
        + w["margin_suspicious"] * np.isin(f["margin"], (2, 3))
        + w["extrathyroidal"] * (f["margin"] == 4)
        + w["micro_present"] * (f["n_micro"] > 0)
        + w["micro_per_focus"] * f["n_micro"]
        + w["macro_present"] * (f["n_macro"] > 0)
        + w["rim_continuous"] * (f["rim"] == 1)
        + w["rim_interrupted"] * (f["rim"] == 2)
    )


def tirads_points(f: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """ACR TI-RADS points per category, total and level TR1-TR5 (Tessler et al. 2017)."""
    foci = 3 * (f["n_micro"] > 0) + 1 * (f["n_macro"] > 0) + 2 * (f["rim"] > 0)
    pts = {
        "tirads_composition": COMPOSITION_POINTS[f["composition"]],
        "tirads_echogenicity": np.asarray(f["echogenicity"]),
        "tirads_shape": 3 * np.asarray(f["taller_than_wide"]),
        "tirads_margin": MARGIN_POINTS[f["margin"]],
        "tirads_foci": foci,
    }
    total = sum(pts.values())
    pts["tirads_points"] = total
    pts["tirads_level"] = np.select(
        [total == 0, total <= 2, total == 3, total <= 6], [1, 2, 3, 4], 5
    )
    return pts


@lru_cache(maxsize=32)
def shift_for_prevalence(prevalence: float, n: int = 20000, seed: int = 12345) -> float:
    """Case-mix shift whose expected prevalence (mean P(malignant)) equals `prevalence`.

    Deterministic: bisection on a fixed Monte Carlo sample (common random numbers).
    """
    if not 0.01 <= prevalence <= 0.99:
        raise ValueError(f"prevalence {prevalence} outside [0.01, 0.99]")
    noise = draw_noise(np.random.default_rng(seed), n)
    lo, hi = -4.0, 4.0
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        p = _sigmoid(true_logit(features_from_noise(noise, mid))).mean()
        lo, hi = (mid, hi) if p < prevalence else (lo, mid)
    return 0.5 * (lo + hi)


def draw_features(rng: np.random.Generator, n: int, shift: float) -> dict[str, np.ndarray]:
    """Draw `n` nodules: features, true_logit, p_malignant and label (1 = malignant)."""
    f = features_from_noise(draw_noise(rng, n), shift)
    f["true_logit"] = true_logit(f)
    f["p_malignant"] = _sigmoid(f["true_logit"])
    f["label"] = (rng.random(n) < f["p_malignant"]).astype(int)
    return f
