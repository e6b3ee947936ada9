"""Batches in a seeded order: the same seed, epoch and position always give the same batch.

Each epoch is a permutation drawn from (seed, epoch) alone, so a resumed run picks up at the
exact batch where it stopped without saving any loader state. Cached datasets gather a batch
with one index; uncached ones decode through a DataLoader with workers.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader

from .. import seeding


def epoch_permutation(n: int, seed: int, epoch: int) -> torch.Tensor:
    return torch.randperm(n, generator=seeding.generator("epoch_order", seed, epoch))


def default_num_workers() -> int:
    """Workers to decode uncached images: the cores left after the training process, at most 8."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(0, min(8, cores - 1))


class StepBatches:
    """Index batches for steps start..total-1: a batch sampler spanning epochs.

    One DataLoader iterates it for the whole run, so worker processes start once rather than
    at every epoch (what persistent_workers buys a per-epoch loader).
    """

    def __init__(
        self,
        n: int,
        *,
        batch_size: int,
        seed: int,
        start_step: int,
        total_steps: int,
        rank: int = 0,
        world_size: int = 1,
        n_b: int | None = None,
    ) -> None:
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.start, self.total = start_step, total_steps
        self.rank, self.local = rank, batch_size // world_size
        self.steps_per_epoch = n // batch_size
        self.n_b = n_b  # unpaired data: B images are drawn on their own, from (seed, step)

    def __len__(self) -> int:
        return max(0, self.total - self.start)

    def __iter__(self) -> Iterator[list[Any]]:
        perm, perm_epoch = None, -1
        for step in range(self.start, self.total):
            epoch, pos = divmod(step, self.steps_per_epoch)
            if epoch != perm_epoch:
                perm, perm_epoch = epoch_permutation(self.n, self.seed, epoch), epoch
            first = pos * self.batch_size + self.rank * self.local
            mine = perm[first : first + self.local].tolist()
            if self.n_b is None:
                yield mine
                continue
            # Each step's B images, independent of A: drawn for the global batch, this rank's share kept.
            g = seeding.generator("unpaired_b", self.seed, step)
            b = torch.randint(0, self.n_b, (self.batch_size,), generator=g)[self.rank * self.local :][: self.local]
            yield list(zip(mine, b.tolist()))


def iterate_batches(
    dataset: Any,
    *,
    batch_size: int,
    seed: int,
    start_step: int,
    total_steps: int,
    num_workers: int = -1,
    pin_memory: bool = False,
    rank: int = 0,
    world_size: int = 1,
) -> Iterator[tuple[Any, ...]]:
    """Yield (step, A uint8, B uint8) from `start_step` up to `total_steps`, from a paired or an
    unpaired dataset. (Training crops a cached paired dataset straight from its cache, by the rows
    `StepBatches` yields, without gathering the batch first.)

    `batch_size` is the global batch; rank r of `world_size` takes its contiguous share of it.
    Incomplete batches at the end of an epoch are dropped so every step has the same size.
    """
    sampler = StepBatches(
        len(dataset),
        batch_size=batch_size,
        seed=seed,
        start_step=start_step,
        total_steps=total_steps,
        rank=rank,
        world_size=world_size,
        n_b=None if dataset.paired else dataset.n_b,
    )
    if dataset.cached:
        for step, idx in enumerate(sampler, start=start_step):
            yield (step, *dataset.batch(idx))
        return
    workers = default_num_workers() if num_workers < 0 else num_workers
    loader = DataLoader(dataset, batch_sampler=sampler, num_workers=workers, pin_memory=pin_memory)
    for step, (a, b) in enumerate(loader, start=start_step):
        yield step, a, b
