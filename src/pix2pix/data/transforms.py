"""Transforms on uint8 tensors, applied identically to A and B.

Decoding and resizing happen once per image (see paired.py); the random crop and flip run per
batch on tensors, driven by an explicit torch.Generator so a resumed run sees the same crops. The
crop and flip run on the tensors' device (the GPU when the data lives there).
"""

from __future__ import annotations

from typing import NamedTuple

import torch


class Windows(NamedTuple):
    """Each image's crop: top and left rows (N,) long and whether it is flipped (N,) bool, on the CPU."""

    tops: torch.Tensor
    lefts: torch.Tensor
    flips: torch.Tensor


def random_crop_flip(
    a: torch.Tensor,
    b: torch.Tensor,
    *,
    crop_size: int,
    flip: bool,
    generator: torch.Generator,
    offset: int = 0,
    global_n: int | None = None,
    joint: bool = True,
    carry: torch.Tensor | None = None,
) -> tuple[torch.Tensor, ...]:
    """Crop a random window from A and B (B, C, L, L) and flip half of the time.

    `joint`: the same window and flip for A and B (a pair), or each drawn on its own (unpaired
    images). Under data parallelism a rank holds images offset..offset+B of a global batch of
    `global_n`: the crops and flips are drawn for the whole global batch and sliced, so N ranks
    augment exactly as one process would. `carry` (B, L, L), a per-pixel map of A (its hint
    regions), is cropped and flipped with A and returned third.
    """
    total = global_n or a.shape[0]
    windows = draw_windows(a.shape, crop_size, flip, generator, offset, total)
    windows_b = windows if joint else draw_windows(b.shape, crop_size, flip, generator, offset, total)
    out = (crop_flip(a, crop_size, windows), crop_flip(b, crop_size, windows_b))
    return out if carry is None else (*out, crop_flip(carry[:, None], crop_size, windows)[:, 0])


def draw_windows(
    shape: torch.Size, crop_size: int, flip: bool, generator: torch.Generator, offset: int, total: int
) -> Windows:
    n, _, h, w = shape
    sl = slice(offset, offset + n)
    tops = torch.randint(0, h - crop_size + 1, (total,), generator=generator)[sl]
    lefts = torch.randint(0, w - crop_size + 1, (total,), generator=generator)[sl]
    flips = (torch.rand(total, generator=generator) < 0.5)[sl] if flip else torch.zeros(n, dtype=torch.bool)
    return Windows(tops, lefts, flips)


def crop_flip(x: torch.Tensor, crop_size: int, windows: Windows) -> torch.Tensor:
    """`x` (N, C, H, W) cropped to `crop_size` at each image's window, flipped where it says.

    One slice per image: the windows live on the CPU, so this never waits on a GPU, and a slice copies
    whole rows (on the CPU 5x faster than one gather of every pixel; on a GPU, N small copies)."""
    n, c, h, w = x.shape
    tops, lefts, flips = (t.tolist() for t in windows)  # CPU tensors: no device round trip
    if h == crop_size and w == crop_size and not any(flips):
        return x
    out = torch.empty(n, c, crop_size, crop_size, dtype=x.dtype, device=x.device)
    for i, (top, left, flip) in enumerate(zip(tops, lefts, flips)):
        patch = x[i, :, top : top + crop_size, left : left + crop_size]
        out[i] = patch.flip(-1) if flip else patch
    return out
