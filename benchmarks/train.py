"""Training throughput: batched on-device augmentation vs per-sample augmentation in workers.

    python benchmarks/train.py            # CPU section (default): clips/s, both pipelines
    python benchmarks/train.py --gpu      # CUDA section: 3D InceptionResNetV2 32x224x224, batch 16:
                                          # clips/s and model FLOP utilisation, fp32 eager vs
                                          # bf16 autocast + channels_last_3d (+ torch.compile)

CPU section. Project: DataLoader workers only read uint8 clips; the training process augments
the whole batch at once (`thyrovid.training.augment.augment_batch`) and steps the model. Baseline: the
same augmentation (same code, same math) done per sample inside the DataLoader workers, which
then ship float32 clips (4x the bytes) to the training process. Measured twice: the input
pipeline alone (what a GPU would be fed) and full training steps of a width-reduced network.

Prints one JSON object: medians over `--repeats` whole runs (each run's figure is itself the
median over its timed epochs), every run's figure, ratios, and the machine with its load.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from _machine import cpu_model  # benchmarks/_machine.py
from thyrovid.clips.dataset import ClipDataset, collate, to_model_input
from thyrovid.training.augment import AugmentParams, augment_batch

PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0}


def machine() -> dict:
    out = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "load_average_1min": os.getloadavg()[0],
    }
    if torch.cuda.is_available():
        out["gpu"] = torch.cuda.get_device_name()
    return out


# ------------------------------------------------------------------ CPU section


def write_clips(root: Path, n: int, frames: int, size: int) -> Path:
    """A synthetic WORK folder: n random uint8 clips (T,H,W) + clips.csv (all in train)."""
    import pandas as pd

    rng = np.random.default_rng(0)
    (root / "clips").mkdir(parents=True)
    rows = []
    for i in range(n):
        np.save(
            root / "clips" / f"c{i}.npy", rng.integers(0, 256, (frames, size, size), dtype=np.uint8)
        )
        rows.append(
            dict(clip_id=f"c{i}", patient_id=f"p{i}", nodule_id=f"p{i}", video_id=f"v{i}", center="a",
                 label=i % 2, split="train", key_frame=0, first_frame=0, n_frames=frames,
                 clip_path=f"clips/c{i}.npy", image_path="")
        )  # fmt: skip
    pd.DataFrame(rows).to_csv(root / "clips.csv", index=False)
    return root


class PerSampleAugmented(ClipDataset):
    """Baseline: the same augmentation, one clip at a time, in the DataLoader worker."""

    def __init__(self, *args, params: AugmentParams, **kwargs):
        super().__init__(*args, **kwargs)
        self.params = params

    def __getitem__(self, index: int) -> dict:
        item = super().__getitem__(index)
        x = augment_batch(item["x"][None], torch.tensor([index]), 0, 0, self.params)[0]
        return {**item, "x": x}


def time_pipeline(
    loader, model=None, optimizer=None, device_aug: bool = False, epochs: int = 2
) -> float:
    """Clips per second over `epochs` passes (the first pass is warm-up and not counted)."""
    params = AugmentParams()
    rates = []
    for epoch in range(epochs + 1):
        n, start = 0, time.perf_counter()
        for batch in loader:
            x = batch["x"]
            if device_aug:
                x = augment_batch(x, batch["index"], 0, epoch, params)
            x = to_model_input(x)
            if model is not None:
                loss = torch.nn.functional.binary_cross_entropy_with_logits(
                    model(x)[:, 0], batch["y"]
                )
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            n += len(x)
        if epoch:
            rates.append(n / (time.perf_counter() - start))
    return statistics.median(rates)


def cpu_section(args) -> dict:
    from thyrovid.models import build_model

    torch.set_num_threads(args.threads)
    out: dict = {
        "torch_threads": args.threads,
        "clips": args.clips,
        "shape": [1, args.frames, args.size, args.size],
        "batch": args.batch,
    }
    out["workers"] = args.workers
    with tempfile.TemporaryDirectory() as tmp:
        work = write_clips(Path(tmp), args.clips, args.frames, args.size)
        loader_kw = dict(batch_size=args.batch, shuffle=False, collate_fn=collate, num_workers=args.workers,
                         persistent_workers=args.workers > 0)  # fmt: skip
        device_loader = DataLoader(ClipDataset(work, None, 3), **loader_kw)
        baseline_ds = PerSampleAugmented(work, None, 3, params=AugmentParams())
        baseline_loader = DataLoader(baseline_ds, **loader_kw)
        out["pipeline_clips_per_s"] = {
            "device_batched": time_pipeline(device_loader, device_aug=True),
            "per_sample_workers": time_pipeline(baseline_loader),
        }
        torch.manual_seed(0)
        model = build_model(args.arch, dims=3, width=args.width, temporal_strides=(2, 2, 2, 2, 1))
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        out["train_clips_per_s"] = {
            "device_batched": time_pipeline(device_loader, model, opt, device_aug=True, epochs=1),
            "per_sample_workers": time_pipeline(baseline_loader, model, opt, epochs=1),
        }
        out["model"] = {"arch": args.arch, "width": args.width}
    for key in ("pipeline_clips_per_s", "train_clips_per_s"):
        d = out[key]
        d["ratio"] = d["device_batched"] / d["per_sample_workers"]
    return out


# ------------------------------------------------------------------ GPU section


def peak_tflops(name: str) -> float | None:
    return next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)


def step_flops(model, x, y) -> float:
    """FLOPs of one forward + backward (torch.utils.flop_counter)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x)[:, 0].float(), y)
        loss.backward()
    model.zero_grad(set_to_none=True)
    return float(counter.get_total_flops())


def gpu_variant(args, name: str, bf16: bool, channels_last: bool, compile_: bool) -> dict:
    from thyrovid.models import build_model

    torch.manual_seed(0)
    dev = torch.device(args.gpu_device)
    model = build_model(args.gpu_arch, dims=3, width=args.gpu_width, input_frames=args.gpu_frames)
    model = model.to(dev)
    fmt = torch.channels_last_3d if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    runner = torch.compile(model) if compile_ else model
    b, t, s = args.gpu_batch, args.gpu_frames, args.gpu_size
    clips = torch.randint(0, 256, (b, 1, t, s, s), dtype=torch.uint8, device=dev)
    y = (torch.arange(b, device=dev) % 2).float()
    params = AugmentParams()
    cuda = dev.type == "cuda"

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    def step(i: int) -> None:
        x = to_model_input(augment_batch(clips, torch.arange(b) + i * b, 0, 0, params))
        x = x.contiguous(memory_format=fmt)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
            logits = runner(x)[:, 0]
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    t0 = time.perf_counter()
    for i in range(args.warmup):
        step(i)
    sync()
    warm_s = time.perf_counter() - t0
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for i in range(args.steps):
        step(i)
    sync()
    secs = time.perf_counter() - t0
    x = to_model_input(clips).contiguous(memory_format=fmt)
    with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
        flops = step_flops(model, x, y)
    rate = b * args.steps / secs
    peak = peak_tflops(torch.cuda.get_device_name()) if cuda else None
    return {
        "clips_per_s": rate,
        "step_ms": 1000 * secs / args.steps,
        "tflops_per_step": flops / 1e12,
        "achieved_tflops": flops * args.steps / secs / 1e12,
        "mfu_vs_bf16_peak": flops * args.steps / secs / (peak * 1e12) if peak else None,
        "warmup_s": warm_s,
        "peak_mem_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
    }


def augmentation_only(args, dev: torch.device) -> dict:
    """Clips/s of the augmentation alone: batched on `dev` vs one clip at a time on one CPU core."""
    b, t, s = args.gpu_batch, args.gpu_frames, args.gpu_size
    clips = torch.randint(0, 256, (b, 1, t, s, s), dtype=torch.uint8)
    params = AugmentParams()
    on_dev = clips.to(dev)

    def batched(i: int) -> None:
        augment_batch(on_dev, torch.arange(b) + i * b, 0, 0, params)

    def per_sample(i: int) -> None:
        for j in range(b):
            augment_batch(clips[j : j + 1], torch.tensor([i * b + j]), 0, 0, params)

    out = {}
    for name, fn, reps in (
        ("device_batched", batched, 10),
        ("cpu_per_sample_1_core", per_sample, 1),
    ):
        fn(0)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for i in range(reps):
            fn(i + 1)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        out[name] = b * reps / (time.perf_counter() - t0)
    out["ratio"] = out["device_batched"] / out["cpu_per_sample_1_core"]
    return out


def gpu_section(args) -> dict:
    cuda = args.gpu_device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        return {"error": "CUDA not available"}
    torch.backends.cudnn.benchmark = True
    name = torch.cuda.get_device_name() if cuda else "cpu (dry run)"
    out = {
        "device": name,
        "peak_bf16_tflops": peak_tflops(name),
        "arch": args.gpu_arch,
        "input": [args.gpu_batch, 1, args.gpu_frames, args.gpu_size, args.gpu_size],
        "steps": args.steps,
        "warmup": args.warmup,
        "fp32_uses_tf32_convolutions": torch.backends.cudnn.allow_tf32,
        "variants": {},
    }
    variants = [
        ("fp32_eager", False, False, False),
        ("bf16_channels_last", True, True, False),
        ("bf16_channels_last_compile", True, True, True),
    ]
    start = time.perf_counter()
    try:
        with torch.no_grad():
            out["augmentation_clips_per_s"] = augmentation_only(args, torch.device(args.gpu_device))
    except Exception as exc:
        out["augmentation_clips_per_s"] = {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}
    for name, bf16, cl, comp in variants:
        if (comp and args.no_compile) or (args.variants and name not in args.variants.split(",")):
            continue
        if time.perf_counter() - start > args.budget_s:
            out["variants"][name] = {"skipped": "time budget spent"}
            continue
        batch = args.gpu_batch
        while True:
            try:
                res = gpu_variant(
                    argparse.Namespace(**{**vars(args), "gpu_batch": batch}), name, bf16, cl, comp
                )
                out["variants"][name] = {**res, "batch": batch}
            except torch.cuda.OutOfMemoryError:
                if cuda:
                    torch.cuda.empty_cache()
                if batch > 2:  # the network does not fit: measure a smaller batch, say so
                    batch //= 2
                    continue
                out["variants"][name] = {"error": "out of memory at batch 2"}
            except Exception as exc:  # keep the other variants' numbers
                out["variants"][name] = {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}
                traceback.print_exc(file=sys.stderr)
            break
        if cuda:
            torch.cuda.empty_cache()
        print(json.dumps({name: out["variants"][name]}), file=sys.stderr, flush=True)
    base = out["variants"].get("fp32_eager", {}).get("clips_per_s")
    for v in out["variants"].values():
        if base and "clips_per_s" in v:
            v["speedup_vs_fp32"] = v["clips_per_s"] / base
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gpu", "--gpu-section", action="store_true", help="run the CUDA section")
    p.add_argument("--clips", type=int, default=64)
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--threads", type=int, default=1, help="torch threads of the training process")
    p.add_argument("--arch", default="densenet121")
    p.add_argument("--width", type=float, default=0.125)
    p.add_argument("--gpu-arch", default="inception_resnet_v2")
    p.add_argument("--gpu-width", type=float, default=1.0, help="<1 only for a CPU dry run")
    p.add_argument("--gpu-device", default="cuda", help="cpu: dry run of the GPU section")
    p.add_argument("--gpu-batch", type=int, default=16)
    p.add_argument("--gpu-frames", type=int, default=32)
    p.add_argument("--gpu-size", type=int, default=224)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--budget-s", type=float, default=150.0, help="start no variant after this")
    p.add_argument("--no-compile", action="store_true")
    p.add_argument("--variants", default="", help="GPU section: comma list, e.g. fp32_eager,"
                   "bf16_channels_last_compile (default: all three)")  # fmt: skip
    p.add_argument("--repeats", type=int, default=5, help="CPU section: whole runs; medians kept")
    args = p.parse_args()
    result = {"machine": machine()}
    if args.gpu:
        result["gpu"] = gpu_section(args)
    else:
        runs = [cpu_section(args) for _ in range(args.repeats)]
        result["cpu"] = runs[0]
        for key in ("pipeline_clips_per_s", "train_clips_per_s"):
            for name in ("device_batched", "per_sample_workers", "ratio"):
                values = [r[key][name] for r in runs]
                result["cpu"][key][name] = statistics.median(values)
                result["cpu"][key][name + "_runs"] = [round(v, 3) for v in values]
        result["cpu"]["repeats"] = args.repeats
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
