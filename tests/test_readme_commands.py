"""Regression tests for defects found by running README.md's commands as a new user would."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from thyrovid.cli import COMMANDS, main


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_help_names_no_missing_document(command, capsys):
    """`--help` pointed at ARCHITECTURE.md, which the project does not ship."""
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    assert "ARCHITECTURE.md" not in capsys.readouterr().out


@pytest.fixture(scope="module")
def phantom(tmp_path_factory):
    out = tmp_path_factory.mktemp("rw") / "phantom"
    synth = ["synth", str(out), "--patients", "4", "--seed", "3", "--frames", "12:14",
             "--size", "96,128", "--workers", "1", "--quiet"]  # fmt: skip
    assert main(synth) == 0
    return out


def test_extract_warns_about_an_external_center_the_cohort_lacks(phantom, tmp_path, capsys):
    """README: `--external-centers hospital_c`; a name no row has was silently ignored."""
    argv = ["extract", str(phantom / "cohort.csv"), "--out", str(tmp_path / "w"),
            "--frames", "8", "--size", "16", "--workers", "1",
            "--external-centers", "hospital_c,ext_d"]  # fmt: skip
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "'hospital_c' is no center of cohort.csv" in err
    assert "(its centers: ext_d, int_a)" in err
    assert "'ext_d' is no center" not in err


def test_cpu_torchrun_prints_no_all_reduce_deprecation(tmp_path):
    """Each rank of a CPU torchrun printed torch's FutureWarning for the autograd all_reduce."""
    script = textwrap.dedent(
        f"""
        import torch, torch.distributed as dist
        import thyrovid.distributed
        dist.init_process_group("gloo", init_method="file://{tmp_path / "store"}",
                                rank=0, world_size=1)
        from torch.distributed.nn.functional import all_reduce
        x = torch.ones(3, requires_grad=True)
        all_reduce(x * 2).sum().backward()
        assert x.grad.tolist() == [2.0, 2.0, 2.0]
        dist.destroy_process_group()
        """
    )
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "deprecated" not in res.stderr


@pytest.mark.parametrize(
    ("level", "hint"),
    [("patient", "--level nodule or video or clip)"), ("video", "--level clip)"),
     ("clip", "(try another --split)")],
)  # fmt: skip
def test_compare_too_few_cases_suggests_a_finer_level(tmp_path, level, hint):
    """At --level video the hint said 'or --level nodule', a level with fewer cases."""
    import pandas as pd
    import yaml

    from thyrovid.errors import UserError
    from thyrovid.evaluation.compare import compare

    run = tmp_path / "r"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump({"arch": "resnet50", "dims": 3}))
    pd.DataFrame(
        {"level": level, "id": ["a", "b", "c"], "patient_id": ["a", "b", "c"], "center": "A",
         "split": "test", "label": [0, 1, 1], "prob": [0.1, 0.8, 0.9]}
    ).to_csv(run / "predictions.csv", index=False)  # fmt: skip
    (run / "metrics.json").write_text('{"threshold": {"value": 0.5}}')
    with pytest.raises(UserError, match="1 benign") as exc:
        compare([run], level=level, out=tmp_path / "o", figures=False)
    assert str(exc.value).endswith(hint)


def test_coco_import_keeps_cvat_keyframes_only(tmp_path):
    """CVAT's COCO export has a box on every frame of a track; interpolations became key frames."""
    import json

    from thyrovid.cohort.importers import import_coco

    def ann(i, keyframe):
        attrs = {"occluded": False, "rotation": 0.0, "track_id": 0, "keyframe": keyframe}
        return {"id": i, "image_id": i, "category_id": 2, "segmentation": [], "area": 520.0,
                "bbox": [63.0, 49.0, 26.0, 20.0], "iscrowd": 0, "attributes": attrs}  # fmt: skip

    coco = {
        "categories": [{"id": 1, "name": "benign"}, {"id": 2, "name": "malignant"}],
        "images": [
            {"id": i, "width": 160, "height": 120, "file_name": f"frame_{22 + i:06d}.PNG"}
            for i in (1, 2, 3)
        ],  # fmt: skip
        "annotations": [ann(1, False), ann(2, True), ann(3, False)],
    }
    path = tmp_path / "coco.json"
    path.write_text(json.dumps(coco))
    rows = import_coco(path, "videos/a.dcm", "P1", "hospital_c")
    assert [(r["frame"], r["label"], r["x1"], r["y1"]) for r in rows] == [(24, 1, 89.0, 69.0)]
    every = import_coco(path, "videos/a.dcm", "P1", "hospital_c", keyframes_only=False)
    assert [r["frame"] for r in every] == [23, 24, 25]
    del coco["annotations"][0]["attributes"]  # a plain COCO file: every box is a key frame
    path.write_text(json.dumps(coco))
    assert [r["frame"] for r in import_coco(path, "videos/a.dcm", "P1", "c")] == [23, 24]


def test_demo_help_says_what_full_changes(capsys):
    """README: `demo --full` trains InceptionResNetV2; --help only said 'default resnet50'."""
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "(default resnet50; --full inception_resnet_v2)" in out
    assert "(default 10; --full 100)" in out and "32x224x224" in out


def test_readme_predict_boxes_says_a_frame_beyond_the_video_skips_that_video():
    """The README promised only row-level skips; a key frame past the end skips its video."""
    from pathlib import Path

    readme = Path(__file__).resolve().parents[1] / "README.md"
    text = " ".join(readme.read_text(encoding="utf-8").split())
    assert "a key frame or box that does not fit its video skips that video, named" in text
