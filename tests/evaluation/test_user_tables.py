"""A user's own readers.csv and predictions.csv: spreadsheet dialects, odd values, odd designs.

Each test feeds `thyrovid readers`, `compare` or `stats` a table the way users write them and
checks the user-visible behaviour: the same numbers as the canonical file, or one clear line
naming the file and row.
"""

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
from thyrovid.readers.inputs import load_readers
from thyrovid.readers.readers import reader_study


def _readers(n_cases: int = 12, seed: int = 0) -> pd.DataFrame:
    """Three readers x two modalities x n cases; ids with leading zeros, probabilities."""
    rng = np.random.default_rng(seed)
    cases = [f"{i:03d}" for i in range(1, n_cases + 1)]
    truth = {c: i % 2 for i, c in enumerate(cases)}
    rows = []
    for reader, group in (("R1", "junior"), ("R2", "junior"), ("R3", "senior")):
        for mod in ("unaided", "aided"):
            for c in cases:
                s = round(0.3 * truth[c] + 0.7 * rng.random() + 0.1 * (mod == "aided"), 3)
                rows.append(
                    {"reader": reader, "group": group, "case": c, "modality": mod,
                     "truth": truth[c], "score": s, "decision": int(s >= 0.5)}
                )  # fmt: skip
    return pd.DataFrame(rows)


def _write(tmp_path: Path, df: pd.DataFrame, name: str = "readers.csv", **kw) -> Path:
    path = tmp_path / name
    df.to_csv(path, index=False, **kw)
    return path


def _error(path: Path, **kw) -> str:
    with pytest.raises(UserError) as err:
        load_readers(path, **kw)
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg
    return msg


def _same_study(a: Path, b: Path) -> None:
    ra, rb = reader_study(a), reader_study(b)
    for key in ("table4", "comparisons", "mrmc", "modalities"):
        assert ra[key] == rb[key], key


# ----------------------------------------------------------------------------- readers.csv


@pytest.mark.parametrize(
    "dialect", ["semicolon", "tab", "bom-crlf-semicolon", "decimal-comma", "padded-headers"]
)
def test_spreadsheet_dialects_give_the_same_study(tmp_path, dialect):
    df = _readers()
    base = _write(tmp_path, df, "base.csv")
    path = tmp_path / "user.csv"
    if dialect == "semicolon":
        df.to_csv(path, index=False, sep=";")
    elif dialect == "tab":
        df.to_csv(path, index=False, sep="\t")
    elif dialect == "bom-crlf-semicolon":
        text = df.to_csv(index=False, sep=";").replace("\n", "\r\n")
        path.write_bytes(text.encode("utf-8-sig"))
    elif dialect == "decimal-comma":  # Excel in a comma-decimal locale
        df.assign(score=df["score"].map(lambda v: str(v).replace(".", ","))).to_csv(
            path, index=False, sep=";"
        )
    else:
        df.rename(columns=lambda c: f" {c} ").to_csv(path, index=False)
    _same_study(base, path)


def test_headers_in_any_case_and_common_aliases(tmp_path):
    df = _readers()
    base = _write(tmp_path, df, "base.csv")
    renamed = df.rename(
        columns={"reader": "Reader", "case": "Case_ID", "truth": "Label", "score": "Rating"}
    )
    _same_study(base, _write(tmp_path, renamed.rename(columns={"group": "GROUP"}), "user.csv"))


def test_missing_column_lists_what_is_needed_and_what_was_found(tmp_path):
    msg = _error(_write(tmp_path, _readers().rename(columns={"case": "lesion"})))
    assert "missing column(s) ['case']" in msg
    assert "need ['reader', 'case', 'modality', 'truth', 'score']" in msg
    assert "found columns reader, group, lesion" in msg


def test_truth_and_decision_as_words(tmp_path):
    df = _readers()
    base = _write(tmp_path, df, "base.csv")
    words = df.assign(
        truth=df["truth"].map({1: " Malignant", 0: "BENIGN"}),
        decision=df["decision"].map({1: "yes", 0: "No"}),
    )
    _same_study(base, _write(tmp_path, words, "words.csv"))
    flags = df.assign(truth=df["truth"].map({1: "TRUE", 0: "FALSE"}))
    _same_study(base, _write(tmp_path, flags, "flags.csv"))


def test_bad_or_empty_values_quote_the_cell_and_count_rows(tmp_path):
    df = _readers()
    msg = _error(_write(tmp_path, df.assign(decision=df["decision"].astype(object).where(
        df.index != 4, "maybe"))))  # fmt: skip
    assert "line 6 (reader R1, case 005): decision 'maybe' is not 0 or 1" in msg
    assert "yes/no" in msg and "1 such row(s)" in msg
    msg = _error(_write(tmp_path, df.assign(score=df["score"].where(df.index % 10 != 3))))
    assert "line 5 (reader R1, case 004): score is empty" in msg and "nan" not in msg.lower()
    assert f"{len(df.index[df.index % 10 == 3])} such row(s)" in msg
    msg = _error(_write(tmp_path, df.assign(truth=df["truth"].astype(object).where(
        df.index != 0, ""))))  # fmt: skip
    assert "line 2 (reader R1, case 001): truth is empty" in msg


def test_leading_zeros_are_kept_so_007_and_7_are_different_cases(tmp_path):
    df = _readers()
    df.loc[(df["reader"] == "R2") & (df["case"] == "007"), "case"] = "7"
    msg = _error(_write(tmp_path, df))
    assert "reader R1 has no 'unaided' reading of case 7" in msg
    d, _, _ = load_readers(_write(tmp_path, _readers(), "ok.csv"))
    assert "007" in set(d["case"]) and "7" not in set(d["case"])


def test_unbalanced_design_is_named_and_counted(tmp_path):
    df = _readers()
    drop = (df["reader"] == "R2") & df["case"].isin(["003", "004"]) & (df["modality"] == "aided")
    msg = _error(_write(tmp_path, df[~drop]))
    assert "reader R2 has no 'aided' reading of case 003" in msg
    assert "2 of 72 readings missing (R2 2)" in msg and "fully crossed" in msg


def test_duplicate_reading_names_both_lines(tmp_path):
    df = _readers()
    msg = _error(_write(tmp_path, pd.concat([df, df.iloc[[5]].assign(score=0.9)])))
    assert f"line {len(df) + 2} (reader R1, case 006): a second reading" in msg
    assert "first on line 7" in msg


def test_inconsistent_truth_names_the_lines(tmp_path):
    df = _readers()
    flip = (df["case"] == "005") & (df["reader"] == "R3")
    msg = _error(_write(tmp_path, df.assign(truth=np.where(flip, 1 - df["truth"], df["truth"]))))
    assert "case 005 has two different truths (0 and 1) on lines 6, 18" in msg


def test_reader_in_two_groups_shows_the_groups(tmp_path):
    df = _readers()
    msg = _error(_write(tmp_path, df.assign(group=df["group"].where(df["modality"] == "aided"))))
    assert "reader R1 is in two groups ('', 'junior')" in msg


def test_one_case_of_a_class_is_refused_naming_the_file(tmp_path):
    df = _readers()
    df = df[(df["truth"] == 0) | (df["case"] == "002")]
    msg = _error(_write(tmp_path, df))
    assert "1 malignant and 6 benign case(s)" in msg


def test_three_modalities_say_to_keep_two(tmp_path):
    df = _readers()
    df = pd.concat([df, df[df["modality"] == "aided"].assign(modality="aided-2")])
    msg = _error(_write(tmp_path, df))
    assert "found 3 modality label(s)" in msg and "keep the rows of the two" in msg


def test_not_utf8_is_one_line(tmp_path):
    df = _readers().replace({"reader": {"R1": "Réné"}})
    path = tmp_path / "latin1.csv"
    path.write_bytes(df.to_csv(index=False).encode("latin-1"))
    assert "not UTF-8" in _error(path)


def test_empty_spreadsheet_rows_are_ignored(tmp_path):
    df = _readers()
    base = _write(tmp_path, df, "base.csv")
    path = tmp_path / "trailing.csv"
    path.write_text(df.to_csv(index=False) + ",,,,,,\n,,,,,,\n")
    _same_study(base, path)


def test_constant_scores_print_na_instead_of_crashing(tmp_path, capsys):
    path = _write(tmp_path, _readers().assign(score=3))
    assert main(["readers", str(path)]) == 0
    out = capsys.readouterr().out
    assert "F(1, n/a) = n/a, p = n/a" in out and "F test undefined" in out


def test_single_reader_says_mrmc_was_skipped(tmp_path, capsys):
    df = _readers()
    assert main(["readers", str(_write(tmp_path, df[df["reader"] == "R1"]))]) == 0
    assert "MRMC analysis skipped: MRMC needs at least two readers" in capsys.readouterr().out


def test_ordinal_and_percent_scores_give_the_same_aurocs(tmp_path):
    df = _readers()
    prob = reader_study(_write(tmp_path, df, "prob.csv"))
    pct = reader_study(_write(tmp_path, df.assign(score=df["score"] * 100), "pct.csv"))
    assert [r["auroc"] for r in prob["table4"]] == [r["auroc"] for r in pct["table4"]]
    tirads = df.assign(score=np.clip(np.ceil(df["score"] * 5), 1, 5).astype(int))
    res = reader_study(_write(tmp_path, tirads, "tirads.csv"))
    assert all(0 <= r["auroc"] <= 1 for r in res["table4"])


# ----------------------------------------------------------------------------- predictions


def _run(path: Path, ids, labels, probs, split: str = "test", sep: str = ",") -> Path:
    path.mkdir(parents=True)
    (path / "config.yaml").write_text(yaml.safe_dump({"arch": "resnet50", "dims": 3}))
    pd.DataFrame(
        {"level": "patient", "id": ids, "patient_id": ids, "center": "A", "split": split,
         "label": labels, "prob": probs}
    ).to_csv(path / "predictions.csv", index=False, sep=sep)  # fmt: skip
    (path / "metrics.json").write_text(json.dumps({"threshold": {"value": 0.5}}))
    return path


@pytest.fixture
def pair(tmp_path):
    ids = [f"{i:03d}" for i in range(12)]
    labels = np.arange(12) % 2
    rng = np.random.default_rng(3)
    a = _run(tmp_path / "a", ids, labels, np.round(0.5 * labels + 0.5 * rng.random(12), 4))
    b = _run(tmp_path / "b", ids, labels, np.round(rng.random(12), 4))
    return tmp_path, ids, labels, a, b


def _compare_error(runs, tmp_path) -> str:
    with pytest.raises(UserError) as err:
        compare(runs, out=tmp_path / "out", figures=False)
    assert "\n" not in str(err.value) and not (tmp_path / "out").exists()
    return str(err.value)


def test_compare_reads_word_labels_and_semicolons(pair):
    tmp_path, ids, labels, a, b = pair
    prob = pd.read_csv(a / "predictions.csv", dtype={"id": str})["prob"]
    words = _run(tmp_path / "w", ids, np.where(labels == 1, "malignant", "benign"), prob, sep=";")
    ref = compare([a, b], names=["A", "B"], out=tmp_path / "o1", figures=False)
    got = compare([words, b], names=["A", "B"], out=tmp_path / "o2", figures=False)
    assert got["metrics"] == ref["metrics"] and np.array_equal(got["p"], ref["p"])


def test_compare_refuses_percent_scores_instead_of_thresholding_them(pair):
    tmp_path, ids, labels, a, b = pair
    pct = _run(tmp_path / "pct", ids, labels, np.linspace(5, 95, 12))
    msg = _compare_error([pct, b], tmp_path)
    assert "pct/predictions.csv: line 2 (id 000): prob '5.0' is not a probability in [0, 1]" in msg


def test_compare_bad_label_or_prob_names_file_and_line(pair):
    tmp_path, ids, labels, a, b = pair
    nan = _run(tmp_path / "nan", ids, labels, np.where(np.arange(12) == 4, np.nan, 0.5))
    assert "nan/predictions.csv: line 6 (id 004): prob '' is not" in _compare_error(
        [nan, b], tmp_path
    )
    lab = _run(tmp_path / "lab", ids, np.where(np.arange(12) == 3, np.nan, labels), 0.5)
    assert "line 5 (id 003): label '' is not 0 or 1" in _compare_error([lab, b], tmp_path)


def test_compare_missing_columns_are_listed(pair):
    tmp_path, _, _, a, b = pair
    pd.read_csv(a / "predictions.csv").drop(columns=["split"]).to_csv(
        a / "predictions.csv", index=False
    )
    assert "missing column(s) split; need level, id, split, label, prob" in _compare_error(
        [a, b], tmp_path
    )


def test_readers_model_with_percent_scores_is_refused(tmp_path):
    df = _readers()
    cases = sorted(df["case"].unique())
    truth = df.drop_duplicates("case").set_index("case")["truth"].loc[cases]
    run = _run(tmp_path / "run", cases, truth.to_numpy(), 50.0, split="external")
    with pytest.raises(UserError, match=r"prob '50.0' is not a probability in \[0, 1\]"):
        reader_study(_write(tmp_path, df), model_run=run)
    words = _run(tmp_path / "w", cases, truth.map({1: "malignant", 0: "benign"}), 0.4, "external")
    res = reader_study(_write(tmp_path, df), model_run=words)
    assert res["table4"][0]["row"] == "Model (w)" and res["table4"][0]["auroc"] == 0.5


# ----------------------------------------------------------------------------- thyrovid stats


def _stats(args, capsys) -> tuple[int, str, str]:
    rc = main(["stats", *map(str, args)])
    out = capsys.readouterr()
    return rc, out.out, out.err


def _preds(n: int = 10) -> pd.DataFrame:
    labels = np.arange(n) % 2
    return pd.DataFrame(
        {"label": labels, "prob": np.round(0.4 * labels + np.linspace(0, 0.6, n), 3)}
    )


def test_stats_auc_reads_semicolons_and_float_labels(tmp_path, capsys):
    d = _preds()
    ref = tmp_path / "ref.csv"
    d.to_csv(ref, index=False)
    semi = tmp_path / "semi.csv"
    d.assign(label=d["label"].astype(float)).to_csv(semi, index=False, sep=";", decimal=",")
    outs = [
        json.loads(
            _stats(["auc", "--csv", f, "--truth", "label", "--score", "prob", "--json"], capsys)[1]
        )  # fmt: skip
        for f in (ref, semi)
    ]
    assert outs[0]["scores"] == outs[1]["scores"] and outs[1]["n_pos"] == 5


def test_stats_auc_one_class_and_one_positive_are_clear(tmp_path, capsys):
    one = tmp_path / "one.csv"
    _preds().assign(label=0).to_csv(one, index=False)
    rc, _, err = _stats(["auc", "--csv", one, "--truth", "label", "--score", "prob"], capsys)
    assert rc == 2 and "every row (10) has label == '0': one class only" in err
    assert "set --positive" not in err
    few = tmp_path / "few.csv"
    _preds().iloc[:3].to_csv(few, index=False)
    rc, _, err = _stats(["auc", "--csv", few, "--truth", "label", "--score", "prob"], capsys)
    assert rc == 2 and f"{few}: 1 positive and 2 negative row(s)" in err


def test_stats_metrics_on_one_class_reports_specificity(tmp_path, capsys):
    benign = tmp_path / "benign.csv"
    _preds().assign(label=0).to_csv(benign, index=False)
    args = ["metrics", "--csv", benign, "--truth", "label", "--pred", "prob", "--threshold", "0.5"]
    rc, out, _ = _stats([*args, "--json"], capsys)
    m = json.loads(out)["metrics"]
    assert rc == 0 and m["sensitivity"]["value"] is None and m["specificity"]["value"] == 0.5


def test_stats_column_in_other_case_is_suggested(tmp_path, capsys):
    f = tmp_path / "p.csv"
    _preds().rename(columns={"label": "Label"}).to_csv(f, index=False)
    rc, _, err = _stats(["auc", "--csv", f, "--truth", "label", "--score", "prob"], capsys)
    assert rc == 2 and "did you mean 'Label'?" in err


def test_stats_on_a_whole_predictions_csv_says_rows_are_pooled(tmp_path, capsys):
    d = _preds()
    f = tmp_path / "predictions.csv"
    pd.concat(
        [d.assign(level="patient", split="test"), d.assign(level="clip", split="val")]
    ).to_csv(f, index=False)
    rc, _, err = _stats(["auc", "--csv", f, "--truth", "label", "--score", "prob"], capsys)
    assert rc == 0 and "level: clip, patient; split: test, val); all 20 rows are pooled" in err


def test_capitalised_aided_listed_first_is_still_the_test_modality(tmp_path):
    df = _readers()
    base = reader_study(_write(tmp_path, df, "base.csv"))
    cap = df.assign(modality=df["modality"].str.capitalize()).iloc[::-1]  # "Aided" met first
    res = reader_study(_write(tmp_path, cap, "cap.csv"))
    assert res["modalities"] == {"reference": "Unaided", "test": "Aided"}
    assert [c["auroc_diff"] for c in res["comparisons"]] == pytest.approx(
        [c["auroc_diff"] for c in base["comparisons"]][::-1]
    )
    assert res["group_gains"]["junior"] == pytest.approx(base["group_gains"]["junior"])
    rrrc = res["mrmc"]["jackknife"]["rrrc"]["differences"][0]
    assert rrrc["comparison"] == "Aided - Unaided"
    assert rrrc["estimate"] == pytest.approx(
        base["mrmc"]["jackknife"]["rrrc"]["differences"][0]["estimate"]
    )
