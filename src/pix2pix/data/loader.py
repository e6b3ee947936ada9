"""Batches in a seeded order: the same seed, epoch and position always give the same batch.

Each epoch is a permutation drawn from (seed, epoch) alone, so a resumed run picks up at the
exact batch where it stopped without saving any loader state. Cached datasets gather a batch
with one index; uncached ones decode through a DataLoader with workers.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader

from .paired import PairedDataset


def epoch_permutation(n: int, seed: int, epoch: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g)


def default_num_workers() -> int:
    """Workers to decode uncached images: the cores left after the training process, at most 8."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(0, min(8, cores - 1))


def iterate_batches(
    dataset: PairedDataset,
    *,
    batch_size: int,
    seed: int,
    start_step: int,
    total_steps: int,
    num_workers: int = -1,
    pin_memory: bool = False,
    rank: int = 0,
    world_size: int = 1,
) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
    """Yield (step, A uint8, B uint8) from `start_step` up to `total_steps`.

    `batch_size` is the global batch; rank r of `world_size` takes its contiguous share of it.
    Incomplete batches at the end of an epoch are dropped so every step has the same size.
    """
    steps_per_epoch = len(dataset) // batch_size
    local = batch_size // world_size
    step = start_step
    while step < total_steps:
        epoch, pos = divmod(step, steps_per_epoch)
        perm = epoch_permutation(len(dataset), seed, epoch)
        last = min(steps_per_epoch, pos + (total_steps - step))
        batches = [
            perm[i * batch_size + rank * local : i * batch_size + (rank + 1) * local] for i in range(pos, last)
        ]
        if dataset.cached:
            for idx in batches:
                a, b = dataset.batch(idx)
                yield step, a, b
                step += 1
        else:
            workers = default_num_workers() if num_workers < 0 else num_workers
            loader = DataLoader(
                dataset,
                batch_sampler=[idx.tolist() for idx in batches],
                num_workers=workers,
                pin_memory=pin_memory,
            )
            for a, b in loader:
                yield step, a, b
                step += 1
