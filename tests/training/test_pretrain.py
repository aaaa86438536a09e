"""`thyrovid pretrain`: contrastive pretraining on clips that never reads a label."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from helpers import make_work_dir
from thyrovid.config import TrainConfig
from thyrovid.errors import UserError
from thyrovid.runs import build_network, load_run
from thyrovid.training.pretrain import epoch_pairs, nodule_contrastive_loss, nodule_groups, pretrain
from thyrovid.training.train import initialise_from_run

TINY = dict(
    arch="densenet121",
    width=0.125,
    batch_size=4,
    num_workers=0,
    epochs=2,
    device="cpu",
    seed=0,
    temporal_strides=(1, 1, 1, 2, 2),
)


def test_loss_is_log_n_minus_one_when_views_are_alike_and_falls_as_nodules_separate():
    groups = torch.tensor([0, 0, 1, 1, 2, 2])
    alike = torch.ones(6, 8)
    assert nodule_contrastive_loss(alike, groups, 0.2).item() == pytest.approx(math.log(5))
    apart = torch.eye(8)[[0, 0, 1, 1, 2, 2]]  # views of one nodule equal, nodules orthogonal
    expected = -math.log(math.exp(5) / (math.exp(5) + 4))  # s/tau = 5 for the positive, 0 else
    assert nodule_contrastive_loss(apart, groups, 0.2).item() == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="positive"):
        nodule_contrastive_loss(torch.randn(3, 8), torch.tensor([0, 0, 1]), 0.2)


def test_partners_are_other_clips_of_the_same_nodule():
    clips = pd.DataFrame(
        {
            "clip_id": ["a", "b", "c", "d", "e"],
            "patient_id": ["P1", "P1", "P1", "P2", "P3"],
            "nodule_id": ["N1", "N1", "N2", "N1", ""],
        }
    )
    groups = nodule_groups(clips)
    assert groups[0] == groups[1] and len(set(groups.tolist())) == 4  # P2/N1 is not P1/N1
    pairs = epoch_pairs(groups, seed=0, epoch=3)
    assert sorted(a for a, _ in pairs) == [0, 1, 2, 3, 4]
    partner = dict(pairs)
    assert partner[0] == 1 and partner[1] == 0
    assert partner[2] == 2 and partner[3] == 3 and partner[4] == 4  # alone: its own clip
    assert epoch_pairs(groups, 0, 3) == pairs and epoch_pairs(groups, 0, 4) != pairs


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    root = tmp_path_factory.mktemp("pretrain")
    work = make_work_dir(root / "work", n_patients=8, frames=8, size=32)
    return root, work, pretrain(work, root / "pre", TrainConfig(**TINY))


def test_labels_are_never_read(pretrained):
    root, work, run = pretrained
    csv = work / "clips.csv"
    df = pd.read_csv(csv, dtype=str, keep_default_na=False)
    df["label"] = np.where(df["label"] == "1", "0", "1")  # every label flipped
    other = root / "flipped"
    import shutil

    shutil.copytree(work, other)
    df.to_csv(other / "clips.csv", index=False)
    run2 = pretrain(other, root / "pre_flipped", TrainConfig(**TINY))
    a, _ = load_run(run, classifier=False)
    b, _ = load_run(run2, classifier=False)
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        torch.testing.assert_close(x, y, msg=name)


def test_a_classifier_starts_from_the_pretrained_weights(pretrained):
    _, _, run = pretrained
    doc = yaml.safe_load((run / "config.yaml").read_text())
    assert doc["meta"]["selected_by"] == "pretrain"
    assert doc["meta"]["pretrain"]["labels_read"] is False
    assert doc["meta"]["pretrain"]["splits"] == ["train"]
    log = pd.read_csv(run / "log.csv")
    assert list(log["epoch"]) == [1, 2] and np.isfinite(log["loss"]).all()
    with pytest.raises(UserError, match="a `thyrovid pretrain` run.*--init-from"):
        load_run(run)  # evaluate, predict, cam and export all load through it
    source, _ = load_run(run, classifier=False)
    config = TrainConfig(input_frames=8, init_from=str(run), **TINY)
    net = build_network(config)
    fresh = build_network(config)
    initialise_from_run(net, config)
    for (name, x), (_, y) in zip(net.state_dict().items(), source.state_dict().items()):
        torch.testing.assert_close(x, y, msg=name)
    conv = [
        k for k in fresh.state_dict() if k.endswith("weight") and fresh.state_dict()[k].dim() > 2
    ]
    assert not torch.allclose(net.state_dict()[conv[0]], fresh.state_dict()[conv[0]])


def test_evaluation_splits_refused_and_a_missing_split_named(pretrained, tmp_path):
    _, work, _ = pretrained
    with pytest.raises(UserError, match="evaluated on.*--allow-eval-splits"):
        pretrain(work, tmp_path / "a", TrainConfig(**TINY), splits=["train", "val"])
    with pytest.raises(
        UserError, match=r"clips\.csv: no clips in split\(s\) unlabeled \(splits: train, val\)"
    ):
        pretrain(work, tmp_path / "b", TrainConfig(**TINY), splits=["unlabeled"])
    with pytest.raises(UserError, match="already holds a run"):
        pretrain(work, pretrained[2], TrainConfig(**TINY))


def test_cli_pretrains_and_train_starts_from_it(pretrained, tmp_path, capsys):
    from thyrovid.cli import main

    _, work, _ = pretrained
    pre = tmp_path / "pre"
    common = ["--arch", "densenet121", "--width", "0.125", "--device", "cpu", "--num-workers", "0"]
    common += ["--batch-size", "4", "--set", "temporal_strides=[1,1,1,2,2]"]
    assert main(["pretrain", str(work), "--out", str(pre), "--epochs", "1", *common]) == 0
    assert (pre / "model.safetensors").is_file()
    capsys.readouterr()
    assert main(["evaluate", str(pre), "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        err[-1].startswith("thyrovid evaluate: error:") and "a `thyrovid pretrain` run" in err[-1]
    ), err
    out = tmp_path / "run"
    args = ["train", str(work), "--out", str(out), "--epochs", "1", "--init-from", str(pre)]
    assert main([*args, *common]) == 0
    assert yaml.safe_load((out / "config.yaml").read_text())["init_from"] == str(pre)


def test_a_run_cut_short_writes_no_weights_and_resumes_to_the_straight_run(
    pretrained, tmp_path, monkeypatch
):
    from thyrovid.training import pretrain as module

    _, work, straight = pretrained  # two epochs, uninterrupted
    real = module.epoch_pairs

    def cut_at_epoch_two(groups, seed, epoch):
        if epoch == 1:
            raise KeyboardInterrupt
        return real(groups, seed, epoch)

    monkeypatch.setattr(module, "epoch_pairs", cut_at_epoch_two)
    out = tmp_path / "cut"
    with pytest.raises(KeyboardInterrupt):
        pretrain(work, out, TrainConfig(**TINY))
    assert not (out / "model.safetensors").exists()  # nothing to start a classifier from
    assert (out / "state" / "last.pt").is_file()
    with pytest.raises(UserError, match="already holds a run; pass --resume"):
        pretrain(work, out, TrainConfig(**TINY))
    with pytest.raises(UserError, match="--resume with different lr"):
        pretrain(work, out, TrainConfig(**{**TINY, "lr": 3e-4}), resume=True)
    monkeypatch.setattr(module, "epoch_pairs", real)
    pretrain(work, out, TrainConfig(**TINY), resume=True)
    a, _ = load_run(straight, classifier=False)
    b, _ = load_run(out, classifier=False)
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        torch.testing.assert_close(x, y, msg=name)
    assert pd.read_csv(out / "log.csv")["epoch"].tolist() == [1, 2]
    with pytest.raises(UserError, match="has finished"):
        pretrain(work, out, TrainConfig(**TINY), resume=True)
