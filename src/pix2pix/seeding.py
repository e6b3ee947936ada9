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
# `uniforms` streams of an image's hints seed: its hints, its colour jitter, the angles of its simulated strokes
HINT_STREAM, JITTER_STREAM, STROKE_STREAM = 1, 2, 3


def derive(purpose: str, seed: int, n: int = 0, i: int = 0) -> int:
    """The seed of one draw: `purpose` (PURPOSES), the run's `seed`, the step or epoch `n`, the index `i`."""
    if purpose not in _FORMULAS:
        raise ValueError(f"unknown seed purpose {purpose!r}; valid: {', '.join(PURPOSES)}")
    return _FORMULAS[purpose](seed, n, i)


def hint_seeds(seed: int, step: int, first: int, count: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """(count,) int64: derive("hints", seed, step, first + i) for i < count, made on `device` from two
    numbers (the formula is linear in i), so a step's seeds need no per-image loop or host copy."""
    base, stride = derive("hints", seed, step, first), 0xC2B2AE3D
    room = _MAX - base  # base + i * stride wraps past _MAX where i * stride reaches this
    i = torch.arange(count, device=device, dtype=torch.int64) * stride
    return torch.where(i < room, i + base, i - room)


_M32 = 0xFFFFFFFF


def _mix32(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer hash (two multiply-xorshift rounds) on int64 tensors holding values below 2**32:
    every product stays below 2**59, so it is exact on every device."""
    x = ((x ^ (x >> 16)) * 0x45D9F3B) & _M32
    x = ((x ^ (x >> 16)) * 0x45D9F3B) & _M32
    return x ^ (x >> 16)


def uniforms(seeds: torch.Tensor, stream: int, n: int) -> torch.Tensor:
    """(B, n) float64 in [0, 1): draw i of image b, a hash of (seeds[b], stream, i) on the seeds' device.

    Counter-based, like Philox: draw i does not depend on how many draws were taken before it, so
    evaluation's first N hints are a subset of its first N + 1, a resumed run draws what an unbroken one
    did, and CPU and GPU draw the same numbers, all without a generator's state or a host round trip."""
    if not 0 <= stream < 2**12:
        raise ValueError(f"stream must be in [0, 4096), got {stream}")
    s = seeds.to(torch.int64)[:, None]
    counter = torch.arange(n, device=s.device, dtype=torch.int64)[None, :] + (stream << 20)
    h = _mix32(((s >> 32) & _M32) ^ _mix32(counter))
    hi = _mix32((s & _M32) ^ h)  # 32 bits, then 21 more from a second round: 53 in all, a float64's mantissa
    lo = _mix32(hi ^ 0x5BD1E995) >> 11
    return (hi * 2**21 + lo).double() / 2**53


def generator(purpose: str, seed: int, n: int = 0, i: int = 0) -> torch.Generator:
    """A CPU torch.Generator seeded for one draw (see `derive`)."""
    return torch.Generator().manual_seed(derive(purpose, seed, n, i))


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
