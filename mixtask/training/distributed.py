"""Where training runs: device, precision, and scale-out with DistributedDataParallel.

Precision (../shared/docs/design.md, "Performance"): bf16 autocast on CPUs with native bf16 (AVX512-BF16 or
AMX), AMP (bf16, else fp16) on CUDA; `--precision fp32` turns it off.

`torchrun --nproc_per_node=N -m mixtask train ...` sets RANK / WORLD_SIZE / LOCAL_RANK; this
module turns them into a `DistContext`, joins the process group (gloo on CPU, NCCL on CUDA)
and offers the few collectives training needs. Without those variables everything is a no-op
and the run is an ordinary single process. Every rank draws its own data (its own seed); all
ranks draw the same task per step, so one task (or mix) per mini-batch still holds for the
global batch (paper, Sec. 3.3). Only rank 0 writes files.
"""

from __future__ import annotations

import contextlib
import gc
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from mixtask.errors import MixtaskError
from mixtask.inference.devices import cpu_has_fast_bf16


@dataclass(frozen=True)
class DistContext:
    """Where this process sits in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: str = "cpu"

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1


def pick_device(preference: str, local_rank: int = 0) -> str:
    """`auto` -> the local CUDA device when there is one, else the CPU."""
    if preference == "auto":
        preference = "cuda" if torch.cuda.is_available() else "cpu"
    if preference == "cuda":
        return f"cuda:{local_rank}"
    return preference


def setup(device_preference: str = "auto") -> DistContext:
    """Read torchrun's environment; join the process group when there is more than one rank."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(device_preference, local_rank)
    if world_size > 1 and not dist.is_initialized():
        if device.startswith("cuda"):
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo", rank=rank, world_size=world_size)
        share_cpu_threads(world_size, device)
    return DistContext(rank, world_size, local_rank, device)


def share_cpu_threads(world_size: int, device: str) -> None:
    """CPU ranks on one machine split the cores instead of oversubscribing them."""
    if device == "cpu" and "OMP_NUM_THREADS" not in os.environ:
        local = int(os.environ.get("LOCAL_WORLD_SIZE", world_size))
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // local))


def teardown(ctx: DistContext) -> None:
    if ctx.is_distributed and dist.is_initialized():
        # The DDP wrapper holds the process group. Left to a reference cycle, it would be freed at
        # interpreter exit, where gloo's worker threads can abort the process (SIGABRT in CI).
        gc.collect()
        dist.destroy_process_group()


def wrap_model(model: torch.nn.Module, ctx: DistContext) -> torch.nn.Module:
    """DistributedDataParallel around `model` when distributed (gradients averaged in backward)."""
    if not ctx.is_distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [torch.device(ctx.device).index] if ctx.device.startswith("cuda") else None
    # Architectures with a branch per task (sharedenc, single) leave the other branches out of a step.
    unused = model.unused_parameters
    return DistributedDataParallel(model, device_ids=device_ids, find_unused_parameters=unused)


def average_gradients(module: torch.nn.Module, ctx: DistContext) -> None:
    """All-reduce-mean the gradients of a module not wrapped in DDP (the discriminator)."""
    if not ctx.is_distributed:
        return
    for parameter in module.parameters():
        if parameter.grad is not None:
            dist.all_reduce(parameter.grad)
            parameter.grad /= ctx.world_size


def any_rank(flag: bool, ctx: DistContext) -> bool:
    """True on every rank if it is true on any rank (so all ranks stop at the same step)."""
    if not ctx.is_distributed:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=ctx.device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def mean_over_ranks(tensor: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """The mean of `tensor` over the ranks (the tensor itself when not distributed)."""
    if not ctx.is_distributed:
        return tensor
    total = tensor.detach().clone()
    dist.all_reduce(total)
    return total / ctx.world_size


def gather(obj, ctx: DistContext) -> list:
    """Every rank's `obj`, in rank order, on every rank."""
    if not ctx.is_distributed:
        return [obj]
    objects: list = [None] * ctx.world_size
    dist.all_gather_object(objects, obj)
    return objects


def barrier(ctx: DistContext) -> None:
    if ctx.is_distributed:
        dist.barrier()


# ----------------------------------------------------------------------------- precision


def autocast_dtype(choice: str, device: str) -> torch.dtype | None:
    """The autocast dtype for `--precision` on this device; None means plain fp32."""
    if choice == "fp32":
        return None
    if choice == "fp16" and not device.startswith("cuda"):
        raise MixtaskError("--precision fp16 needs a CUDA device; on CPU use bf16 or fp32")
    if choice == "auto":
        if device.startswith("cuda"):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if cpu_has_fast_bf16() else None
    return {"bf16": torch.bfloat16, "fp16": torch.float16}[choice]


def autocast(device: str, dtype: torch.dtype | None):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=dtype)
