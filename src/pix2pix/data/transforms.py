"""Transforms on uint8 tensors, applied identically to A and B.

Decoding and resizing happen once per image (see paired.py); the random crop and flip run per
batch on tensors, driven by an explicit torch.Generator so a resumed run sees the same crops. The
crop and flip run on the tensors' device (the GPU when the data lives there).
"""

from __future__ import annotations

from collections.abc import Sequence
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
    carry: Sequence[torch.Tensor] = (),
    rows: list[int] | None = None,
    dtype: torch.dtype | None = None,
) -> tuple[torch.Tensor, ...]:
    """Crop a random window from A and B (B, C, L, L) and flip half of the time.

    `joint`: the same window and flip for A and B (a pair), or each drawn on its own (unpaired
    images). Under data parallelism a rank holds images offset..offset+B of a global batch of
    `global_n`: the crops and flips are drawn for the whole global batch and sliced, so N ranks
    augment exactly as one process would. Each map of `carry` (B, L, L), per pixel of A (its hint
    regions), is cropped and flipped with A and returned after B.

    `rows`: the batch is these rows of `a`, `b` and `carry` (a cached dataset, whole), cropped straight
    from them rather than gathered first. `dtype`: A and B cropped into this dtype, their values still
    0..255 (`images.from_uint8` then scales them in place), so that the crop is the conversion too.
    """
    n = len(rows) if rows is not None else a.shape[0]
    total = global_n or n
    windows = draw_windows((n, *a.shape[1:]), crop_size, flip, generator, offset, total)
    windows_b = windows if joint else draw_windows((n, *b.shape[1:]), crop_size, flip, generator, offset, total)
    out = (crop_flip(a, crop_size, windows, rows, dtype), crop_flip(b, crop_size, windows_b, rows, dtype))
    return (*out, *(crop_flip(m, crop_size, windows, rows) for m in carry))


def draw_windows(
    shape: Sequence[int], crop_size: int, flip: bool, generator: torch.Generator, offset: int, total: int
) -> Windows:
    n, _, h, w = shape
    sl = slice(offset, offset + n)
    tops = torch.randint(0, h - crop_size + 1, (total,), generator=generator)[sl]
    lefts = torch.randint(0, w - crop_size + 1, (total,), generator=generator)[sl]
    flips = (torch.rand(total, generator=generator) < 0.5)[sl] if flip else torch.zeros(n, dtype=torch.bool)
    return Windows(tops, lefts, flips)


def crop_flip(
    x: torch.Tensor, crop_size: int, windows: Windows, rows: list[int] | None = None, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """`x` (N, [C,] H, W) cropped to `crop_size` at each image's window, flipped where it says; with
    `rows`, the images at those rows of `x`; in `dtype` (a cast of the values) where given.

    One slice per image: the windows live on the CPU, so this never waits on a GPU, and a slice copies
    whole rows (on the CPU 5x faster than one gather of every pixel; on a GPU, N small copies)."""
    h, w = x.shape[-2:]
    tops, lefts, flips = (t.tolist() for t in windows)  # CPU tensors: no device round trip
    dtype = dtype or x.dtype
    if rows is None and h == crop_size and w == crop_size and not any(flips) and dtype == x.dtype:
        return x
    index = rows if rows is not None else range(len(tops))
    out = torch.empty(len(tops), *x.shape[1:-2], crop_size, crop_size, dtype=dtype, device=x.device)
    for i, (row, top, left, flip) in enumerate(zip(index, tops, lefts, flips)):
        patch = x[row, ..., top : top + crop_size, left : left + crop_size]
        out[i] = patch.flip(-1) if flip else patch
    return out
