"""`thyrovid compare` on hand-made predictions where the answer is known."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from thyrovid.cli import main
from thyrovid.errors import UserError
from thyrovid.evaluation.compare import compare
from thyrovid.report.tables import format_ci
from thyrovid.stats.auc_compare import delong_test
from thyrovid.stats.proportions import binary_metrics, confusion
from thyrovid.stats.roc import auc_ci


def write_run(path: Path, ids, labels, probs, threshold: float, arch="resnet50", dims=3) -> Path:
    """A run folder holding only what compare reads: config.yaml, predictions.csv, metrics.json."""
    path.mkdir(parents=True)
    (path / "config.yaml").write_text(yaml.safe_dump({"arch": arch, "dims": dims}))
    rows = pd.DataFrame(
        {
            "level": "patient",
            "id": ids,
            "patient_id": ids,
            "center": "A",
            "split": "test",
            "label": labels,
            "prob": probs,
        }
    )
    # a val row and a nodule row that compare must ignore
    extra = rows.iloc[:1].assign(split="val", id="V0", patient_id="V0", prob=0.99)
    rows = pd.concat([rows, extra, rows.iloc[:1].assign(level="nodule", prob=0.0)])
    rows.to_csv(path / "predictions.csv", index=False)
    (path / "metrics.json").write_text(json.dumps({"threshold": {"value": threshold}}))
    return path


@pytest.fixture
def runs(tmp_path):
    rng = np.random.default_rng(7)
    n = 80
    labels = (rng.random(n) < 0.6).astype(int)
    ids = [f"P{i:03d}" for i in range(n)]
    signal = labels + rng.normal(0, 1, n)
    probs = {
        "a": 1 / (1 + np.exp(-(2.0 * signal - 1))),
        "b": 1 / (1 + np.exp(-(0.8 * signal + rng.normal(0, 1, n)))),
        "c": rng.random(n),
    }
    specs = {
        "a": ("inception_resnet_v2", 3, 0.45),
        "b": ("inception_resnet_v2", 2, 0.5),
        "c": ("resnet50", 3, 0.6),
    }
    paths = [
        write_run(tmp_path / k, ids, labels, probs[k], thr, arch=arch, dims=dims)
        for k, (arch, dims, thr) in specs.items()
    ]
    return paths, labels, probs, specs


def test_table_and_delong_matrix_match_thyrovid_stats(runs, tmp_path):
    paths, labels, probs, specs = runs
    out = tmp_path / "cmp"
    res = compare(paths, level="patient", split="test", out=out, ci="wald", figures=False)
    names = ["3D InceptionResNetV2", "2D InceptionResNetV2", "3D ResNet50"]
    assert res["names"] == names
    numbers = pd.read_csv(out / "table.csv", index_col=0)
    assert list(numbers.columns[:3]) == [f"{names[0]}: {p}" for p in ("value", "low", "high")]
    assert all(dtype.kind == "f" for dtype in numbers.dtypes)  # numbers only, no "0.9 (..)"
    table = pd.read_csv(out / "table_display.csv", index_col=0)
    assert list(table.columns) == names
    assert list(table.index)[:2] == ["AUROC (95% CI)", "Accuracy (95% CI)"]
    for name, key in zip(names, "abc"):
        a, lo, hi = auc_ci(labels, probs[key])
        assert table.loc["AUROC (95% CI)", name] == f"{a:.3f} ({lo:.3f}, {hi:.3f})"
        assert numbers.loc["auroc", f"{name}: value"] == pytest.approx(a, rel=1e-5)
        assert numbers.loc["auroc", f"{name}: high"] == pytest.approx(hi, rel=1e-5)
        counts = confusion(labels, probs[key] >= specs[key][2])  # the run's own threshold
        ref = binary_metrics(*counts, ci="wald")
        assert table.loc["Sensitivity (95% CI)", name] == format_ci(ref["sensitivity"])
        assert table.loc["NPV (95% CI)", name] == format_ci(ref["npv"])
        assert table.loc["Kappa", name] == f"{ref['kappa']['value']:.3f}"
    md = (out / "table.md").read_text()
    assert md.splitlines()[0].startswith("| Metric | 3D InceptionResNetV2 |")

    p = pd.read_csv(out / "delong_p.csv", index_col=0)
    diff = pd.read_csv(out / "delong_diff.csv", index_col=0)
    for i, ki in enumerate("abc"):
        for j, kj in enumerate("abc"):
            if i == j:
                continue
            ref = delong_test(labels, probs[ki], probs[kj])
            assert p.iloc[i, j] == pytest.approx(ref["p"], rel=1e-12, abs=1e-300)
            assert diff.iloc[i, j] == pytest.approx(ref["diff"], rel=1e-12)
    assert p.iloc[0, 2] < 0.05  # a real model against random scores
    for stem in ("table.md", "metrics_long.csv", "delong.csv", "delong.md"):
        assert (out / stem).stat().st_size > 0
    assert not (out / "roc.png").exists()  # figures=False (figures: test_evaluate's phantom)


def test_compare_equals_thyrovid_stats_auc_cli_exactly(runs, tmp_path, capsys):
    paths, labels, probs, _ = runs
    csv = tmp_path / "scores.csv"
    pd.DataFrame({"label": labels, **probs}).to_csv(csv, index=False, float_format="%.17g")
    args = ["stats", "auc", "--csv", str(csv), "--truth", "label", "--json"]
    assert main([*args, "--score", "a", "--score", "b", "--score", "c"]) == 0
    cli = json.loads(capsys.readouterr().out)
    res = compare(paths, names=["a", "b", "c"], out=tmp_path / "o", figures=False)
    for row in cli["scores"]:
        got = res["metrics"][row["name"]]["auroc"]
        assert (got["value"], got["low"], got["high"]) == (row["auc"], row["low"], row["high"])
    pairs = res["delong"].set_index(["name1", "name2"])
    assert len(pairs) == len(cli["tests"]) == 3
    for test in cli["tests"]:
        mine = pairs.loc[(test["name1"], test["name2"])]
        for key in ("auc1", "auc2", "diff", "se", "z", "p", "ci_low", "ci_high"):
            assert mine[key] == test[key], key
    saved = pd.read_csv(tmp_path / "o" / "delong.csv")
    assert saved["p"].tolist() == [t["p"] for t in cli["tests"]]  # full precision on disk


def test_known_answer_tiny_case(tmp_path):
    # 2 benign, 2 malignant. Run x ranks perfectly (AUROC 1); run y has one swapped pair (0.75).
    ids, labels = ["p1", "p2", "p3", "p4"], [0, 0, 1, 1]
    x = write_run(tmp_path / "x", ids, labels, [0.1, 0.2, 0.8, 0.9], 0.5)
    y = write_run(tmp_path / "y", ids, labels, [0.1, 0.7, 0.6, 0.9], 0.5)
    res = compare([x, y], names=["X", "Y"], out=tmp_path / "o", figures=False)
    assert res["metrics"]["X"]["auroc"]["value"] == 1.0
    assert res["metrics"]["Y"]["auroc"]["value"] == 0.75
    assert res["diff"][0, 1] == pytest.approx(0.25)
    assert (res["metrics"]["Y"]["tp"], res["metrics"]["Y"]["fp"]) == (2, 1)
    assert res["table"].loc["Accuracy (95% CI)", "X"].startswith("1.000")


def test_different_patients_are_named_and_refused(runs, tmp_path):
    paths, labels, probs, _ = runs
    ids = [f"P{i:03d}" for i in range(len(labels))]
    ids[3] = "Q999"
    other = write_run(tmp_path / "d", ids, labels, probs["a"], 0.5)
    with pytest.raises(
        UserError, match=r"only in '3D InceptionResNetV2': P003.*only in '3D ResNet50 \(d\)': Q999"
    ):
        compare([paths[0], other, paths[2]], out=tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_cli_compare_writes_files_and_missing_run_is_one_line(runs, tmp_path, capsys):
    paths, *_ = runs
    out = tmp_path / "cli"
    args = ["compare", *map(str, paths), "--split", "test", "--names", "A", "B", "C"]
    assert main([*args, "--out", str(out), "--no-figures"]) == 0
    printed = capsys.readouterr().out
    assert printed.splitlines()[0] == "| Metric | A | B | C |"
    assert "| AUROC (95% CI) |" in printed and f"wrote 12 files to {out}" in printed
    assert (out / "table.md").is_file() and not (out / "roc.png").exists()
    assert main(["compare", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "predictions.csv: not found" in err


def test_compare_warns_of_a_near_constant_model_and_not_of_a_spread_one(runs, tmp_path, capsys):
    paths, labels, probs, _ = runs
    ids = [f"P{i:03d}" for i in range(len(labels))]
    flat = 0.86 + 0.005 * probs["a"]  # the demo's kept model: about 0.86-0.87 to every case
    const = write_run(tmp_path / "flat", ids, labels, flat, 0.863)
    out = tmp_path / "cmp_flat"
    assert main(["compare", str(paths[0]), str(const), "--names", "good", "flat",
                 "--out", str(out), "--no-figures"]) == 0  # fmt: skip
    err = capsys.readouterr().err
    assert "warning: flat: test/patient: the model gives nearly the same P(malignant)" in err
    assert "good: test/patient: the model gives nearly" not in err
    saved = json.loads((out / "warnings.json").read_text())
    assert {(w["code"], w["where"].split(":")[0]) for w in saved} >= {("narrow_spread", "flat")}
    assert not [w for w in saved if w["where"].startswith("good") and w["code"] == "narrow_spread"]
