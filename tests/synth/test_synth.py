"""Tests of the phantom cohort (`thyrovid synth`): files, truth, physics that matters."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
from scipy import ndimage

from thyrovid.synth.cohort import SynthConfig, mann_whitney_auc, plan_cohort, synthesize
from thyrovid.synth.dicomwriter import compose, layout_for, overlay
from thyrovid.synth.profiles import DEFAULT_CENTERS

SMALL = dict(size=(96, 128), frames=(36, 40))


@pytest.fixture(scope="module")
def small_cohort(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("phantom")
    synthesize(out, SynthConfig(patients=6, seed=3, workers=2, **SMALL), progress=False)
    return out


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_same_seed_gives_identical_bytes_regardless_of_workers(tmp_path):
    cfg = dict(patients=2, seed=11, size=(64, 96), frames=(16, 18))
    synthesize(tmp_path / "a", SynthConfig(workers=1, **cfg), progress=False)
    synthesize(tmp_path / "b", SynthConfig(workers=2, **cfg), progress=False)
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert any(k.endswith(".dcm") for k in a) and any(k.endswith(".npz") for k in a)
    assert a.keys() == b.keys()
    assert all(a[k] == b[k] for k in a)
    other, _ = plan_cohort(SynthConfig(**{**cfg, "seed": 12}))
    assert other.to_csv(index=False) != plan_cohort(SynthConfig(**cfg))[0].to_csv(index=False)


def test_dicom_files_are_ultrasound_multiframe_with_regions(small_cohort):
    cohort = pd.read_csv(small_cohort / "cohort.csv")
    seen_syntax = set()
    for rel in sorted(cohort["video"].unique()):
        ds = pydicom.dcmread(small_cohort / rel)
        assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.3.1"
        assert ds.Modality == "US" and ds.PatientID.startswith("PH")
        assert "PHANTOM" in str(ds.PatientName)
        assert float(ds.FrameTime) > 0 and int(ds.NumberOfFrames) >= 36
        region = ds.SequenceOfUltrasoundRegions[0]
        assert region.PhysicalUnitsXDirection == 3 and 0.005 < region.PhysicalDeltaY < 0.1
        pixels = ds.pixel_array
        assert pixels.shape[:3] == (int(ds.NumberOfFrames), ds.Rows, ds.Columns)
        assert region.RegionLocationMaxX1 < ds.Columns and region.RegionLocationMaxY1 < ds.Rows
        syntax = ds.file_meta.TransferSyntaxUID
        seen_syntax.add(syntax)
        if syntax == "1.2.840.10008.1.2.4.50":
            assert (
                ds.PhotometricInterpretation == "MONOCHROME2" and ds.LossyImageCompression == "01"
            )
        # the imaging region is a real picture, not a blank
        x0, y0 = region.RegionLocationMinX0, region.RegionLocationMinY0
        x1, y1 = region.RegionLocationMaxX1 + 1, region.RegionLocationMaxY1 + 1
        assert pixels[0, y0:y1, x0:x1].std() > 10
    assert len(seen_syntax) >= 1


def test_burned_in_text_lies_outside_the_region():
    prof = DEFAULT_CENTERS[0]
    layout = layout_for(prof.frame_size)
    hr, wr = layout.region_hw
    region = np.random.default_rng(0).integers(0, 256, (2, hr, wr), dtype=np.uint8)
    a = compose(region, layout, overlay(layout, prof, "PH0001 THYROID", False), False)
    b = compose(region, layout, overlay(layout, prof, "PH0999 OTHER", False), False)
    inside = (slice(None), slice(layout.y0, layout.y1), slice(layout.x0, layout.x1))
    assert np.array_equal(a[inside], region) and np.array_equal(b[inside], region)
    outside = a.copy()
    outside[inside] = 0
    assert (outside > 0).sum() > 200  # header, settings, depth scale
    assert not np.array_equal(a, b)  # the header text changed, outside the region only


def test_cohort_csv_contract_and_boxes_inside_frames(small_cohort):
    cohort = pd.read_csv(small_cohort / "cohort.csv")
    assert list(cohort.columns[:11]) == [
        "patient_id",
        "nodule_id",
        "video",
        "center",
        "label",
        "frame",
        "x0",
        "y0",
        "x1",
        "y1",
        "split",
    ]
    assert set(cohort["split"]) <= {"train", "val", "test", "external"}
    assert cohort.groupby("video").size().between(1, 10).all()
    for rel, rows in cohort.groupby("video"):
        m = np.load(small_cohort / "masks" / (Path(rel).stem + ".npz"))
        x0, y0, x1, y1 = m["region"]
        assert (rows["x0"] >= x0).all() and (rows["x1"] <= x1).all()
        assert (rows["y0"] >= y0).all() and (rows["y1"] <= y1).all()
        assert (rows["x1"] > rows["x0"]).all() and (rows["y1"] > rows["y0"]).all()
        assert rows["frame"].between(0, len(m["boxes"]) - 1).all()
        for r in rows.itertuples():
            bx = m["boxes"][r.frame]  # the nodule's true box on that frame
            assert bx[0] >= 0
            inter = max(0, min(bx[2], r.x1) - max(bx[0], r.x0)) * max(
                0, min(bx[3], r.y1) - max(bx[1], r.y0)
            )
            union = (bx[2] - bx[0]) * (bx[3] - bx[1]) + (r.x1 - r.x0) * (r.y1 - r.y0) - inter
            assert inter / union > 0.5
            # annotator noise is a few pixels (0.25 mm sd, drawn a little loose)
            assert np.abs(np.array([r.x0, r.y0, r.x1, r.y1]) - bx).max() <= 5


def test_truth_and_masks_match_the_cohort(small_cohort):
    truth = pd.read_csv(small_cohort / "truth.csv")
    cohort = pd.read_csv(small_cohort / "cohort.csv")
    assert set(truth["nodule_id"]) == set(cohort["nodule_id"])
    assert truth["p_malignant"].between(0, 1).all()
    assert ((truth["n_micro"] > 0) | (truth["n_macro"] > 0) | (truth["rim"] != "none")).all()
    merged = cohort.merge(truth[["nodule_id", "label", "split"]], on="nodule_id")
    assert (merged["label_x"] == merged["label_y"]).all() and (
        merged["split_x"] == merged["split_y"]
    ).all()
    for row in truth.itertuples():
        videos = cohort.loc[cohort["nodule_id"] == row.nodule_id, "video"].unique()
        micro_any = any(
            np.load(small_cohort / "masks" / (Path(v).stem + ".npz"))["micro"].any() for v in videos
        )
        assert micro_any == (row.n_micro > 0)


def test_bayes_auroc_and_prevalence_at_default_settings():
    truth, _ = plan_cohort(SynthConfig(patients=240, seed=5))
    internal = truth[truth["split"] != "external"]
    external = truth[truth["split"] == "external"]
    assert len(truth) > 300
    auc = mann_whitney_auc(truth["label"], truth["p_malignant"])
    assert 0.88 <= auc <= 0.96
    # prevalence near the paper's (68-77% internal, 34% external), binomial tolerance
    assert abs(internal["label"].mean() - 0.70) < 3 * np.sqrt(0.7 * 0.3 / len(internal)) + 0.02
    assert abs(external["label"].mean() - 0.34) < 3 * np.sqrt(0.34 * 0.66 / len(external)) + 0.02
    # splits are patient-grouped
    assert truth.groupby("patient_id")["split"].nunique().max() == 1


def _oracle_scores(root: Path) -> pd.DataFrame:
    """Per key frame: micro foci counted on the key frame only vs over the 32-frame clip."""
    cohort = pd.read_csv(root / "cohort.csv")
    rows = []
    for r in cohort.itertuples():
        m = np.load(root / "masks" / (Path(r.video).stem + ".npz"))["micro"]
        lo = max(0, r.frame - 16)
        window = m[lo : lo + 32, r.y0 : r.y1, r.x0 : r.x1]
        key = m[r.frame, r.y0 : r.y1, r.x0 : r.x1]
        rows.append(
            {
                "nodule_id": r.nodule_id,
                "label": r.label,
                "key": ndimage.label(key)[1],
                "window": ndimage.label(window)[1],
            }
        )
    return pd.DataFrame(rows)


@pytest.mark.slow
def test_microcalcifications_need_the_clip_not_the_key_frame(tmp_path):
    synthesize(
        tmp_path,
        SynthConfig(patients=40, seed=21, workers=2, size=(64, 96), frames=(36, 40)),
        progress=False,
    )
    scores = _oracle_scores(tmp_path)
    auc_key = mann_whitney_auc(scores["label"], scores["key"])
    auc_clip = mann_whitney_auc(scores["label"], scores["window"])
    assert auc_clip - auc_key > 0.05
    has_micro = scores["window"] > 0
    # a single frame misses the foci of a large share of clips that show them
    assert (scores.loc[has_micro, "key"] == 0).mean() > 0.3


def test_cli_prints_json_summary(tmp_path, capsys):
    from thyrovid.cli import main

    code = main(
        [
            "synth",
            str(tmp_path / "o"),
            "--patients",
            "3",
            "--seed",
            "2",
            "--size",
            "64,96",
            "--frames",
            "16:18",
            "--workers",
            "1",
            "--quiet",
        ]
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["patients"] == 3 and summary["videos"] >= 3
    assert all("bayes_auroc" in s for s in summary["splits"].values())
    assert (tmp_path / "o" / "cohort.csv").exists() and (tmp_path / "o" / "truth.csv").exists()
    try:
        import thyrovid.synth.readers  # noqa: F401
    except ImportError:
        return
    if "external" in summary["splits"]:
        assert (tmp_path / "o" / "readers.csv").exists()


def test_cli_rejects_bad_arguments(tmp_path, capsys):
    from thyrovid.cli import main

    assert main(["synth", str(tmp_path), "--centers", "nowhere"]) == 2
    assert "nowhere" in capsys.readouterr().err


def test_files_open_through_thyrovid_io(small_cohort):
    io = pytest.importorskip("thyrovid.io")
    if not hasattr(io, "open_video"):
        pytest.skip("thyrovid.io.open_video not there yet")
    cohort = pd.read_csv(small_cohort / "cohort.csv")
    for rel in cohort["video"].unique():
        m = np.load(small_cohort / "masks" / (Path(rel).stem + ".npz"))
        with io.open_video(small_cohort / rel) as video:
            assert video.info.region == tuple(int(v) for v in m["region"])
            assert len(video) == len(m["boxes"])
            frames = video.frames([0, len(video) - 1])
            assert frames.dtype == np.uint8 and frames.shape[0] == 2


def test_files_pass_thyrovid_probe(small_cohort, capsys):
    pytest.importorskip("thyrovid.io.probe")
    from thyrovid.cli import main

    rel = sorted(pd.read_csv(small_cohort / "cohort.csv")["video"].unique())[0]
    assert main(["probe", str(small_cohort / rel)]) == 0
    out = capsys.readouterr().out
    assert "PHANTOM" not in out  # probe never prints the pseudonymous patient name


def test_speckle_is_shared_by_nearby_frames_and_decorrelates_over_a_beam_width():
    from thyrovid.synth.render import render_video
    from thyrovid.synth.sweep import Sweep
    from thyrovid.synth.volume import ScattererField, nodule_geometry

    field = ScattererField((0, 1), (64, 64), z0=-10.0)
    base = field.at(0.05).ravel()
    assert np.corrcoef(base, field.at(0.15).ravel())[0, 1] > 0.9
    assert abs(np.corrcoef(base, field.at(2.0).ravel())[0, 1]) < 0.1
    # rendered frames: speckle residuals (frame minus the clip mean) correlate only nearby
    feats = dict(composition=2, echogenicity=2, taller_than_wide=0, margin=0, n_micro=0,
                 n_macro=1, rim=0)  # fmt: skip
    geom = nodule_geometry(feats, np.random.default_rng(0))
    z = np.linspace(-4.0, 4.0, 41)  # 0.2 mm per frame
    zeros = np.zeros(len(z), int)
    video = render_video(geom, DEFAULT_CENTERS[0], Sweep(z, zeros, zeros, "linear"), (96, 128),
                         0.0, (0, 2), np.random.default_rng(1))  # fmt: skip
    res = video.frames.astype(float)[:, 20:40, :]  # thyroid parenchyma around the nodule
    res -= res.mean(0)

    def corr(i, j):
        return np.corrcoef(res[i].ravel(), res[j].ravel())[0, 1]

    assert corr(20, 21) > 0.5  # 0.2 mm apart: mostly the same speckle
    assert abs(corr(20, 25)) < 0.2  # 1 mm apart: new speckle
