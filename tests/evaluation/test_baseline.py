"""The hand-made reference: five clip features and a logistic regression, scored per patient."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from thyrovid.evaluation.baseline import FEATURES, clip_features, handmade_baseline


def _speckle(rng, frames=8, size=48):
    return rng.gamma(8.0, 10.0, (frames, size, size)).clip(0, 200).astype(np.uint8)


def test_focus_strength_sees_a_small_bright_focus_not_a_large_bright_region():
    rng = np.random.default_rng(0)
    plain, focus, patch = _speckle(rng), _speckle(rng), _speckle(rng)
    focus[3, 23:26, 23:26] = 255
    patch[:, 14:34, 14:34] = 255
    f_plain, f_focus, f_patch = (clip_features(c, 3, (30, 30)) for c in (plain, focus, patch))
    assert f_focus[0] > f_plain[0] + 1 and f_focus[1] > f_plain[1] + 1  # clip max and key frame
    assert f_focus[2] >= 1  # persists in the frame that holds it
    assert f_patch[0] < f_focus[0]  # a bright region wider than 5 px is not a focus
    assert f_patch[3] > f_plain[3] + 50  # ... it is bright nodule echo
    assert clip_features(plain, 0, (40, 20))[4] == pytest.approx(np.log(2.0))


def _work(tmp_path, rng, signal: bool):
    (tmp_path / "clips").mkdir()
    rows = []
    plan = [("train", 16), ("val", 6), ("external", 12)]
    n = 0
    for split, patients in plan:
        for i in range(patients):
            label = i % 2
            clip = _speckle(rng)
            if signal and label:
                clip[2:5, 22:25, 22:25] = 255  # a focus in three frames of every malignant clip
            n += 1
            name = f"clips/P{n}.npy"
            np.save(tmp_path / name, clip)
            rows.append(
                dict(clip_id=f"P{n}_c", patient_id=f"P{n}", nodule_id=f"P{n}_n1",
                     video_id=f"P{n}_v1", center="c", label=label, split=split, key_frame=13,
                     first_frame=10, clip_path=name, x0=0, y0=0, x1=30, y1=30)
            )  # fmt: skip
    pd.DataFrame(rows).to_csv(tmp_path / "clips.csv", index=False)
    return tmp_path


def test_baseline_finds_a_visible_sign_and_scores_patients(tmp_path):
    out = handmade_baseline(_work(tmp_path, np.random.default_rng(1), signal=True))
    assert out["features"] == list(FEATURES)
    assert out["patient_auroc"]["external"] == 1.0
    assert "test" not in out["patient_auroc"]  # no test patients: nothing reported


def test_baseline_is_near_chance_without_a_sign(tmp_path):
    out = handmade_baseline(_work(tmp_path, np.random.default_rng(2), signal=False))
    assert out["patient_auroc"]["external"] < 0.85


def test_baseline_needs_both_classes_to_fit(tmp_path):
    work = _work(tmp_path, np.random.default_rng(3), signal=True)
    clips = pd.read_csv(work / "clips.csv")
    clips.loc[clips["split"].isin(["train", "val"]), "label"] = 0
    clips.to_csv(work / "clips.csv", index=False)
    with pytest.raises(ValueError, match="both classes"):
        handmade_baseline(work)
