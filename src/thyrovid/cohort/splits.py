"""Patient-grouped, label-stratified train/val/test splits; external test set by center.

Rules, in order of precedence:
1. a split given in cohort.csv wins (for every row of that patient);
2. a patient whose center is in `external_centers` goes to "external";
3. the other ("internal") patients are split train/val/test, about 70/15/15 by default,
   stratified by patient label (1 = any nodule of the patient is malignant).

Within each label stratum patients are ordered by a keyed hash of (seed, patient_id), and the
first ~70% go to train, the next ~15% to val, the rest to test (largest-remainder rounding;
ties favour val in the benign stratum and test in the malignant one).
The result depends only on the set of patients, their labels and the seed, not on row order, so
it is the same on every run; a patient is never in two splits because splitting is per patient.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

import pandas as pd

from thyrovid.cohort.schema import SPLITS
from thyrovid.errors import UserError

FRACTIONS = (0.70, 0.15, 0.15)
INTERNAL = SPLITS[:3]  # train, val, test; the fourth, external, is by center
EXTERNAL = SPLITS[3]


def patient_order_key(patient_id: str, seed: int) -> str:
    """The deterministic shuffle key of a patient (hex digest of seed and id)."""
    return hashlib.blake2b(f"{seed}\x00{patient_id}".encode(), digest_size=8).hexdigest()


def allocate(n: int, fractions: tuple[float, ...] = FRACTIONS, rotate: int = 0) -> list[int]:
    """Split `n` items into counts proportional to `fractions` (largest remainder; sums to n).

    Ties between equal remainders go to the share with the smallest (index + `rotate`) mod k; the
    label strata use different `rotate` values so small strata do not all feed the same split.
    """
    total = sum(fractions)
    k = len(fractions)
    exact = [n * f / total for f in fractions]
    counts = [int(e) for e in exact]
    order = sorted(range(k), key=lambda i: (-round(exact[i] - counts[i], 9), (i + rotate) % k))
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    return counts


def assign_splits(
    patients: pd.DataFrame,
    external_centers: Iterable[str] = (),
    fractions: tuple[float, float, float] = FRACTIONS,
    seed: int = 0,
) -> dict[str, str]:
    """Assign each patient one split.

    Args:
        patients: one row per patient with columns patient_id, center, label (patient-level,
            0/1, 1 = malignant) and split ("" when not given; else train/val/test/external).
        external_centers: centers whose patients form the external test set.
        fractions: train/val/test shares of the internal patients without a given split.
        seed: the shuffle seed.

    Returns:
        patient_id -> "train" | "val" | "test" | "external".
    """
    if len(fractions) != 3 or min(fractions) < 0 or sum(fractions) <= 0:
        raise UserError(f"split fractions {fractions} must be three non-negative numbers")
    external = {c.strip() for c in external_centers if c.strip()}
    out: dict[str, str] = {}
    todo = {0: [], 1: []}
    for rec in patients.itertuples(index=False):
        if rec.split:
            out[rec.patient_id] = rec.split
        elif rec.center in external:
            out[rec.patient_id] = EXTERNAL
        else:
            todo[int(rec.label)].append(rec.patient_id)
    for label, ids in todo.items():
        ids = sorted(ids, key=lambda p: (patient_order_key(p, seed), p))
        counts = allocate(len(ids), fractions, rotate=label)
        start = 0
        for name, count in zip(INTERNAL, counts):
            for pid in ids[start : start + count]:
                out[pid] = name
            start += count
    return out


def patient_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Cohort rows -> one row per patient: patient_id, center, label (max), split (given)."""
    if rows.empty:
        return pd.DataFrame(columns=["patient_id", "center", "label", "split"])
    grouped = rows.groupby("patient_id", sort=True)
    return pd.DataFrame(
        {
            "center": grouped["center"].first(),
            "label": grouped["label"].max().astype(int),
            "split": grouped["split"].agg(lambda s: next((v for v in s if v), "")),
        }
    ).reset_index()


def conflicts(patients: pd.DataFrame, external_centers: Iterable[str]) -> Mapping[str, str]:
    """Patients whose given split is internal although their center is external -> message."""
    external = {c.strip() for c in external_centers if c.strip()}
    out = {}
    for rec in patients.itertuples(index=False):
        if rec.center in external and rec.split and rec.split != EXTERNAL:
            out[rec.patient_id] = (
                f"patient {rec.patient_id!r} of external center {rec.center!r} has split "
                f"{rec.split!r} in cohort.csv; the given split wins"
            )
    return out


def unknown_centers(patients: pd.DataFrame, external_centers: Iterable[str]) -> list[str]:
    """One message per name in `external_centers` that no row of cohort.csv has as its center.

    A misspelt center would otherwise send no patient to "external" without a word.
    """
    present = sorted({str(c) for c in patients["center"]}) if len(patients) else []
    out = []
    for name in sorted({c.strip() for c in external_centers if c.strip()}):
        if name not in present:
            out.append(
                f"--external-centers {name!r} is no center of cohort.csv (its centers: "
                f"{', '.join(present) or 'none'}); no patient goes to 'external' for it"
            )
    return out
