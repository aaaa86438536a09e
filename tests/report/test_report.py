"""`thyrovid report`: one self-contained HTML file from the files the other stages write.

The inputs are built in the documented layouts (the run folder of `thyrovid.training.runfolder`; compare
and readers folders written by the real stages from fake predictions), laid out like `thyrovid
demo`'s folder.
A PatientName-like value is planted in every input that may carry extra columns; it must never
reach the report.
"""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from thyrovid.errors import UserError
from thyrovid.report.report import build_report

PLANTED = "DOE^JANE"
SPLITS = {"train": 16, "val": 8, "test": 12, "external": 10}  # patients per split


def _patients(rng) -> pd.DataFrame:
    rows = []
    for split, n in SPLITS.items():
        for i in range(n):
            rows.append({"patient_id": f"{split[:2].upper()}{i:03d}", "split": split,
                         "center": "B" if split == "external" else "A", "label": i % 2})  # fmt: skip
    df = pd.DataFrame(rows)
    df["p_malignant"] = np.clip(
        0.5 + (df["label"] - 0.5) * 0.4 + rng.normal(0, 0.3, len(df)), 0.01, 0.99
    )
    return df


def _run(folder, patients, dims, rng):
    """A run folder as `thyrovid train` + `thyrovid evaluate` write it."""
    from thyrovid.config import TrainConfig
    from thyrovid.evaluation.metrics import metrics_from_predictions

    folder.mkdir(parents=True)
    cfg = TrainConfig(arch="resnet50", dims=dims, width=0.25, epochs=3, input_frames=16).to_dict()
    cfg["meta"] = {"thyrovid_version": "0.1.0", "git_sha": "abc123", "input_shape": [1, 16, 64, 64],
                   "world_size": 1, "clips_train": 64, "note": PLANTED}  # fmt: skip
    (folder / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    log = pd.DataFrame({"epoch": [1, 2, 3], "train_loss": [0.7, 0.6, 0.5],
                        "val_loss": [0.69, 0.66, 0.64], "val_auroc": [0.6, 0.75, 0.7],
                        "lr": 1e-3, "clips_per_s": 10.0, "seconds": 1.0})  # fmt: skip
    log.to_csv(folder / "log.csv", index=False)
    ev = patients[patients["split"] != "train"]
    noise = rng.normal(0, 1.5 if dims == 3 else 2.5, len(ev))  # imperfect: AUROC < 1
    prob = 1 / (1 + np.exp(-(2.0 * (ev["label"].to_numpy() - 0.5) + noise)))
    pred = pd.DataFrame({"level": "patient", "id": ev["patient_id"], "patient_id": ev["patient_id"],
                         "center": ev["center"], "split": ev["split"], "label": ev["label"],
                         "prob": prob})  # fmt: skip
    pred.to_csv(folder / "predictions.csv", index=False)
    metrics = {"run": folder.name, "work_dir": "../../work", "tta": 1, "patient_name": PLANTED,
               **metrics_from_predictions(pred)}  # fmt: skip
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics


def _png(path, text=None):
    """A small RGB PNG; ``text`` goes into a tEXt metadata chunk."""
    info = PngInfo()
    if text:
        info.add_text("Comment", text)
    Image.fromarray(np.full((16, 64, 3), 120, np.uint8)).save(path, pnginfo=info)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """A folder in `thyrovid demo`'s layout; returns (root, metrics of the 3D run)."""
    from thyrovid.evaluation.compare import compare
    from thyrovid.readers.readers import reader_study

    rng = np.random.default_rng(0)
    root = tmp_path_factory.mktemp("demo")
    patients = _patients(rng)
    (root / "phantom").mkdir()
    truth = patients.assign(nodule_id=patients["patient_id"] + "_n0", PatientName=PLANTED)
    truth.to_csv(root / "phantom" / "truth.csv", index=False)
    (root / "work").mkdir()
    clips = pd.DataFrame([
        {"clip_id": f"{r.patient_id}_c{k}", "patient_id": r.patient_id,
         "nodule_id": f"{r.patient_id}_n0", "video_id": f"{r.patient_id}_v{k % 2}",
         "center": r.center, "label": r.label, "split": r.split, "PatientName": PLANTED}
        for r in patients.itertuples() for k in range(3)
    ])  # fmt: skip
    clips.to_csv(root / "work" / "clips.csv", index=False)
    m3 = _run(root / "runs" / "3d_resnet50", patients, 3, rng)
    _run(root / "runs" / "2d_resnet50", patients, 2, rng)
    runs = [root / "runs" / "3d_resnet50", root / "runs" / "2d_resnet50"]
    # figures=False: drawing them is test_compare's business; stand-in PNGs are embedded here
    compare(runs, split="test", out=root / "compare" / "test", figures=False)
    for stem in ("roc", "delong", "confusion"):
        _png(root / "compare" / "test" / f"{stem}.png")
    ext = patients[patients["split"] == "external"]
    rows = []
    for reader, group, sd in (("JR1", "junior", 1.0), ("SR1", "senior", 0.7)):
        for mod, shift in (("unaided", 0.0), ("aided", 0.15)):
            score = ext["label"] + rng.normal(0, sd - 2 * shift, len(ext))
            for case, t, s in zip(ext["patient_id"], ext["label"], score):
                rows.append({"reader": reader, "group": group, "case": case, "modality": mod,
                             "truth": t, "score": s, "decision": int(s >= 0.5)})  # fmt: skip
    pd.DataFrame(rows).to_csv(root / "readers.csv", index=False)
    reader_study(
        root / "readers.csv", model_run=runs[0], split="external", out_dir=root / "readers"
    )
    (root / "cam").mkdir()
    cam = pd.DataFrame({"clip_id": ["TE001_c0", "TE000_c0"], "label": [1, 0], "prob": [0.8123, 0.2],
                        "energy_in_mask": [0.4, 0.1], "mask_fraction": [0.1, 0.1],
                        "energy_ratio": [4.0, 1.0], "pointing_hit": [1.0, 0.0],
                        "PatientName": PLANTED})  # fmt: skip
    cam.to_csv(root / "cam" / "cam.csv", index=False)
    for cid in cam["clip_id"]:
        _png(root / "cam" / f"{cid}.png", text=PLANTED)
    return root, m3


def _images(page: str) -> list[bytes]:
    return [base64.b64decode(b) for b in re.findall(r'src="data:image/png;base64,([^"]+)"', page)]


def test_report_shows_every_section_with_the_numbers_of_its_inputs(demo, tmp_path):
    root, m3 = demo
    out = build_report(
        runs=[root / "runs" / "3d_resnet50", root / "runs" / "2d_resnet50"],
        compare=[root / "compare" / "test"], readers=root / "readers", cam=root / "cam",
        phantom=root / "phantom", out=tmp_path / "report.html",
    )  # fmt: skip
    page = out.read_text()
    for key in ("cohort", "runs", "run-1", "run-2", "compare", "compare-1", "readers", "gradcam"):
        assert f'<section id="{key}">' in page
    # patient-level AUROC (95% CI) and the threshold of the 3D run, as metrics.json says
    auc = m3["splits"]["test"]["patient"]["auroc"]
    assert 0.5 < auc["value"] < 1 and page.count(f"{auc['value']:.3f}") < 5  # a telling number
    assert f"{auc['value']:.3f} ({auc['low']:.3f}, {auc['high']:.3f})" in page
    assert f"Decision threshold {m3['threshold']['value']:.3f}" in page
    assert "val split, patient level, Youden index" in page
    # cohort counts from clips.csv: the test split row
    assert (
        "<td>test</td><td>1</td><td>12</td><td>6</td><td>0.500</td><td>12</td><td>24</td><td>36</td>"
        in page
    )
    # Bayes ceiling of the phantom's test split, computed independently
    truth = pd.read_csv(root / "phantom" / "truth.csv")
    t = truth[truth["split"] == "test"]
    pos, neg = (
        t.loc[t["label"] == 1, "p_malignant"].to_numpy(),
        t.loc[t["label"] == 0, "p_malignant"].to_numpy(),
    )
    bayes = (pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean()
    assert f"<td>{bayes:.3f}</td>" in page
    assert "<td>Bayes ceiling (phantom)</td>" in page
    # Table 4 and MRMC from the readers folder
    t4 = pd.read_csv(root / "readers" / "table4.csv")
    r = t4.iloc[1]
    assert f"{r['auroc']:.3f} ({r['auroc_low']:.3f}, {r['auroc_high']:.3f})" in page
    mrmc = json.loads((root / "readers" / "mrmc.json").read_text())["mrmc"]["jackknife"]
    assert f"{mrmc['rrrc']['differences'][0]['estimate']:.3f}" in page
    # Grad-CAM: the clip's probability and a montage
    assert "TE001_c0: malignant, P(malignant) 0.812" in page
    row = "<td>TE001_c0</td><td>malignant</td><td>0.812</td><td>0.400</td><td>0.100</td><td>4.000</td><td>yes</td>"
    assert row in page
    assert "median energy ratio 2.500" in page and "pointing game 0.500" in page
    # images embedded: 2 training curves, 2 ROC/reliability, roc, delong, confusion, fig 7, 2 montages
    images = _images(page)
    assert len(images) >= 10
    assert all(img.startswith(b"\x89PNG\r\n\x1a\n") for img in images)
    # nothing identifying, nothing loaded from elsewhere
    text = re.sub(r"data:image/png;base64,[^\"]+", "", page)
    assert PLANTED not in page and "DOE" not in text
    assert not any(PLANTED.encode() in img for img in images)
    assert "<script" not in page.lower()
    assert not re.findall(r'(?:src|href)="(?!data:image/png;base64,|#)', page)


def test_sections_appear_only_when_their_inputs_exist_and_text_is_escaped(demo, tmp_path):
    root, _ = demo
    out = build_report(runs=[root / "runs" / "2d_resnet50"], title="<script>alert(1)</script> & co",
                       out=tmp_path / "r.html")  # fmt: skip
    page = out.read_text()
    assert '<section id="run-1">' in page and '<section id="cohort">' in page
    for key in ("compare", "readers", "gradcam"):
        assert f'<section id="{key}">' not in page
    assert "Bayes AUROC" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in page
    assert "<script" not in page


def test_demo_folder_from_the_command_line(demo, capsys):
    from thyrovid.cli import main

    root, _ = demo
    assert main(["report", "--demo", str(root)]) == 0  # default: DEMO_DIR/report.html
    assert json.loads(capsys.readouterr().out)["bytes"] > 10_000
    page = (root / "report.html").read_text()
    for key in ("cohort", "run-1", "run-2", "compare-1", "readers", "gradcam"):
        assert f'<section id="{key}">' in page
    assert "thyrovid demo --out" in page and "thyrovid evaluate runs/3d_resnet50" in page
    assert "Comparison: internal test split" in page
    assert re.search(r"report written \d{4}-\d{2}-\d{2}", page)
    assert not [p.name for p in root.iterdir() if p.name.startswith(".report")]  # no temp left


def test_unreadable_file_is_left_out_with_a_line(demo, tmp_path, capsys):
    root, _ = demo
    run = tmp_path / "broken"
    run.mkdir()
    (run / "config.yaml").write_text((root / "runs" / "3d_resnet50" / "config.yaml").read_text())
    (run / "metrics.json").write_text("{not json")
    page = build_report(runs=[run], out=tmp_path / "r.html").read_text()
    assert "Left out" in page and "metrics.json" in page
    assert "metrics.json" in capsys.readouterr().err
    assert '<section id="run-1">' in page and "resnet50" in page  # the config is still shown


def test_user_errors_are_one_line(tmp_path, capsys):
    from thyrovid.cli import main

    (tmp_path / "old.html").write_text("old")
    argv = ["report", "--runs", str(tmp_path / "nope"), "--out", str(tmp_path / "old.html")]
    assert main(argv) == 2
    assert "nope: run folder not found" in capsys.readouterr().err
    assert (tmp_path / "old.html").read_text() == "old"
    with pytest.raises(UserError, match="nothing to report"):
        build_report(out=tmp_path / "x.html")
    with pytest.raises(UserError, match="no table4.csv"):
        build_report(readers=tmp_path, out=tmp_path / "x.html")


def test_training_curve_circles_the_kept_epoch_not_only_the_best(monkeypatch):
    import pandas as pd

    from thyrovid.report import run_figures

    legends = []

    def capture(fig):
        ax = fig.axes[1]
        legends.append([t.get_text() for t in ax.get_legend().get_texts()])
        return b"png"

    monkeypatch.setattr(run_figures, "_png", capture)
    log = pd.DataFrame({"epoch": [1, 2, 3], "train_loss": [0.7, 0.6, 0.5],
                        "val_auroc": [0.9, 0.6, 0.7]})  # fmt: skip
    run_figures.training_curves(log, kept_epoch=3)  # keep=last: the last epoch's weights
    run_figures.training_curves(log)  # the default rule: the best epoch
    assert legends[0] == ["best: epoch 1, 0.900", "kept: epoch 3, 0.700"]
    assert legends[1] == ["best: epoch 1, 0.900"]
