"""Size, compute and CPU speed of the five architectures, beside MONAI's 3D DenseNet121/ResNet50.

For each architecture: parameters of the standard 2D network (3 channels, 1000 classes) and of
the 3D network used here (1 channel, 1 logit, width 1); GFLOPs of one forward pass of a
1 x 32 x 224 x 224 clip (``torch.utils.flop_counter``, 2 FLOPs per multiply-add, counted on the
meta device) for the temporal-stride policies (1,1,2,2,2) and (2,2,2,2,2), and per 224 x 224
frame in 2D; and the median forward time of one clip (batch 1, no grad, eval mode). Baseline:
``monai.networks.nets.DenseNet121(spatial_dims=3, in_channels=1, out_channels=1)`` and
``resnet50(spatial_dims=3, n_input_channels=1, num_classes=1, conv1_t_stride=2)``, what a user
would otherwise pick. With ``--train-batch N`` also the median time of one mixed-precision
training step (forward + backward + SGD) of N clips. Prints JSON.

``--equal-flops`` measures only the claim about the temporal padding: DenseNet121 and ResNet50
at (2,2,2,2,2), where they have MONAI's FLOPs, against MONAI's, forward passes interleaved
(ours, MONAI, ours, ...) so that a shared machine's load falls on both alike; the ratio is the
median of the per-round ratios. It also reports the share of our forward pass spent in the
temporal edge-replicate padding (``torch.profiler``, ``aten::replication_pad3d``).

    python benchmarks/models.py [--repeats 3] [--frames 32] [--size 224] [--device cpu|cuda]
        [--train-batch 8] [--models resnet50 densenet121]
    python benchmarks/models.py --equal-flops [--repeats 7]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from _machine import cpu_model  # benchmarks/_machine.py
from thyrovid.models import build_model, list_models

KEEP_TIME = (1, 1, 2, 2, 2)
TIME_LIKE_SPACE = (2, 2, 2, 2, 2)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def gflops(make: Callable[[], nn.Module], shape: tuple[int, ...]) -> float:
    """Forward GFLOPs of ``make()`` on one input of ``shape``, counted on the meta device."""
    with torch.device("meta"):
        model = make().eval()
        x = torch.empty(shape)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(x)
    return counter.get_total_flops() / 1e9


def forward_seconds(model: nn.Module, shape: tuple[int, ...], repeats: int, device: str) -> float:
    """Median wall time of one forward pass (after one warm-up)."""
    model = model.eval().to(device)
    x = torch.randn(shape, device=device)
    times = []
    with torch.no_grad():
        for i in range(repeats + 1):
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            start = time.perf_counter()
            model(x)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            if i:
                times.append(time.perf_counter() - start)
    return statistics.median(times)


def train_step_seconds(
    model: nn.Module, shape: tuple[int, ...], repeats: int, device: str
) -> float:
    """Median wall time of one training step (forward, backward, SGD); float16 AMP on CUDA."""
    model = model.train().to(device)
    opt = torch.optim.SGD(model.parameters(), lr=1e-4)
    x = torch.randn(shape, device=device)
    y = torch.rand(shape[0], 1, device=device)
    cuda = device.startswith("cuda")
    scaler = torch.amp.GradScaler(enabled=cuda)
    times = []
    for i in range(repeats + 2):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.float16, enabled=cuda):
            loss = nn.functional.binary_cross_entropy_with_logits(model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        if i >= 2:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def monai_baselines() -> dict[str, Callable[[], nn.Module]]:
    try:
        from monai.networks.nets import DenseNet121, resnet50
    except ImportError:
        return {}
    return {
        "monai_densenet121": lambda: DenseNet121(spatial_dims=3, in_channels=1, out_channels=1),
        "monai_resnet50": lambda: resnet50(
            spatial_dims=3, n_input_channels=1, num_classes=1, conv1_t_stride=2
        ),
    }


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def interleaved_seconds(
    models: dict[str, nn.Module], shape: tuple[int, ...], repeats: int, device: str
) -> dict[str, list[float]]:
    """Forward seconds of each model, one pass of each per round (after one warm-up round)."""
    x = torch.randn(shape, device=device)
    models = {k: m.eval().to(device) for k, m in models.items()}
    times: dict[str, list[float]] = {k: [] for k in models}
    with torch.no_grad():
        for i in range(repeats + 1):
            for name, model in models.items():
                _sync(device)
                start = time.perf_counter()
                model(x)
                _sync(device)
                if i:
                    times[name].append(time.perf_counter() - start)
    return times


def padding_share(model: nn.Module, shape: tuple[int, ...]) -> float:
    """Fraction of one CPU forward pass spent in the temporal edge-replicate padding."""
    x = torch.randn(shape)
    model = model.eval()
    with torch.no_grad():
        model(x)
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            model(x)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    pad = sum(e.self_cpu_time_total for e in events if "replication_pad" in e.key)
    return pad / total if total else float("nan")


def equal_flops(args: argparse.Namespace) -> dict:
    """Ours at (2,2,2,2,2) vs MONAI's, interleaved; see the module docstring."""
    clip = (1, 1, args.frames, args.size, args.size)
    baselines = monai_baselines()
    if not baselines:
        raise SystemExit("--equal-flops needs monai: pip install --no-deps monai (make bench)")
    rows = {}
    for name in ("densenet121", "resnet50"):

        def ours(name=name):
            return build_model(name, dims=3, temporal_strides=TIME_LIKE_SPACE)

        make_monai = baselines[f"monai_{name}"]
        times = interleaved_seconds(
            {"ours": ours(), "monai": make_monai()}, clip, args.repeats, args.device
        )
        ratios = [a / b for a, b in zip(times["ours"], times["monai"])]
        rows[name] = {
            "gflops_ours": gflops(ours, clip),
            "gflops_monai": gflops(make_monai, clip),
            "seconds_ours": statistics.median(times["ours"]),
            "seconds_monai": statistics.median(times["monai"]),
            "ratio_median_of_rounds": statistics.median(ratios),
            "ratios": [round(r, 3) for r in ratios],
        }
        if args.device == "cpu":
            rows[name]["padding_share_of_forward"] = padding_share(ours(), clip)
        print(json.dumps({name: rows[name]}), flush=True)
    return {"clip": list(clip), "repeats": args.repeats, "models": rows,
            "machine": _machine(args)}  # fmt: skip


def _machine(args: argparse.Namespace) -> dict:
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": args.device
        if args.device == "cpu"
        else torch.cuda.get_device_name(torch.device(args.device)),
        "torch": torch.__version__,
        "load_average": [round(v, 2) for v in os.getloadavg()],
    }


def measure(args: argparse.Namespace) -> dict:
    clip = (1, 1, args.frames, args.size, args.size)
    frame = (1, 1, args.size, args.size)
    rows: dict[str, dict] = {}
    for name in args.models or list_models():

        def make3d(strides=KEEP_TIME, name=name):
            return build_model(name, dims=3, temporal_strides=strides)

        with torch.device("meta"):
            p2d = n_params(build_model(name, dims=2, in_channels=3, num_classes=1000))
            p3d = n_params(make3d())
        row = {
            "params_2d_standard": p2d,
            "params_3d": p3d,
            "gflops_3d_keep_time": gflops(make3d, clip),
            "gflops_3d_time_like_space": gflops(lambda n=name: make3d(TIME_LIKE_SPACE, n), clip),
            "gflops_2d_frame": gflops(lambda n=name: build_model(n, dims=2), frame),
            "seconds_3d_keep_time": forward_seconds(make3d(), clip, args.repeats, args.device),
        }
        if args.train_batch:
            batch = (args.train_batch, *clip[1:])
            row["seconds_train_step_keep_time"] = train_step_seconds(
                make3d(), batch, args.repeats, args.device
            )
        if name in ("densenet121", "resnet50"):
            row["seconds_3d_time_like_space"] = forward_seconds(
                make3d(TIME_LIKE_SPACE), clip, args.repeats, args.device
            )
        rows[name] = row
        print(json.dumps({name: row}), flush=True)
    baselines: dict[str, dict] = {}
    for name, make in monai_baselines().items():
        try:
            baselines[name] = {
                "params_3d": n_params(make()),
                "gflops_3d": gflops(make, clip),
                "seconds_3d": forward_seconds(make(), clip, args.repeats, args.device),
            }
            if args.train_batch:
                batch = (args.train_batch, *clip[1:])
                baselines[name]["seconds_train_step"] = train_step_seconds(
                    make(), batch, args.repeats, args.device
                )
        except RuntimeError as error:  # MONAI downsamples time like space: short clips crash
            baselines[name] = {"error": str(error).splitlines()[0]}
        print(json.dumps({name: baselines[name]}), flush=True)
    ratios = {}
    for ours in ("densenet121", "resnet50"):
        base = baselines.get(f"monai_{ours}")
        if ours in rows and base and "error" not in base:
            ratios[f"{ours}_time_like_space_vs_monai_seconds"] = (
                rows[ours]["seconds_3d_time_like_space"] / base["seconds_3d"]
            )
            ratios[f"{ours}_keep_time_vs_monai_seconds"] = (
                rows[ours]["seconds_3d_keep_time"] / base["seconds_3d"]
            )
            ratios[f"{ours}_keep_time_vs_monai_gflops"] = (
                rows[ours]["gflops_3d_keep_time"] / base["gflops_3d"]
            )
    machine = _machine(args)
    return {
        "clip": list(clip),
        "repeats": args.repeats,
        "train_batch": args.train_batch,
        "models": rows,
        "baselines": baselines,
        "ratios": ratios,
        "machine": machine,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed forward passes (median)")
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch CPU threads")
    parser.add_argument(
        "--train-batch",
        type=int,
        default=0,
        help="also time a training step (AMP on CUDA) at this batch size (0: skip)",
    )
    parser.add_argument("--models", nargs="*", help="subset of list_models()")
    parser.add_argument(
        "--equal-flops",
        action="store_true",
        help="only ours vs MONAI at equal FLOPs, interleaved (the padding claim)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(json.dumps(equal_flops(args) if args.equal_flops else measure(args), indent=2))


if __name__ == "__main__":
    main()
