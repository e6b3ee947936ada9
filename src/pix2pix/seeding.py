"""Every random draw of a run, seeded from the run's seed and where the draw happens: one module.

A run's randomness comes from `seed` (TrainConfig.seed) alone. The global torch RNG, seeded once
at the start (`seed_everything`), draws the initial weights and dropout and is saved in every
checkpoint. Every other draw takes a seed of its own from (seed, step, index) through `derive`,
so a resumed run, or a run split over ranks, draws exactly what an uninterrupted one-process run
draws, without saving any state for it:

    purpose       what it draws                                    n, i
    epoch_order   the permutation of the training pairs            epoch, -
    unpaired_b    the B images of a step (unpaired data)           step, -
    augment       the crops and flips of a step's global batch     step, -
    pool          which pooled fakes CycleGAN's D sees             step, 0 for B / 1 for A
    hints         an image's simulated hints and colour jitter     step, index in the global batch

Evaluation seeds an image's hints by its name (`name_seed`), so every run is judged on the same
hints. The formulas are the ones earlier versions used in place, kept so that runs reproduce bit
for bit across versions.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import numpy as np
import torch

_MAX = 2**63 - 1  # seeds stay below this (torch.Generator and numpy take any int up to it)

_FORMULAS: dict[str, Callable[[int, int, int], int]] = {
    "epoch_order": lambda seed, n, i: seed * 1_000_003 + n,
    "unpaired_b": lambda seed, n, i: seed * 1_000_033 + n + 7,
    "augment": lambda seed, n, i: seed * 7_919 + n,
    "pool": lambda seed, n, i: seed * 104_729 + n * 2 + i,
    "hints": lambda seed, n, i: (seed * 0x9E3779B1 + n * 0x85EBCA77 + i * 0xC2B2AE3D + 1) % _MAX,
}
PURPOSES = tuple(_FORMULAS)
JITTER_STREAM = 0x6A17  # colour jitter draws from the hints' seed, in a numpy stream of its own


def derive(purpose: str, seed: int, n: int = 0, i: int = 0) -> int:
    """The seed of one draw: `purpose` (PURPOSES), the run's `seed`, the step or epoch `n`, the index `i`."""
    if purpose not in _FORMULAS:
        raise ValueError(f"unknown seed purpose {purpose!r}; valid: {', '.join(PURPOSES)}")
    return _FORMULAS[purpose](seed, n, i)


def generator(purpose: str, seed: int, n: int = 0, i: int = 0) -> torch.Generator:
    """A CPU torch.Generator seeded for one draw (see `derive`)."""
    return torch.Generator().manual_seed(derive(purpose, seed, n, i))


def numpy_rng(seed: int, stream: int | None = None) -> np.random.Generator:
    """A numpy generator from a derived seed; `stream` gives an independent stream of the same seed."""
    return np.random.default_rng(int(seed) if stream is None else [int(seed), stream])


def name_seed(name: str) -> int:
    """A fixed seed per test image, the same for every run, so evaluations compare fairly."""
    return int(hashlib.sha256(name.encode()).hexdigest()[:15], 16)


def name_unit(name: str) -> float:
    """A number in [0, 1) from the first 8 bytes of sha256(name): the same for a name on every machine
    (dataset splits draw by name, so adding data never moves what was already split)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") / 2**64


def seed_everything(seed: int) -> None:
    """Seed the global torch RNG: initial weights and dropout (saved in checkpoints for resume)."""
    torch.manual_seed(seed)
