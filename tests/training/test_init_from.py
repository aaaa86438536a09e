"""Starting a run from another run's weights: a trained 2D network inflated into its 3D twin."""

from __future__ import annotations

import pytest
import torch
import yaml

from helpers import make_work_dir
from thyrovid.clips.dataset import to_model_input
from thyrovid.config import TrainConfig
from thyrovid.runs import build_network, load_run
from thyrovid.training.train import initialise_from_run, train

TINY = dict(
    arch="densenet121",
    width=0.125,
    batch_size=4,
    num_workers=0,
    epochs=1,
    device="cpu",
    seed=0,
    temporal_strides=(1, 1, 1, 2, 2),
    max_train_batches=3,
)


@pytest.fixture(scope="module")
def run2d(tmp_path_factory):
    root = tmp_path_factory.mktemp("init")
    work = make_work_dir(root / "work", n_patients=8, frames=8, size=32)
    return root, work, train(work, root / "run2d", TrainConfig(dims=2, **TINY))


def test_3d_network_starts_as_the_inflated_2d_network(run2d):
    _, _, run = run2d
    model2d, _ = load_run(run)
    config = TrainConfig(dims=3, input_frames=8, init_from=str(run), **TINY)
    net3d = build_network(config)
    initialise_from_run(net3d, config)
    net3d.eval()
    frame = torch.randint(0, 256, (2, 1, 32, 32), dtype=torch.uint8)
    still = frame[:, :, None].expand(-1, -1, 8, -1, -1)  # one frame repeated: a still clip
    with torch.no_grad():
        a = model2d(to_model_input(frame))
        b = net3d(to_model_input(still))
    torch.testing.assert_close(b, a, atol=1e-4, rtol=1e-4)
    fresh = build_network(TrainConfig(dims=3, input_frames=8, **TINY)).eval()
    with torch.no_grad():
        assert not torch.allclose(fresh(to_model_input(still)), a, atol=1e-3)


def test_cli_records_the_source_and_refuses_another_architecture(run2d, capsys):
    from thyrovid.cli import main

    root, work, run = run2d
    args = [
        "train",
        str(work),
        "--dims",
        "3",
        "--width",
        "0.125",
        "--epochs",
        "1",
        "--device",
        "cpu",
        "--num-workers",
        "0",
        "--batch-size",
        "4",
    ]
    out = root / "run3d"
    assert (
        main(
            [
                *args,
                "--arch",
                "densenet121",
                "--out",
                str(out),
                "--init-from",
                str(run),
                "--set",
                "temporal_strides=1,1,1,2,2",
                "max_train_batches=2",
            ]
        )
        == 0
    )
    assert yaml.safe_load((out / "config.yaml").read_text())["init_from"] == str(run)
    capsys.readouterr()
    assert (
        main([*args, "--arch", "resnet50", "--out", str(root / "bad"), "--init-from", str(run)])
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "densenet121" in err[0] and "resnet50" in err[0]
