"""How sure a result is: the one place that judges a result's reliability and words its warnings.

The numbers thyrovid prints are computed correctly; this module says when they mean little.
Every stage that shows a result (train, evaluate, compare, readers, cam, predict, report,
serve) asks it, so a warning reads the same wherever it appears: in the terminal
(``warning: ...`` on stderr), in metrics.json under the one key ``warnings``, beside the number
in the report and on the page.

A warning is a :class:`Caution`: a stable ``code``, ``where`` it applies (e.g.
``test/patient/auroc``) and a one-line ``message`` that names the count and the bound it
failed. The checks and their bounds:

==========================  ================================================================
code                        raised when
==========================  ================================================================
``few_for_threshold``       the threshold was chosen on fewer than ``MIN_PER_CLASS_THRESHOLD``
                            patients of a class
``default_threshold``       no validation split of both classes: the threshold is 0.5
``few_for_auroc``           an AUROC rests on fewer than ``MIN_PER_CLASS_AUROC`` cases of a
                            class (below 2 of each it has no CI, and the message says why)
``narrow_spread``           the probabilities spread less than ``MIN_SPREAD`` (5th to 95th
                            percentile): a near-constant model
``calibration_slope``       the calibration slope lies outside ``SLOPE_RANGE``
``never_above_chance``      the validation AUROC was <= 0.5 in every evaluated epoch
``empty_heatmap``           a Grad-CAM map is all zeros: it shows nothing
``ci_clipped``              a CI left its metric's range (``RANGES``) and was clipped to it
==========================  ================================================================

Nothing here reads or writes a file, or imports a stage: pure functions on numbers and dicts.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

MIN_PER_CLASS_THRESHOLD = 10  # patients of each class to choose a threshold on
MIN_PER_CLASS_AUROC = 10  # cases of each class for an AUROC worth reading
MIN_SPREAD = 0.05  # 5th-95th percentile range of P(malignant) below this: near-constant
SLOPE_RANGE = (0.1, 10.0)  # calibration slopes outside: the scores say little about the risk
N_BOOT = 200  # bootstrap replicates of the threshold band and of a video's probability

# The range of each metric's value; a CI bound beyond it is clipped (and said so).
RANGES: dict[str, tuple[float, float]] = {
    "auroc": (0.0, 1.0),
    "accuracy": (0.0, 1.0),
    "sensitivity": (0.0, 1.0),
    "specificity": (0.0, 1.0),
    "ppv": (0.0, 1.0),
    "npv": (0.0, 1.0),
    "f1": (0.0, 1.0),
    "kappa": (-1.0, 1.0),
    "youden": (-1.0, 1.0),
}
CODES = (
    "few_for_threshold",
    "default_threshold",
    "few_for_auroc",
    "narrow_spread",
    "calibration_slope",
    "never_above_chance",
    "empty_heatmap",
    "ci_clipped",
)


@dataclass(frozen=True)
class Caution:
    """One reliability warning.

    Attributes:
        code: one of ``CODES``.
        where: what it is about, e.g. "val/patient/threshold", "test/patient/auroc", a clip id.
        message: one line for a person, naming the count and the bound.
    """

    code: str
    where: str
    message: str

    def to_json(self) -> dict:
        return asdict(self)

    def line(self) -> str:
        """The terminal line."""
        return f"warning: {self.message}"


def emit(cautions: Iterable[Caution], stream=None) -> None:
    """Print each caution as ``warning: ...`` (stderr by default), once each."""
    stream = sys.stderr if stream is None else stream
    for line in dict.fromkeys(c.line() for c in cautions):
        print(line, file=stream)


def to_json(cautions: Iterable[Caution]) -> list[dict]:
    """The ``warnings`` list of a JSON output (duplicates dropped, order kept)."""
    return [dict(t) for t in dict.fromkeys(tuple(c.to_json().items()) for c in cautions)]


def from_json(items) -> list[Caution]:
    """Cautions back from a ``warnings`` list (unknown keys ignored; bad items skipped)."""
    out = []
    for item in items or []:
        if isinstance(item, dict) and {"code", "where", "message"} <= set(item):
            out.append(Caution(str(item["code"]), str(item["where"]), str(item["message"])))
    return out


# ---------------------------------------------------------------- counts


def _classes(n_pos: int, n_neg: int, unit: str) -> str:
    return f"{n_pos} malignant and {n_neg} benign {unit}"


def few_for_threshold(n_pos: int, n_neg: int, where: str, how: str = "Youden") -> list[Caution]:
    """A threshold chosen on too few patients of a class."""
    low = min(n_pos, n_neg)
    if low >= MIN_PER_CLASS_THRESHOLD:
        return []
    return [
        Caution(
            "few_for_threshold",
            where,
            f"decision threshold chosen by {how} on {n_pos + n_neg} validation patients "
            f"({_classes(n_pos, n_neg, 'patients')}); at least {MIN_PER_CLASS_THRESHOLD} of "
            "each class are needed for a stable threshold: treat it as provisional",
        )
    ]


def default_threshold(why: str, where: str = "threshold") -> list[Caution]:
    """The threshold fell back to 0.5."""
    return [
        Caution(
            "default_threshold",
            where,
            f"{why}; using threshold 0.5: the decision threshold was not chosen on any data",
        )
    ]


def few_for_auroc(n_pos: int, n_neg: int, where: str, unit: str = "cases") -> list[Caution]:
    """An AUROC on too few cases of a class; below 2 of each, say why it has no CI."""
    low = min(n_pos, n_neg)
    if low >= MIN_PER_CLASS_AUROC:
        return []
    counts = _classes(n_pos, n_neg, unit)
    if low == 0:
        tail = "the AUROC is undefined (it needs both classes)"
    elif low == 1:
        tail = "the AUROC has no CI (DeLong's variance needs 2 of each class)"
    else:
        tail = f"at least {MIN_PER_CLASS_AUROC} of each class are needed for a stable AUROC"
    return [Caution("few_for_auroc", where, f"{where}: AUROC on {counts}; {tail}")]


# ---------------------------------------------------------------- a degenerate model


def prob_range(prob) -> dict | None:
    """min, 5th percentile, 95th percentile and max of P(malignant); None without values."""
    p = np.asarray(prob, dtype=np.float64)
    p = p[np.isfinite(p)]
    if not p.size:
        return None
    p05, p95 = np.quantile(p, [0.05, 0.95])
    return {"min": float(p.min()), "p05": float(p05), "p95": float(p95), "max": float(p.max())}


def narrow_spread(spread: dict | None, n: int, where: str) -> list[Caution]:
    """Probabilities that hardly vary between cases (`spread`: :func:`prob_range`)."""
    if not spread or n < 3:
        return []
    width = spread["p95"] - spread["p05"]
    if width >= MIN_SPREAD:
        return []
    return [
        Caution(
            "narrow_spread",
            where,
            f"{where}: the model gives nearly the same P(malignant) to every case "
            f"({spread['p05']:.4f} to {spread['p95']:.4f}, 5th-95th percentile of {n}; spread "
            f"{width:.4f} < {MIN_SPREAD}): a near-constant model, its ranking means little",
        )
    ]


def calibration_slope(slope: float | None, intercept: float | None, where: str) -> list[Caution]:
    """A calibration slope outside ``SLOPE_RANGE``."""
    if slope is None or not math.isfinite(slope):
        return []
    low, high = SLOPE_RANGE
    if low <= slope <= high:
        return []
    what = (
        "scores far too compressed (under-confident or near-constant)"
        if slope > high
        else "scores far too spread (over-confident)"
    )
    icpt = "" if intercept is None else f", intercept {intercept:.1f}"
    return [
        Caution(
            "calibration_slope",
            where,
            f"{where}: calibration slope {slope:.1f}{icpt} is outside [{low}, {high}]: {what}; "
            "the probabilities are not risks",
        )
    ]


def never_above_chance(val_aurocs: Sequence, where: str = "train/val") -> list[Caution]:
    """Validation AUROC <= 0.5 in every evaluated epoch (`val_aurocs`: one per epoch; blanks
    and NaN are epochs not evaluated)."""
    values = []
    for v in val_aurocs:
        try:
            x = float(v)
        except (TypeError, ValueError):
            continue
        if math.isfinite(x):
            values.append(x)
    if not values or max(values) > 0.5:
        return []
    return [
        Caution(
            "never_above_chance",
            where,
            f"validation AUROC was <= 0.5 in every one of {len(values)} evaluated epoch(s) "
            f"(best {max(values):.3f}): the network did not learn to rank the validation cases",
        )
    ]


def empty_heatmap(cam, where: str) -> list[Caution]:
    """A Grad-CAM map that is all zeros (or not finite): it shows nothing."""
    c = np.asarray(cam, dtype=np.float64)
    peak = float(np.nanmax(c)) if c.size and np.isfinite(c).any() else 0.0
    if peak > 0.0:
        return []
    return [
        Caution(
            "empty_heatmap",
            where,
            f"{where}: the Grad-CAM map is all zeros (max {peak:.1f}): no evidence for "
            "malignancy reached the explained layer; the heatmap shows nothing",
        )
    ]


# ---------------------------------------------------------------- intervals


def clip_interval(entry: dict, metric: str, where: str) -> list[Caution]:
    """Clip ``entry``'s low/high to the range of `metric` in place; say so when it did.

    `entry` is a ``{"value", "low", "high"}`` dict; a clipped one also gets ``clipped``, the
    raw bounds as computed (e.g. ``{"high": 1.238}``).
    """
    if metric not in RANGES or not isinstance(entry, dict):
        return []
    bounds = dict(zip(("low", "high"), RANGES[metric]))
    raw = {}
    for key, bound in bounds.items():
        x = entry.get(key)
        if not isinstance(x, (int, float)) or not math.isfinite(x):
            continue
        if (key == "low" and x < bound) or (key == "high" and x > bound):
            raw[key] = float(x)
            entry[key] = bound
    if not raw:
        return []
    entry["clipped"] = raw
    return _clipped({metric: entry}, where)


def _clipped(entries: dict, where: str) -> list[Caution]:
    """One ci_clipped caution for the entries ``{metric: entry}`` clipped by clip_interval."""
    parts = []
    for metric, entry in entries.items():
        raw = entry.get("clipped") if isinstance(entry, dict) else None
        for key, value in (raw or {}).items():
            lo, hi = RANGES[metric]
            parts.append(
                f"{metric} {key} {value:.3f} -> {entry.get(key):g} (range [{lo:g}, {hi:g}])"
            )
    if not parts:
        return []
    return [
        Caution(
            "ci_clipped",
            where,
            f"{where}: CI clipped to its range: {'; '.join(parts)}; the large-sample interval "
            "does not hold at this sample size",
        )
    ]


def clip_block(block: dict, where: str) -> list[Caution]:
    """Clip every metric interval of a metrics block (metrics.json split/level) in place."""
    for metric in RANGES:
        if isinstance(block.get(metric), dict):
            clip_interval(block[metric], metric, where)
    return _clipped({m: block[m] for m in RANGES if m in block}, where)


# ---------------------------------------------------------------- a whole metrics.json


def block_cautions(block: dict, where: str, unit: str = "cases") -> list[Caution]:
    """The cautions of one metrics block (split/level or a compared model)."""
    n, n_pos = int(block.get("n") or 0), int(block.get("n_pos") or 0)
    out = few_for_auroc(n_pos, n - n_pos, where, unit) if n else []
    out += narrow_spread(block.get("prob_range"), n, where)
    cal = block.get("calibration") or {}
    out += calibration_slope(cal.get("slope"), cal.get("intercept"), where)
    out += _clipped({m: block[m] for m in RANGES if m in block}, where)
    return out


def metrics_cautions(metrics: dict, levels: Sequence[str] = ("patient",)) -> list[Caution]:
    """Every caution a metrics.json dict (``thyrovid evaluate``) calls for.

    The threshold's sample, then per split at `levels` (the paper's patient level by default):
    the AUROC's counts, the spread of the probabilities, the calibration slope and every clipped
    CI.
    """
    out: list[Caution] = []
    thr = metrics.get("threshold") or {}
    splits = metrics.get("splits") or {}
    if thr.get("method") == "default":
        out += default_threshold(
            str(thr.get("source", "")).removeprefix("default 0.5 ").strip("()")
        )
    elif thr.get("method") in ("youden", "sensitivity") and thr.get("split") in splits:
        block = splits[thr["split"]].get(thr.get("level") or "patient") or {}
        n, n_pos = int(block.get("n") or 0), int(block.get("n_pos") or 0)
        how = "Youden" if thr["method"] == "youden" else f"sensitivity >= {thr.get('target')}"
        out += few_for_threshold(
            n_pos, n - n_pos, f"{thr['split']}/{thr.get('level')}/threshold", how
        )
    for split, by_level in splits.items():
        for level in levels:
            if level in by_level:
                out += block_cautions(by_level[level], f"{split}/{level}", f"{level}s")
    return out


def limits(cautions: Iterable[Caution]) -> list[str]:
    """The "limits of this result" lines: one per caution, in a fixed order of kinds."""
    rank = {c: i for i, c in enumerate(CODES)}
    items = sorted(dict.fromkeys(cautions), key=lambda c: rank.get(c.code, len(rank)))
    return [c.message for c in items]


# ---------------------------------------------------------------- a decision and its margin


def threshold_band(
    truth, prob, method: str = "youden", target: float | None = None, n_boot: int = N_BOOT,
    seed: int = 0, level: float = 0.95,
) -> dict | None:  # fmt: skip
    """How far the threshold could move on other validation samples: the "near" band.

    The band spans (1) the nearest validation probabilities on either side of the threshold:
    the validation set cannot place the threshold more finely than that; and (2) the central
    `level` range of the thresholds chosen again, the same way, on bootstrap resamples of the
    validation patients (resampled within each class, so each replicate has both). A
    probability inside the band is "near the threshold": another validation set as likely as
    this one would have decided it the other way.

    Returns:
        dict low, high, level, n_boot, n_pos, n_neg, method; None without both classes.
    """
    from thyrovid.stats.roc import choose_threshold

    t = np.asarray(truth).astype(int)
    p = np.asarray(prob, dtype=np.float64)
    pos, neg = np.flatnonzero(t == 1), np.flatnonzero(t == 0)
    if not pos.size or not neg.size:
        return None
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_boot):
        idx = np.concatenate([pos[rng.integers(0, pos.size, pos.size)],
                              neg[rng.integers(0, neg.size, neg.size)]])  # fmt: skip
        values.append(choose_threshold(t[idx], p[idx], method=method, target=target))
    low, high = np.quantile(np.asarray(values), [(1 - level) / 2, (1 + level) / 2])
    chosen = choose_threshold(t, p, method=method, target=target)
    below, above = p[p < chosen], p[p > chosen]
    low = min(float(low), float(below.max()) if below.size else chosen)
    high = max(float(high), float(above.min()) if above.size else chosen)
    return {
        "low": float(low),
        "high": float(high),
        "level": level,
        "n_boot": int(n_boot),
        "n_pos": int(pos.size),
        "n_neg": int(neg.size),
        "method": f"bootstrap of the validation patients ({method})",
    }


def prob_interval(clip_probs, n_boot: int = N_BOOT, seed: int = 0, level: float = 0.95):
    """A bootstrap interval of a video's P(malignant) (the mean of its clips); None for one clip."""
    p = np.asarray(clip_probs, dtype=np.float64)
    if p.size < 2:
        return None
    rng = np.random.default_rng(seed)
    means = p[rng.integers(0, p.size, (n_boot, p.size))].mean(axis=1)
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return {"low": float(low), "high": float(high), "level": level,
            "method": f"bootstrap of the {p.size} clips"}  # fmt: skip


def decision_margin(prob: float, threshold: float | None, band: dict | None = None) -> dict | None:
    """How far P(malignant) is from the threshold, in words a clinician reads.

    Args:
        prob: P(malignant).
        threshold: the decision threshold (None: no decision, no margin).
        band: :func:`threshold_band` of the run (from metrics.json ``threshold.band``); without
            one the words say only above/below.

    Returns:
        dict difference (prob - threshold), near (bool or None without a band), band, words:
        e.g. "near the threshold (0.141 vs 0.168; another validation set would move the
        threshold anywhere in 0.09-0.31): not a clear call".
    """
    if threshold is None:
        return None
    diff = float(prob) - float(threshold)
    side = "above" if diff >= 0 else "below"
    numbers = f"{prob:.3f} vs threshold {threshold:.3f}"
    if band is None:
        return {"difference": diff, "near": None, "band": None,
                "words": f"{side} the threshold by {abs(diff):.3f} ({numbers}; no band: the "
                "threshold was not chosen on validation data)"}  # fmt: skip
    low, high = float(band["low"]), float(band["high"])
    near = low <= prob <= high or abs(diff) < 1e-12
    span = f"{low:.3f}-{high:.3f}"
    if near:
        words = (
            f"near the threshold ({numbers}; on other validation samples the threshold moves "
            f"within {span}): not a clear call"
        )
    else:
        words = f"clearly {side} the threshold ({numbers}; outside its band {span})"
    return {"difference": diff, "near": bool(near), "band": {"low": low, "high": high},
            "words": words}  # fmt: skip
