"""The optimiser and label-smoothing options of `train` (`--set optimizer=... label_smoothing=...`)."""

from __future__ import annotations

import pytest
import torch
import yaml

from helpers import TINY_TRAIN, make_work_dir
from thyrovid.config import TrainConfig
from thyrovid.errors import UserError
from thyrovid.training.engine import build_criterion, build_optimizer
from thyrovid.training.train import train


def test_the_paper_optimiser_stays_the_default():
    config = TrainConfig()
    assert (config.optimizer, config.lr, config.weight_decay, config.label_smoothing) == (
        "adam",
        1e-3,
        0.0,
        0.0,
    )
    assert type(build_optimizer(config, [torch.nn.Parameter(torch.ones(2))])) is torch.optim.Adam


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"optimizer": "adamx"}, "optimizer must be one of adam, adamw, sgd"),
        ({"weight_decay": -0.1}, "weight_decay must be >= 0"),
        ({"label_smoothing": 1.0}, "label_smoothing must be in [0, 1)"),
    ],
)
def test_bad_values_name_the_option(values, message):
    with pytest.raises(UserError, match=message.replace("[", r"\[").replace(")", r"\)")):
        TrainConfig.from_dict(values)


def _one_step(optimizer_name: str, weight_decay: float) -> float:
    """A weight with zero gradient after one step: what the decay alone did to it."""
    w = torch.nn.Parameter(torch.ones(1))
    config = TrainConfig(optimizer=optimizer_name, lr=0.1, weight_decay=weight_decay)
    opt = build_optimizer(config, [w])
    w.grad = torch.zeros(1)
    opt.step()
    return float(w.detach())


def test_adamw_decays_weights_by_lr_times_decay_whatever_the_gradient_scale():
    # decoupled: w <- w (1 - lr wd) = 1 - 0.1 * 0.5 exactly, with no gradient at all
    assert _one_step("adamw", 0.5) == pytest.approx(0.95)
    # Adam's L2 term goes through the adaptive scaling: a lone L2 gradient moves w by ~lr
    assert _one_step("adam", 0.5) == pytest.approx(0.9, abs=1e-3)
    # SGD with Nesterov momentum 0.9: the L2 gradient 0.5 moves w by lr * 0.5 * (1 + 0.9)
    assert _one_step("sgd", 0.5) == pytest.approx(1 - 0.1 * 0.5 * 1.9)
    assert _one_step("adamw", 0.0) == 1.0


def test_label_smoothing_moves_the_loss_minimum_off_certainty():
    labels = torch.tensor([1.0, 0.0, 1.0])
    criterion = build_criterion(TrainConfig(label_smoothing=0.2), labels.numpy())
    logits = torch.linspace(-8, 8, 1601)
    losses = torch.stack([criterion(x.view(1), torch.ones(1)) for x in logits])
    # the best logit for a malignant clip is logit(0.9), not +infinity
    best = float(logits[int(losses.argmin())])
    assert best == pytest.approx(float(torch.logit(torch.tensor(0.9))), abs=0.02)
    # with the class weights, the smoothed targets go through the same weighted BCE
    criterion = build_criterion(
        TrainConfig(label_smoothing=0.2, balance="pos_weight"), labels.numpy()
    )
    plain = build_criterion(TrainConfig(balance="pos_weight"), labels.numpy())
    x, y = torch.tensor([2.0, -1.0]), torch.tensor([1.0, 0.0])
    assert float(criterion(x, y)) == pytest.approx(float(plain(x, y * 0.8 + 0.1)))


def test_a_run_records_its_optimiser_and_trains_with_it(tmp_path):
    work = make_work_dir(tmp_path / "work", n_patients=6, frames=8, size=32)
    config = TrainConfig(
        **TINY_TRAIN, epochs=1, optimizer="sgd", lr=0.01, weight_decay=1e-4, label_smoothing=0.1
    )
    run = train(work, tmp_path / "run", config)
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert (saved["optimizer"], saved["weight_decay"], saved["label_smoothing"]) == (
        "sgd",
        1e-4,
        0.1,
    )
    state = torch.load(run / "state" / "last.pt", weights_only=True)
    assert state["optimizer"]["param_groups"][0]["nesterov"] is True
