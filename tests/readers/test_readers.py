"""`thyrovid readers`: Table 4 layout, bad-input errors, simulated readers, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from thyrovid.cli import main
from thyrovid.errors import UserError
from thyrovid.readers.inputs import load_readers
from thyrovid.readers.readers import group_gains, reader_study
from thyrovid.stats.roc import auc
from thyrovid.synth.readers import simulate_readers

VANDYKE = Path(__file__).parents[1] / "data" / "vandyke.csv"


def _truth_table(n: int = 160, seed: int = 1) -> pd.DataFrame:
    """A truth.csv-like table: one nodule per patient, label drawn from its true logit."""
    rng = np.random.default_rng(seed)
    logit = rng.normal(-0.3, 2.0, n)
    label = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    ids = [f"P{i:03d}" for i in range(n)]
    return pd.DataFrame(
        {
            "patient_id": ids,
            "nodule_id": ids,
            "label": label,
            "true_logit": logit,
            "split": "external",
        }
    )


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """Simulated readers aided by a fake model, and that model's run folder."""
    root = tmp_path_factory.mktemp("study")
    truth = _truth_table()
    rng = np.random.default_rng(7)
    prob = 1 / (1 + np.exp(-(truth["true_logit"] + rng.normal(0, 0.7, len(truth)))))
    run = root / "run"
    run.mkdir()
    pred = pd.DataFrame(
        {
            "level": "patient",
            "id": truth["patient_id"],
            "patient_id": truth["patient_id"],
            "center": "X",
            "split": "external",
            "label": truth["label"],
            "prob": prob.round(4),
        }
    )
    clip_rows = pred.assign(level="clip", id=pred["id"] + "_c0", prob=0.5)  # must be ignored
    pd.concat([pred, clip_rows]).to_csv(run / "predictions.csv", index=False)
    (run / "metrics.json").write_text(
        json.dumps(  # the layout `thyrovid evaluate` writes
            {
                "threshold": {"value": 0.4, "source": "val", "method": "youden"},
                "splits": {"external": {"patient": {"threshold": 0.4, "n": 160}}},
            }
        )
    )
    readers = simulate_readers(truth, dict(zip(truth["patient_id"], prob)), seed=3)
    csv = root / "readers.csv"
    readers.to_csv(csv, index=False)
    return root, csv, run, readers


def test_table4_layout_with_model_row(study):
    root, csv, run, _ = study
    res = reader_study(csv, model_run=run, out_dir=root / "out")
    rows = [r["row"] for r in res["table4"]]
    assert rows == [
        "Model (run)",
        "JR1 unaided",
        "JR1 aided",
        "JR2 unaided",
        "JR2 aided",
        "SR1 unaided",
        "SR1 aided",
        "SR2 unaided",
        "SR2 aided",
    ]
    model = res["table4"][0]
    assert res["model"]["threshold"] == 0.4
    assert model["n"] == 160 and model["auroc_low"] < model["auroc"] < model["auroc_high"]
    for r in res["table4"]:
        for m in ("accuracy", "sensitivity", "specificity", "ppv", "npv"):
            assert r[f"{m}_low"] <= r[m] <= r[f"{m}_high"]
        assert -1 <= r["kappa"] <= 1 and 0 <= r["f1"] <= 1
    md = (root / "out" / "table4.md").read_text()
    assert md.splitlines()[0].startswith("|  | AUROC (95% CI) | Accuracy (95% CI)")
    assert "| JR1 aided | 0." in md and "| Model (run) | 0." in md
    table = pd.read_csv(root / "out" / "table4.csv")
    assert list(table["row"]) == rows
    png = (root / "out" / "fig7_readers.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    saved = json.loads((root / "out" / "mrmc.json").read_text())
    rrrc = saved["mrmc"]["jackknife"]["rrrc"]
    assert rrrc["differences"][0]["comparison"] == "aided - unaided"
    assert set(saved["mrmc"]) == {"jackknife", "delong"}
    assert saved["mrmc"]["delong"]["frrc"]["ddf"] == "inf"  # JSON has no infinity


def test_paired_comparisons_and_group_gains(study):
    _, csv, _, readers = study
    res = reader_study(csv)
    by = {c["reader"]: c for c in res["comparisons"]}
    jr1 = readers[readers["reader"] == "JR1"]
    un, ai = (jr1[jr1["modality"] == m] for m in ("unaided", "aided"))
    acc_un = float((un["decision"] == un["truth"]).mean())
    acc_ai = float((ai["decision"] == ai["truth"]).mean())
    assert by["JR1"]["accuracy_gain"] == pytest.approx(acc_ai - acc_un)
    assert by["JR1"]["auroc_diff"] == pytest.approx(
        auc(ai["truth"], ai["score"]) - auc(un["truth"], un["score"])
    )
    assert 0 <= by["JR1"]["mcnemar_p"] <= 1 and 0 <= by["JR1"]["delong_p"] <= 1
    assert set(res["group_gains"]) == {"junior", "senior"}
    assert res["mrmc"]["jackknife"]["modality_means"]["aided"] == pytest.approx(
        np.mean([c["auroc_aided"] for c in res["comparisons"]])
    )


def test_group_gain_is_the_papers_mean_relative_gain():
    """Paper, Table 4 accuracies: juniors +16.87% and seniors +11.12% (Discussion)."""
    acc = {
        "JR1": (0.590, 0.701),
        "JR2": (0.549, 0.631),
        "SR1": (0.631, 0.717),
        "SR2": (0.709, 0.770),
    }
    comps = [
        {
            "reader": r,
            "group": "junior" if r.startswith("J") else "senior",
            "accuracy_gain": b - a,
            "relative_gain": (b - a) / a,
        }
        for r, (a, b) in acc.items()
    ]
    gains = group_gains(comps)
    assert round(100 * gains["junior"]["mean_relative_gain"], 1) == 16.9
    assert round(100 * gains["senior"]["mean_relative_gain"], 2) == 11.12


def test_vandyke_through_readers_csv(tmp_path):
    """The readers.csv route reproduces the published OR analysis (Iowa OR-DBM MRMC 2.51)."""
    d = pd.read_csv(VANDYKE).rename(columns={"rating": "score"})
    d.to_csv(tmp_path / "vd.csv", index=False)
    res = reader_study(tmp_path / "vd.csv")
    assert res["modalities"] == {"reference": "1", "test": "2"}
    assert res["decision_source"] is None and res["table4"][0]["accuracy"] is None
    rrrc = res["mrmc"]["jackknife"]["rrrc"]
    diff = rrrc["differences"][0]
    assert diff["comparison"] == "2 - 1"
    assert round(diff["estimate"], 5) == 0.04380
    assert (round(diff["ci_low"], 5), round(diff["ci_high"], 5)) == (-0.00036, 0.08796)
    assert (round(rrrc["f"], 2), round(rrrc["ddf"], 2), round(rrrc["p"], 4)) == (
        4.46,
        15.26,
        0.0517,
    )
    assert round(res["table4"][0]["auroc"], 8) == 0.91964573  # reader 1, modality 1


def _write(tmp_path, df) -> Path:
    path = tmp_path / "readers.csv"
    df.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda d: d.drop(index=d.index[(d["reader"] == "JR2") & (d["case"] == "P005")][1:]),
            "reader JR2 has no 'aided' reading of case P005",
        ),
        (lambda d: d[d["modality"] == "unaided"], "needs exactly two"),
        (
            lambda d: d.assign(
                truth=np.where(
                    (d["case"] == "P004") & (d["reader"] == "SR1"), 1 - d["truth"], d["truth"]
                )
            ),
            "case P004 has two different truths",
        ),
        (
            lambda d: d.assign(score=d["score"].astype(object).where(d.index != 7, "high")),
            "line 9 (reader JR1, case P007): score 'high' is not a number",
        ),
        (lambda d: d.drop(columns="truth"), "missing column(s) ['truth']"),
    ],
    ids=["missing-case", "one-modality", "two-truths", "non-numeric", "no-truth-column"],
)
def test_bad_input_is_one_clear_line(tmp_path, mutate, message):
    truth = _truth_table(n=20)
    readers = simulate_readers(truth, seed=0)
    with pytest.raises(UserError) as err:
        load_readers(_write(tmp_path, mutate(readers)))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_cli_prints_error_and_exits_2(tmp_path, capsys):
    readers = simulate_readers(_truth_table(n=20), seed=0)
    path = _write(tmp_path, readers[readers["modality"] == "aided"])
    assert main(["readers", str(path)]) == 2
    assert "needs exactly two" in capsys.readouterr().err


def test_cli_json(study, capsys):
    _, csv, run, _ = study
    assert main(["readers", str(csv), "--model", str(run), "--json", "--threshold", "0.6"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["decision_source"] == "score >= 0.6"
    assert out["table4"][0]["row"] == "Model (run)"


def test_model_without_threshold_says_so(study, tmp_path):
    """No made-up 0.5: a model run whose metrics.json has no threshold is one clear line."""
    _, csv, run, _ = study
    bare = tmp_path / "run"
    bare.mkdir()
    (bare / "predictions.csv").write_bytes((run / "predictions.csv").read_bytes())
    with pytest.raises(UserError) as err:
        reader_study(csv, model_run=bare)
    assert "no threshold" in str(err.value) and "metrics.json" in str(err.value)
    assert "\n" not in str(err.value)


def test_simulate_readers_deterministic_and_helpful():
    truth = _truth_table(n=245, seed=11)
    a = simulate_readers(truth, seed=5)
    pd.testing.assert_frame_equal(a, simulate_readers(truth, seed=5))
    assert not a["score"].equals(simulate_readers(truth, seed=6)["score"])
    assert list(a.columns) == ["reader", "group", "case", "modality", "truth", "score", "decision"]
    assert len(a) == 4 * 2 * 245 and set(a["modality"]) == {"unaided", "aided"}

    def mean_auc(rows):
        return np.mean([auc(g["truth"], g["score"]) for _, g in rows.groupby("reader")])

    def mean_acc(rows):
        return float((rows["decision"] == rows["truth"]).mean())

    un, ai = a[a["modality"] == "unaided"], a[a["modality"] == "aided"]
    assert mean_auc(ai) > mean_auc(un) + 0.03
    assert mean_acc(ai) > mean_acc(un)
    gain = {
        g: mean_acc(ai[ai["group"] == g]) - mean_acc(un[un["group"] == g])
        for g in ("junior", "senior")
    }
    assert gain["junior"] > gain["senior"]


def test_simulate_readers_takes_patient_truth_from_its_nodules():
    truth = pd.DataFrame(
        {
            "patient_id": ["A", "A", "B"],
            "label": [0, 1, 0],
            "true_logit": [-2.0, 1.0, -1.0],
            "split": ["external", "external", "external"],
        }
    )
    d = simulate_readers(truth, n_junior=1, n_senior=0, seed=0)
    assert dict(zip(d["case"], d["truth"])) == {"A": 1, "B": 0}
    with pytest.raises(UserError, match="no rows in split"):
        simulate_readers(truth, split="test")


def test_model_predictions_must_cover_and_agree_with_the_cases(study, tmp_path):
    _, csv, run, _ = study
    pred = pd.read_csv(run / "predictions.csv", dtype={"id": str})
    (tmp_path / "short").mkdir()
    pred[pred["id"] != "P010"].to_csv(tmp_path / "short" / "predictions.csv", index=False)
    with pytest.raises(UserError, match="no patient-level 'external' prediction for case P010"):
        reader_study(csv, model_run=tmp_path / "short")
    (tmp_path / "flip").mkdir()
    pred.assign(label=np.where(pred["id"] == "P012", 1 - pred["label"], pred["label"])).to_csv(
        tmp_path / "flip" / "predictions.csv", index=False
    )
    with pytest.raises(UserError, match="case P012 has label"):
        reader_study(csv, model_run=tmp_path / "flip")


def _small_study(tmp_path) -> Path:
    """Three readers, eight cases, nearly perfect: kappa's and the mean AUROC's CIs pass 1."""
    truth = [0, 0, 0, 0, 1, 1, 1, 1]
    rows = []
    for k, reader in enumerate(("R1", "R2", "R3")):
        for modality, shift in (("unaided", 0), ("aided", 1)):
            for i, t in enumerate(truth):
                score = 2 + 2 * t + ((i + k + shift) % 3 == 0) * (1 - 2 * t)  # an odd miss
                rows.append((reader, f"C{i}", modality, t, score, int(score >= 3)))
    csv = tmp_path / "readers.csv"
    pd.DataFrame(rows, columns=["reader", "case", "modality", "truth", "score", "decision"]).to_csv(
        csv, index=False
    )
    return csv


def test_small_study_clips_kappa_and_mean_auroc_cis_and_says_so(tmp_path, capsys):
    assert main(["readers", str(_small_study(tmp_path)), "--out", str(tmp_path / "o")]) == 0
    err = capsys.readouterr().err
    assert "warning: reader study: AUROC on 4 malignant and 4 benign cases" in err
    assert "kappa high" in err and "-> 1 (range [-1, 1])" in err
    assert "mean-reader AUROC" in err and "auroc high" in err
    table = pd.read_csv(tmp_path / "o" / "table4.csv")
    assert table["kappa_high"].max() <= 1.0 and table["auroc_high"].max() <= 1.0
    saved = json.loads((tmp_path / "o" / "mrmc.json").read_text())
    assert {w["code"] for w in saved["warnings"]} >= {"few_for_auroc", "ci_clipped"}
    for m in saved["mrmc"].values():
        assert all(s["ci_high"] <= 1.0 for s in m["rrrc"]["single"])


def test_large_study_has_no_clipping_or_count_warning(study):
    _, csv, run, _ = study
    result = reader_study(csv, run)
    assert not [w for w in result["warnings"] if w["code"] == "few_for_auroc"]
