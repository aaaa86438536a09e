"""torchrun (gloo, CPU) training equals one process with the same global batch."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from helpers import make_work_dir
from thyrovid import distributed
from thyrovid.clips.dataset import ClipDataset, to_model_input
from thyrovid.runs import load_run

ARGS = [
    # Adam's first steps are about lr * sign(gradient): a weight whose true gradient is ~0
    # (a dead unit; a convolution bias in front of a BatchNorm, as ResNet50 has) steps +-lr
    # on float noise, which differs between 1 and 2 ranks (summation order). So the networks
    # match to float tolerance only for a few steps: 1 epoch = 2 steps here, on DenseNet121
    # (no biases before its BatchNorms). Measured: max |dP| 3.5e-6 after 2 steps.
    "--arch", "densenet121", "--dims", "3", "--epochs", "1", "--batch-size", "4",
    "--width", "0.125", "--device", "cpu", "--num-workers", "0",
    # dropout masks are drawn per rank, so only dropout-free training can match exactly
    "--set", "dropout=0", "temporal_strides=[1,1,1,2,2]", "tensorboard=false",
]  # fmt: skip


def _env():
    env = dict(os.environ, OMP_NUM_THREADS="1")
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    return env


def _val_probs(run, work) -> np.ndarray:
    model, _ = load_run(run)
    ds = ClipDataset(work, None, dims=3)
    x = torch.stack([ds[i]["x"] for i in range(len(ds))])
    with torch.no_grad():
        return torch.sigmoid(model(to_model_input(x))[:, 0]).numpy()


def test_single_process_helpers_are_no_ops():
    assert distributed.world() == (0, 1)
    assert distributed.is_main()
    assert distributed.gather_objects({"a": 1}) == [{"a": 1}]


def test_global_batchnorm_converts_and_matches_batchnorm_alone():
    net = torch.nn.Sequential(torch.nn.Conv3d(1, 4, 3), torch.nn.BatchNorm3d(4))
    ref = {k: v.clone() for k, v in net.state_dict().items()}
    conv = distributed.convert_batchnorm(net, torch.device("cpu"))
    assert isinstance(conv[1], distributed.GlobalBatchNorm)
    assert set(conv.state_dict()) == set(ref)
    x = torch.randn(3, 1, 4, 6, 6)
    plain = torch.nn.Sequential(torch.nn.Conv3d(1, 4, 3), torch.nn.BatchNorm3d(4))
    plain.load_state_dict(ref)
    assert torch.allclose(conv(x), plain(x), atol=1e-6)


@pytest.mark.slow
def test_torchrun_two_ranks_match_one_process(tmp_path):
    # 8 training clips = 2 global batches of 4 (2 per rank): no rank pads duplicates in
    # training. 5 validation clips: the sampler pads rank 1 with a repeat, which evaluation
    # must drop (else the logged val_loss/AUROC would differ from one process's).
    work = make_work_dir(tmp_path / "work", n_patients=6, frames=8, size=32)
    clips = pd.read_csv(work / "clips.csv")
    # The extra clip keeps its label: a benign copy of a malignant clip would be an exact tie
    # whose side in the AUROC turns on the last bit of a convolution (batch composition).
    extra = clips[clips["split"] == "val"].iloc[[-1]].assign(clip_id="P005_c2")
    pd.concat([clips, extra]).to_csv(work / "clips.csv", index=False)
    one, two = tmp_path / "one", tmp_path / "two"
    cmd1 = [sys.executable, "-m", "thyrovid", "train", str(work), "--out", str(one), *ARGS]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    cmd2 = [*torchrun, "-m", "thyrovid", "train", str(work), "--out", str(two), *ARGS]
    procs = [
        subprocess.Popen(c, env=_env(), stderr=subprocess.PIPE, text=True) for c in (cmd1, cmd2)
    ]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]
    p1, p2 = _val_probs(one, work), _val_probs(two, work)
    assert p1.std() > 1e-3  # the networks did train to something clip-dependent
    np.testing.assert_allclose(p2, p1, atol=5e-5)
    log1 = (one / "log.csv").read_text().splitlines()
    log2 = (two / "log.csv").read_text().splitlines()
    assert len(log1) == len(log2) == 2
    auroc1 = [float(r.split(",")[3]) for r in log1[1:]]
    auroc2 = [float(r.split(",")[3]) for r in log2[1:]]
    assert auroc1 == pytest.approx(auroc2, abs=1e-6)
    loss1 = [float(r.split(",")[2]) for r in log1[1:]]
    loss2 = [float(r.split(",")[2]) for r in log2[1:]]
    assert loss1 == pytest.approx(loss2, abs=1e-4)
