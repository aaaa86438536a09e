"""`train --set ema=DECAY`: an exponential moving average of the weights, scored and kept."""

from __future__ import annotations

import pytest
import torch
import yaml
from safetensors.torch import load_file
from torch import nn

from helpers import TINY_TRAIN, make_work_dir
from thyrovid.config import TrainConfig
from thyrovid.errors import UserError
from thyrovid.training.engine import WeightEMA
from thyrovid.training.train import train


def test_the_paper_recipe_has_no_average():
    assert TrainConfig().ema == 0.0
    with pytest.raises(UserError, match=r"ema must be in \[0, 1\)"):
        TrainConfig.from_dict({"ema": 1.0})


def test_the_average_follows_the_documented_ramp_and_copies_counters():
    net = nn.Sequential(nn.Linear(1, 1, bias=False), nn.BatchNorm1d(1))
    with torch.no_grad():
        net[0].weight.fill_(0.0)
    ema = WeightEMA(net, decay=0.9)
    with torch.no_grad():
        net[0].weight.fill_(1.0)
    net[1].num_batches_tracked.fill_(7)
    ema.update(net)  # n = 1: d = min(0.9, 2 / 11), the average moves by 1 - d towards 1
    assert float(ema.model[0].weight) == pytest.approx(1 - 2 / 11)
    assert int(ema.model[1].num_batches_tracked) == 7
    for _ in range(200):  # the ramp reaches the decay: d = 0.9 from n = 80 on
        ema.update(net)
    assert float(ema.model[0].weight) == pytest.approx(1.0, abs=1e-6)
    assert not any(p.requires_grad for p in ema.model.parameters())
    assert float(net[0].weight.detach()) == 1.0  # the trained network is not touched


def test_a_run_keeps_the_average_and_resumes_it(tmp_path):
    work = make_work_dir(tmp_path / "work", n_patients=6, frames=8, size=32)
    config = TrainConfig(**TINY_TRAIN, epochs=2, ema=0.5, keep="last")
    run = train(work, tmp_path / "run", config)
    assert yaml.safe_load((run / "config.yaml").read_text())["ema"] == 0.5
    kept = load_file(run / "model.safetensors")
    state = torch.load(run / "state" / "last.pt", weights_only=True)
    name = next(k for k, v in kept.items() if v.dtype.is_floating_point and v.ndim > 1)
    # model.safetensors is the average, not the last trained weights, and state has both
    assert torch.equal(kept[name], state["ema"]["model"][name])
    assert not torch.equal(kept[name], state["model"][name])
    assert state["ema"]["updates"] > 0

    # resuming with more epochs continues the same average (bit-exact on the CPU)
    longer = TrainConfig(**TINY_TRAIN, epochs=3, ema=0.5, keep="last")
    straight = train(work, tmp_path / "straight", longer)
    resumed = train(work, run, longer, resume=True)
    a, b = load_file(straight / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
