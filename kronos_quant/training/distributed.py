"""Process-group plumbing for training on CPU, one GPU or several GPUs under torchrun.

``setup_distributed`` reads the variables torchrun sets (``WORLD_SIZE``, ``RANK``,
``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``), initialises the process group (NCCL on CUDA,
Gloo on CPU) and picks this process's device. Without those variables it is a plain single
process. Knows nothing about models, data or configs.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["DistContext", "setup_distributed", "teardown_distributed", "all_reduce_sums", "barrier"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistContext:
    """rank/world_size of this process; ``distributed`` when a process group is in use."""

    device: torch.device
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    distributed: bool = False
    owns_group: bool = False  # True when setup_distributed initialised the group (and must destroy it)

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _pick_device(device: str, local_rank: int) -> torch.device:
    if device == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    dev = torch.device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"runtime.device is {device!r} but CUDA is not available; use device: auto or cpu")
        if dev.index is None:
            dev = torch.device(f"cuda:{local_rank}")
    return dev


def setup_distributed(device: str = "auto") -> DistContext:
    """Join the torchrun process group when launched by torchrun, else run as one process."""
    env = os.environ
    if dist.is_available() and dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
        local = int(env.get("LOCAL_RANK", rank))
        return DistContext(_pick_device(device, local), rank, world, local, distributed=True)
    if "WORLD_SIZE" not in env or "RANK" not in env:
        return DistContext(_pick_device(device, 0))
    rank, world, local = int(env["RANK"]), int(env["WORLD_SIZE"]), int(env.get("LOCAL_RANK", 0))
    dev = _pick_device(device, local)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    backend = "nccl" if dev.type == "cuda" else "gloo"
    dist.init_process_group(backend=backend, rank=rank, world_size=world)
    logger.info("process group: rank %d of %d (%s, %s)", rank, world, backend, dev)
    return DistContext(dev, rank, world, local, distributed=True, owns_group=True)


def teardown_distributed(ctx: DistContext) -> None:
    if ctx.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def barrier(ctx: DistContext) -> None:
    if ctx.distributed:
        dist.barrier()


def all_reduce_sums(values: Sequence[float], ctx: DistContext) -> list[float]:
    """Element-wise sums of ``values`` over all processes (float64)."""
    if not ctx.distributed:
        return [float(v) for v in values]
    t = torch.tensor(list(values), dtype=torch.float64,
                     device=ctx.device if ctx.device.type == "cuda" else torch.device("cpu"))
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return [float(v) for v in t.cpu().tolist()]
