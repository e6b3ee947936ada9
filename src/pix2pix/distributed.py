"""Distributed helpers that work with or without an initialised process group.

`torchrun` sets RANK, WORLD_SIZE and LOCAL_RANK; the same training code runs alone (no such
variables) or as one of N processes: gloo on CPU, NCCL on CUDA, one GPU per local rank.
"""

from __future__ import annotations

import os
from datetime import timedelta

import torch
import torch.distributed as dist


def env_world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else int(os.environ.get("RANK", "0"))


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def init_distributed(device: torch.device) -> tuple[torch.device, bool]:
    """Join the process group torchrun describes; return (this rank's device, whether we joined)."""
    if env_world_size() <= 1 or (dist.is_available() and dist.is_initialized()):
        return device, False
    if device.type == "cuda":
        device = torch.device("cuda", local_rank())
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        backend = "gloo"
    dist.init_process_group(backend=backend, timeout=timedelta(minutes=10))
    return device, True


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def all_reduce_mean(t: torch.Tensor) -> torch.Tensor:
    """Mean over ranks (identity without a process group)."""
    if dist.is_available() and dist.is_initialized():
        t = t.clone()
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        t /= dist.get_world_size()
    return t


def broadcast_from_rank0(value: object) -> object:
    """Rank 0's `value` on every rank (the value itself without a process group)."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]
    return value


def cleanup(joined: bool) -> None:
    if joined and dist.is_initialized():
        dist.destroy_process_group()
