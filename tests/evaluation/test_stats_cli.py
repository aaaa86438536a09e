"""`thyrovid stats auc|metrics` reproduce pROC's aSAH numbers and the seed paper's Table 2.

Expected values: pROC's test suite (see tests/stats/test_stats_roc.py) and the seed paper's Table 2
(3D InceptionResNetV2 column), both listed in shared/reference/README.md.
"""

import json
from pathlib import Path

import pytest

from thyrovid.cli import main

DATA = Path(__file__).parents[1] / "data" / "aSAH.csv"
TOL = 1e-9
ASAH = ["--csv", str(DATA), "--truth", "outcome", "--positive", "Poor"]


def _json(capsys, argv):
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_auc_json_reproduces_proc(capsys):
    rep = _json(capsys, ["stats", "auc", *ASAH, "--score", "wfns", "--score", "ndka",
                         "--score", "s100b", "--json"])  # fmt: skip
    assert (rep["n"], rep["n_pos"], rep["n_neg"]) == (113, 41, 72)
    s = {r["name"]: r for r in rep["scores"]}
    assert s["wfns"]["auc"] == pytest.approx(0.823678861788618, abs=TOL)
    assert s["ndka"]["auc"] == pytest.approx(0.611957994579946, abs=TOL)
    assert s["s100b"]["auc"] == pytest.approx(0.731368563685637, abs=TOL)
    assert s["wfns"]["var"] == pytest.approx(0.00146991470882363, abs=TOL)
    assert s["ndka"]["var"] == pytest.approx(0.0031908105493913, abs=TOL)
    assert s["s100b"]["var"] == pytest.approx(0.00266868245717244, abs=TOL)
    assert s["ndka"]["low"] == pytest.approx(0.501244999271703, abs=TOL)
    assert s["ndka"]["high"] == pytest.approx(0.722670989888189, abs=TOL)
    cov = rep["cov"]  # order wfns, ndka, s100b
    assert cov[0][1] == pytest.approx(-0.000532967856762438, abs=TOL)
    assert cov[1][2] == pytest.approx(-0.000756164938056579, abs=TOL)
    assert cov[2][0] == pytest.approx(0.00119615567376754, abs=TOL)
    tests = {(t["name1"], t["name2"]): t for t in rep["tests"]}
    assert tests[("wfns", "ndka")]["z"] == pytest.approx(2.79777591868904, abs=TOL)
    assert tests[("wfns", "ndka")]["p"] == pytest.approx(0.00514557970691098, abs=TOL)
    assert tests[("ndka", "s100b")]["z"] == pytest.approx(-1.39077002573558, abs=TOL)
    assert tests[("ndka", "s100b")]["p"] == pytest.approx(0.164295175223054, abs=TOL)
    w = tests[("wfns", "s100b")]
    assert w["z"] == pytest.approx(2.20898359144091, abs=TOL)
    assert w["p"] == pytest.approx(0.0271757822291882, abs=TOL)
    assert w["ci_low"] == pytest.approx(0.0104061769564846, abs=TOL)
    assert w["ci_high"] == pytest.approx(0.174214419249478, abs=TOL)


def test_auc_one_sided_json(capsys):
    rep = _json(capsys, ["stats", "auc", *ASAH, "--score", "wfns", "--score", "s100b",
                         "--alternative", "greater", "--json"])  # fmt: skip
    assert rep["tests"][0]["p"] == pytest.approx(0.0135878911145941, abs=TOL)


def test_auc_text_table(capsys):
    assert main(["stats", "auc", *ASAH, "--score", "wfns", "--score", "s100b"]) == 0
    out = capsys.readouterr().out
    assert "113 cases, 41 positive" in out
    assert "0.824" in out and "0.749 - 0.899" in out  # wfns AUROC and DeLong CI
    assert "2.209" in out and "0.027" in out  # the paired test


def test_identical_score_columns_give_z0_p1(tmp_path, capsys):
    f = tmp_path / "twice.csv"
    f.write_text("y,a,b\n1,0.9,0.9\n0,0.2,0.2\n1,0.4,0.4\n0,0.5,0.5\n1,0.5,0.5\n0,0.1,0.1\n")
    rep = _json(capsys, ["stats", "auc", "--csv", str(f), "--truth", "y", "--score", "a",
                         "--score", "b", "--json"])  # fmt: skip
    assert rep["tests"][0]["z"] == 0.0 and rep["tests"][0]["p"] == 1.0


def test_zero_variance_difference_gives_inf_z_as_valid_json(tmp_path, capsys):
    f = tmp_path / "perfect.csv"
    f.write_text("y,a,b\n0,0.1,0.5\n0,0.2,0.5\n0,0.3,0.5\n1,0.7,0.5\n1,0.8,0.5\n1,0.9,0.5\n")
    rep = _json(capsys, ["stats", "auc", "--csv", str(f), "--truth", "y", "--score", "a",
                         "--score", "b", "--json"])  # fmt: skip
    assert rep["tests"][0]["z"] == "inf" and rep["tests"][0]["p"] == 0.0


def test_nan_score_refused_with_line(tmp_path, capsys):
    lines = DATA.read_text().splitlines()
    cells = lines[6].split(",")
    cells[6] = "NA"  # ndka on line 7 (line 1 is the header)
    lines[6] = ",".join(cells)
    f = tmp_path / "nan.csv"
    f.write_text("\n".join(lines) + "\n")
    assert main(["stats", "auc", "--csv", str(f), "--truth", "outcome", "--positive", "Poor",
                 "--score", "ndka"]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "line 7" in err and "ndka" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_single_class_is_a_clear_error(tmp_path, capsys):
    f = tmp_path / "one.csv"
    f.write_text("y,s\n1,0.2\n1,0.3\n")
    assert main(["stats", "auc", "--csv", str(f), "--truth", "y", "--score", "s"]) == 2
    assert "need both classes" in capsys.readouterr().err


def test_missing_column_names_the_columns(capsys):
    assert main(["stats", "auc", *ASAH, "--score", "nope"]) == 2
    err = capsys.readouterr().err
    assert "'nope'" in err and "wfns" in err


def test_metrics_counts_wald_reproduce_table2(capsys):
    rep = _json(capsys, ["stats", "metrics", "--tp", "101", "--fp", "7", "--tn", "29",
                         "--fn", "15", "--ci", "wald", "--json"])  # fmt: skip
    m = rep["metrics"]
    got = {k: tuple(round(m[k][x], 3) for x in ("value", "low", "high")) for k in m if k != "f1"}
    assert got["accuracy"] == (0.855, 0.799, 0.911)
    assert got["sensitivity"] == (0.871, 0.810, 0.932)
    assert got["specificity"] == (0.806, 0.676, 0.935)
    assert got["ppv"] == (0.935, 0.889, 0.982)
    assert got["npv"] == (0.659, 0.519, 0.799)
    assert round(m["f1"]["value"], 3) == 0.902 and round(m["kappa"]["value"], 3) == 0.628


def test_metrics_text_table_names_the_ci(capsys):
    assert main(["stats", "metrics", "--tp", "101", "--fp", "7", "--tn", "29", "--fn", "15",
                 "--ci", "wald"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "Wald" in out and "0.855  0.799 - 0.911" in out


def test_metrics_from_csv_with_threshold(tmp_path, capsys):
    # aSAH: wfns >= 4 predicts Poor
    rep = _json(capsys, ["stats", "metrics", *ASAH, "--pred", "wfns", "--threshold", "4",
                         "--json"])  # fmt: skip
    lines = DATA.read_text().splitlines()[1:]
    rows = [(r.split(",")[1] == "Poor", float(r.split(",")[4]) >= 4) for r in lines]
    tp = sum(t and p for t, p in rows)
    fp = sum(p and not t for t, p in rows)
    assert (rep["tp"], rep["fp"], rep["tp"] + rep["fn"], rep["fp"] + rep["tn"]) == (tp, fp, 41, 72)
    assert rep["metrics"]["sensitivity"]["value"] == pytest.approx(tp / 41)


def test_metrics_needs_counts_or_csv(capsys):
    assert main(["stats", "metrics", "--tp", "3"]) == 2
    assert "--tn" in capsys.readouterr().err


def test_metrics_from_csv_label_columns(tmp_path, capsys):
    f = tmp_path / "dec.csv"
    f.write_text(
        "label,ai\nmalignant,malignant\nmalignant,benign\nbenign,benign\nbenign,malignant\n"
        "benign,benign\nmalignant,malignant\n"
    )
    rep = _json(capsys, ["stats", "metrics", "--csv", str(f), "--truth", "label", "--positive",
                         "malignant", "--pred", "ai", "--json"])  # fmt: skip
    assert (rep["tp"], rep["fp"], rep["tn"], rep["fn"]) == (2, 1, 2, 1)
