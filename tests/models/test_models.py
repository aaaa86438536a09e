"""Tests of thyrovid.models: the five architectures in 2D/3D, stride policy, attention, inflation."""

from __future__ import annotations

import pytest
import torch

from thyrovid.errors import UserError
from thyrovid.models import build_model, inflate_2d_to_3d, list_models
from thyrovid.models.attention import CalcificationAttention, calcification_prior, white_tophat

# Trainable parameters of the Keras applications (keras.io/api/applications, include_top=True,
# 1000 classes; Keras "Total params" minus the BatchNorm moving statistics).
KERAS_TRAINABLE = {
    "inception_resnet_v2": 55_813_192,
    "xception": 22_855_952,
    "inception_v3": 23_817_352,
    "densenet121": 7_978_856,
    "resnet50": 25_583_592,
}
MODELS = list_models()
WIDTH = 0.125


def test_registry_lists_the_five_architectures_in_paper_order():
    assert MODELS == list(KERAS_TRAINABLE)


@pytest.mark.parametrize("name", MODELS)
def test_parameter_count_matches_keras(name):
    with torch.device("meta"):
        model = build_model(name, dims=2, in_channels=3, num_classes=1000)
    count = sum(p.numel() for p in model.parameters())
    assert abs(count - KERAS_TRAINABLE[name]) <= 0.01 * KERAS_TRAINABLE[name]


CASES = {
    "2d": dict(dims=2, shape=(2, 1, 64, 64), strides=(1, 1, 2, 2, 2)),
    "3d-keep-time": dict(dims=3, shape=(2, 1, 16, 64, 64), strides=(1, 1, 2, 2, 2)),
    "3d-time-like-space": dict(dims=3, shape=(2, 1, 32, 64, 64), strides=(2, 2, 2, 2, 2)),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("name", MODELS)
def test_forward_and_backward_on_a_tiny_input(name, case):
    c = CASES[case]
    torch.manual_seed(0)
    frames = c["shape"][2] if c["dims"] == 3 else None
    model = build_model(
        name, dims=c["dims"], width=WIDTH, temporal_strides=c["strides"], input_frames=frames
    )
    logits = model(torch.randn(c["shape"]))
    assert logits.shape == (2, 1)
    assert torch.isfinite(logits).all()
    logits.sum().backward()
    first = next(model.parameters())
    assert first.grad is not None and first.grad.abs().sum() > 0


@pytest.mark.parametrize("name", MODELS)
def test_attention_runs_and_exposes_its_maps(name):
    torch.manual_seed(0)
    model = build_model(name, dims=3, width=WIDTH, attention=True)
    x = torch.randn(2, 1, 16, 64, 64)
    model(x).sum().backward()
    maps = model.attention_maps()
    assert len(maps) == 2
    for m in maps.values():
        assert m.shape[:2] == (2, 1) and m.ndim == 5
        assert ((m > 0) & (m < 1)).all()
    assert all(p.grad is not None for p in model.attention.parameters())


@pytest.mark.parametrize("name", MODELS)
def test_keep_time_policy_ends_with_four_time_steps_for_32_frames(name):
    with torch.device("meta"):
        model = build_model(name, dims=3, temporal_strides=(1, 1, 2, 2, 2), input_frames=32)
        features = model.features(torch.empty(1, 1, 32, 224, 224))
    assert features.shape[2:] == (4, 7, 7)
    assert features.shape[1] == model.fc.in_features


def test_clip_too_short_for_the_stride_policy_fails_at_construction():
    with pytest.raises(UserError, match="needs >= 32 frames"):
        build_model("resnet50", dims=3, temporal_strides=(2, 2, 2, 2, 2), input_frames=16)
    build_model("resnet50", dims=3, width=WIDTH, temporal_strides=(1, 2, 2, 2, 2), input_frames=16)


def test_unknown_model_lists_the_known_ones():
    with pytest.raises(UserError, match="densenet121"):
        build_model("resnet18")


def test_wrong_input_rank_is_a_clear_error():
    model = build_model("resnet50", dims=3, width=WIDTH)
    with pytest.raises(ValueError, match=r"\(B, C, T, H, W\)"):
        model(torch.randn(2, 1, 64, 64))


@pytest.mark.parametrize("name", MODELS)
def test_cam_layer_gives_the_last_feature_map_and_its_gradient(name):
    torch.manual_seed(0)
    model = build_model(name, dims=3, width=WIDTH).eval()
    seen, grads = [], []
    model.cam_layer.register_forward_hook(lambda m, i, o: seen.append(o.shape))
    model.cam_layer.register_full_backward_hook(lambda m, gi, go: grads.append(go[0].shape))
    x = torch.randn(1, 1, 16, 64, 64, requires_grad=True)
    model(x).sum().backward()
    assert seen[-1] == (1, model.fc.in_features, 2, 2, 2)
    assert grads == [seen[-1]]


def _calibrate_batchnorm(model: torch.nn.Module, shape: tuple[int, ...]) -> None:
    """Give BatchNorm realistic, non-trivial running statistics (as after training)."""
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.momentum = None
            if m.affine:
                torch.nn.init.uniform_(m.weight, 0.5, 1.5)
                torch.nn.init.uniform_(m.bias, -0.2, 0.2)
    with torch.no_grad():
        for _ in range(2):
            model(torch.rand(shape, dtype=torch.float64))


@pytest.mark.parametrize("name", MODELS)
def test_inflated_3d_network_equals_2d_network_on_a_still_clip(name):
    torch.manual_seed(1)
    model_2d = build_model(name, dims=2, in_channels=3, width=WIDTH, attention=True).double()
    _calibrate_batchnorm(model_2d, (4, 3, 64, 64))
    torch.nn.init.normal_(model_2d.fc.weight)
    model_2d.eval()
    model_3d = build_model(name, dims=3, in_channels=1, width=WIDTH, attention=True).double()
    model_3d.load_state_dict(inflate_2d_to_3d(model_2d.state_dict(), model_3d))
    model_3d.eval()
    frame = torch.rand(2, 1, 64, 64, dtype=torch.float64)
    with torch.no_grad():
        logit_2d = model_2d(frame.repeat(1, 3, 1, 1))
        logit_3d = model_3d(frame.unsqueeze(2).repeat(1, 1, 8, 1, 1))
    assert logit_2d.abs().max() > 0.1  # not a degenerate network
    torch.testing.assert_close(logit_3d, logit_2d, atol=1e-4, rtol=0)


def test_inflation_rejects_another_architecture():
    model_2d = build_model("resnet50", dims=2, width=WIDTH)
    model_3d = build_model("densenet121", dims=3, width=WIDTH)
    with pytest.raises(UserError, match="cannot inflate"):
        inflate_2d_to_3d(model_2d.state_dict(), model_3d)


def _frame_with_foci() -> torch.Tensor:
    """(1, 1, 64, 64): smooth background, a 3x3 bright focus at (20, 20), a 20x20 bright patch."""
    y, x = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    img = 0.2 + 0.1 * x / 64
    img[40:60, 30:50] += 0.5
    img[19:22, 19:22] += 0.6
    return img.view(1, 1, 64, 64)


def test_white_tophat_lights_small_bright_foci_not_large_bright_regions():
    img = _frame_with_foci()
    tophat = white_tophat(img, dims=2)[0, 0]
    assert tophat.min() >= -1e-6
    assert tophat[20, 20] > 0.5
    assert tophat[50, 40] < 0.05  # inside the large patch
    clip = img.unsqueeze(2).repeat(1, 1, 3, 1, 1)
    prior = calcification_prior(clip, dims=3)
    assert prior[0, 0, 1, 20, 20] == pytest.approx(1.0, abs=1e-4)
    assert prior[0, 0, 1, 50, 40] < 0.05


@pytest.mark.parametrize("shape", [(2, 1, 37, 30), (2, 1, 3, 16, 21)])
def test_fast_max_filter_equals_max_pooling(shape):
    """The separable running maximum gives max pooling's numbers, borders included."""
    from torch.nn import functional as F

    from thyrovid.models.attention import _max_filter

    x = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    if len(shape) == 4:
        expected = F.max_pool2d(x, 7, 1, 3)
    else:
        expected = F.max_pool3d(x, (1, 7, 7), 1, (0, 3, 3))
    assert torch.equal(_max_filter(x, len(shape) - 2, 7), expected)


def test_attention_map_starts_on_the_calcification():
    img = _frame_with_foci()
    prior = calcification_prior(img, dims=2)
    attention = CalcificationAttention(dims=2, channels=16)
    features = torch.ones(1, 16, 16, 16)
    out = attention(features, prior)
    amap = attention.last_map[0, 0]  # 16x16 map of the 64x64 frame: pixel (20, 20) -> (5, 5)
    assert amap[5, 5] == amap.max() and amap[5, 5] > 0.8
    assert amap[12, 10] < 0.2  # inside the large bright patch
    assert (out >= features).all() and (out <= 2 * features).all()


@pytest.mark.parametrize("name", MODELS)
def test_odd_and_small_clip_sizes_do_not_crash(name):
    model = build_model(name, dims=3, width=WIDTH, temporal_strides=(1, 2, 2, 2, 2)).eval()
    with torch.no_grad():
        for shape in [(1, 1, 13, 45, 45), (1, 1, 3, 16, 16)]:
            assert model(torch.rand(shape)).shape == (1, 1)


def test_avgmax_head_keeps_a_sign_the_average_dilutes():
    # one strong position of the last feature map (a focus in plane for a few frames): the
    # average over 2 x 4 x 4 positions shrinks it 32-fold, the max half of the head keeps it
    model = build_model("resnet50", dims=3, width=WIDTH, pool="avgmax").eval()
    c = model.out_channels
    assert model.fc.in_features == 2 * c
    spike = torch.zeros(1, c, 2, 4, 4)
    spike[0, 0, 1, 2, 3] = 3.2
    model.features = lambda x: spike
    with torch.no_grad():
        model.fc.weight.zero_()
        model.fc.bias.zero_()
        model.fc.weight[0, 0] = 1.0  # channel 0, average half
        assert model(torch.zeros(1, 1, 16, 64, 64)).item() == pytest.approx(0.1)
        model.fc.weight.zero_()
        model.fc.weight[0, c] = 1.0  # channel 0, max half
        assert model(torch.zeros(1, 1, 16, 64, 64)).item() == pytest.approx(3.2)
    with pytest.raises(UserError, match="pool"):
        build_model("resnet50", dims=3, width=WIDTH, pool="median")


def test_avgmax_head_inflates_exactly_from_2d():
    torch.manual_seed(2)
    model_2d = build_model("resnet50", dims=2, width=WIDTH, pool="avgmax").double()
    _calibrate_batchnorm(model_2d, (4, 1, 64, 64))
    torch.nn.init.normal_(model_2d.fc.weight)
    model_2d.eval()
    model_3d = build_model("resnet50", dims=3, width=WIDTH, pool="avgmax").double()
    model_3d.load_state_dict(inflate_2d_to_3d(model_2d.state_dict(), model_3d))
    model_3d.eval()
    frame = torch.rand(2, 1, 64, 64, dtype=torch.float64)
    with torch.no_grad():
        logit_2d = model_2d(frame)
        logit_3d = model_3d(frame.unsqueeze(2).repeat(1, 1, 8, 1, 1))
    torch.testing.assert_close(logit_3d, logit_2d, atol=1e-4, rtol=0)
