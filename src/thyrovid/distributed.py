"""Multi-GPU / multi-node plumbing for torchrun (DistributedDataParallel); a no-op without it.

`torchrun --nproc_per_node=N -m thyrovid train ...` sets RANK / WORLD_SIZE / LOCAL_RANK; the same
command without torchrun runs one process. NCCL on CUDA, gloo on CPU.

BatchNorm: with several ranks every BatchNorm layer normalises with the statistics of the GLOBAL
batch, so N ranks x (B/N) clips train the same network as one process with B clips. On CUDA that
is `torch.nn.SyncBatchNorm`; torch's SyncBatchNorm refuses CPU tensors, so on CPU/gloo the layers
become `GlobalBatchNorm`, which all-reduces the per-channel sums with the differentiable
`torch.distributed.nn.functional.all_reduce` (same parameters and buffers, same state_dict keys).
"""

from __future__ import annotations

import os
import warnings

import torch
import torch.distributed as dist
from torch import nn

from thyrovid.errors import UserError

# torch >= 2.5 deprecates the differentiable torch.distributed.nn.functional.all_reduce that
# GlobalBatchNorm needs (the suggested replacement is a private module); the FutureWarning
# would be printed twice by every rank of every CPU torchrun run, so it is hidden.
warnings.filterwarnings(
    "ignore",
    message=r"torch\.distributed\.nn\.functional\.all_reduce is deprecated",
    category=FutureWarning,
)


def resolve_device(device: str = "auto") -> str:
    """ "auto" -> "cuda" when a GPU is available, else "cpu"; anything else unchanged."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def checked_device(name: str) -> torch.device:
    """torch.device of a --device value ("auto": CUDA when there is one), checked.

    Raises:
        UserError: one line for a name that is not a device, or a GPU this machine lacks.
    """
    try:
        dev = torch.device(resolve_device(name))
    except (RuntimeError, TypeError, ValueError):
        raise UserError(f"--device {name!r}: not a device; use auto, cpu, cuda or cuda:N") from None
    problem = None
    if dev.type == "cuda" and not torch.cuda.is_available():
        problem = "no CUDA GPU is visible"
    elif dev.type == "cuda" and (dev.index or 0) >= torch.cuda.device_count():
        problem = f"only {torch.cuda.device_count()} GPU(s) visible"
    elif dev.type not in ("cpu", "cuda"):
        try:
            torch.empty(0, device=dev)
        except (RuntimeError, AssertionError) as exc:
            problem = (str(exc).strip().splitlines() or ["unavailable"])[0][:100]
    if problem:
        raise UserError(
            f"--device {name}: not usable on this machine ({problem}); use --device cpu or auto"
        )
    return dev


def inference_device(device: str) -> str:
    """`--device` as a torch device this machine has ("auto": CUDA when there is one)."""
    return str(checked_device(device))


def setup(device: str = "auto") -> tuple[int, int, torch.device]:
    """Join the process group that torchrun describes (if any) and pick this rank's device.

    Args:
        device: "auto" (CUDA when available), "cpu", "cuda" or "cuda:N". Under torchrun
            "auto"/"cuda" mean cuda:LOCAL_RANK.

    Returns:
        (rank, world_size, device); (0, 1, device) without torchrun.
    """
    rank = int(os.environ.get("RANK", 0))
    world_size = int(os.environ.get("WORLD_SIZE", 1))
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    dev = checked_device(device)
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", local_rank if world_size > 1 else torch.cuda.current_device())
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return rank, world_size, dev


def world() -> tuple[int, int]:
    """(rank, world_size) of the initialised group, (0, 1) otherwise."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main() -> bool:
    """True on rank 0 (and in a single process): the rank that writes files and progress bars."""
    return world()[0] == 0


def gather_objects(obj) -> list:
    """Every rank's `obj` (picklable), in rank order, on every rank; [obj] without a group."""
    _, size = world()
    if size == 1:
        return [obj]
    out = [None] * size
    dist.all_gather_object(out, obj)
    return out


def barrier() -> None:
    """Wait for all ranks (no-op without a group)."""
    if world()[1] > 1:
        dist.barrier()


def broadcast_object(obj, src: int = 0):
    """`obj` from rank `src` on every rank (identity without a group)."""
    if world()[1] == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def cleanup() -> None:
    """Leave the process group (no-op without one)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm over the global batch of all ranks, for any device (CPU/gloo included).

    Training with a process group: mean and (biased) variance per channel come from
    all-reduced sums over every rank's clips (two passes, for accuracy), and the running
    variance uses the unbiased global estimate, exactly as one BatchNorm over the whole batch.
    Otherwise it is a plain BatchNorm. Input (B, C, ...) with any number of trailing axes.
    """

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and world()[1] > 1):
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce

        axes = [0, *range(2, x.dim())]
        shape = (1, -1) + (1,) * (x.dim() - 2)
        count = torch.tensor([x.numel() // x.shape[1]], dtype=x.dtype, device=x.device)
        sums = all_reduce(torch.cat([x.sum(axes), count]))
        n = sums[-1]
        mean = sums[:-1] / n
        centred = x - mean.view(shape)
        var = all_reduce(centred.pow(2).sum(axes)) / n
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = (
                    self.momentum
                    if self.momentum is not None
                    else 1.0 / float(self.num_batches_tracked)
                )
                self.running_mean.lerp_(mean.detach(), m)
                self.running_var.lerp_(var.detach() * n / (n - 1).clamp(min=1), m)
        y = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y


def convert_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """Make every BatchNorm of `module` use global-batch statistics (call when world_size > 1).

    CUDA: torch.nn.SyncBatchNorm. Other devices: `GlobalBatchNorm` (same tensors, same keys).
    """
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    return _to_global_bn(module)


def _to_global_bn(module: nn.Module) -> nn.Module:
    out = module
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(
        module, GlobalBatchNorm
    ):
        out = GlobalBatchNorm(
            module.num_features,
            module.eps,
            module.momentum,
            module.affine,
            module.track_running_stats,
        )
        if module.affine:
            out.weight, out.bias = module.weight, module.bias
        if module.track_running_stats:
            out.running_mean, out.running_var = module.running_mean, module.running_var
            out.num_batches_tracked = module.num_batches_tracked
        out.train(module.training)
    for name, child in module.named_children():
        out.add_module(name, _to_global_bn(child))
    return out


def wrap_ddp(model: nn.Module, device: torch.device) -> nn.Module:
    """Wrap in DistributedDataParallel when a group of more than one rank exists."""
    if world()[1] == 1:
        return model
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)
