"""DistributedDataParallel plumbing: works under `torchrun` (env RANK/WORLD_SIZE/LOCAL_RANK) and in a
single process alike. NCCL on CUDA, gloo on CPU.

    torchrun --nproc-per-node 2 -m emomon train --config training/configs/clean.yaml --data DIR
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

log = logging.getLogger(__name__)


@dataclass
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    owns_group: bool = False  # this process initialised the group and tears it down

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def autocast(device: torch.device, enabled: bool):
    """bf16 (or fp16) autocast on CUDA when enabled; a no-op context on CPU (training, evaluation and the
    feature cache all compute under this one context)."""
    if enabled and device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    return contextlib.nullcontext()


def pick_device(pref: str, local_rank: int = 0) -> torch.device:
    if pref == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    if pref.startswith("cuda") and not torch.cuda.is_available():
        from emomon.kernel import InputError

        raise InputError(f"device '{pref}' asked for but CUDA is not available; use --device cpu")
    if pref == "cuda":
        return torch.device(f"cuda:{local_rank}")
    return torch.device(pref)


def setup(device_pref: str = "auto") -> DistContext:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1); else a single-process context."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(device_pref, local_rank)
    if world <= 1:
        return DistContext(device=device)
    owns = False
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend)
        owns = True
    log.info("distributed: rank %d/%d on %s (%s)", rank, world, device, dist.get_backend())
    return DistContext(rank, world, local_rank, device, owns)


def cleanup(ctx: DistContext) -> None:
    if ctx.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def barrier(ctx: DistContext) -> None:
    if ctx.distributed:
        dist.barrier()


def gather_objects(ctx: DistContext, obj) -> list:
    if not ctx.distributed:
        return [obj]
    out = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def all_reduce_sum(ctx: DistContext, values: list[float]) -> list[float]:
    if not ctx.distributed:
        return values
    t = torch.tensor(values, dtype=torch.float64)
    if dist.get_backend() == "nccl":
        t = t.to(ctx.device)
    dist.all_reduce(t)
    return t.cpu().tolist()

