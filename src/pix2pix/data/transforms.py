"""Transforms on uint8 tensors, applied identically to A and B.

Decoding and resizing happen once per image (see paired.py); the random crop and flip run per
batch on tensors, driven by an explicit torch.Generator so a resumed run sees the same crops.
"""

from __future__ import annotations

import torch


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
) -> tuple[torch.Tensor, torch.Tensor]:
    """Crop a random window from A and B (B, C, L, L) and flip half of the time.

    `joint`: the same window and flip for A and B (a pair), or each drawn on its own (unpaired
    images). Under data parallelism a rank holds images offset..offset+B of a global batch of
    `global_n`: the crops and flips are drawn for the whole global batch and sliced, so N ranks
    augment exactly as one process would.
    """
    total = global_n or a.shape[0]
    windows = _draw_windows(a.shape, crop_size, flip, generator, offset, total)
    if joint:
        return _apply(a, crop_size, *windows), _apply(b, crop_size, *windows)
    windows_b = _draw_windows(b.shape, crop_size, flip, generator, offset, total)
    return _apply(a, crop_size, *windows), _apply(b, crop_size, *windows_b)


def _draw_windows(
    shape: torch.Size, crop_size: int, flip: bool, generator: torch.Generator, offset: int, total: int
) -> tuple[list[int], list[int], list[bool]]:
    n, _, h, w = shape
    sl = slice(offset, offset + n)
    tops = torch.randint(0, h - crop_size + 1, (total,), generator=generator)[sl].tolist()
    lefts = torch.randint(0, w - crop_size + 1, (total,), generator=generator)[sl].tolist()
    flips = (torch.rand(total, generator=generator) < 0.5)[sl].tolist() if flip else [False] * n
    return tops, lefts, flips


def _apply(x: torch.Tensor, crop_size: int, tops: list[int], lefts: list[int], flips: list[bool]) -> torch.Tensor:
    h, w = x.shape[-2:]
    if h == crop_size and w == crop_size and not any(flips):
        return x
    out = []
    for i in range(x.shape[0]):
        t, left = tops[i], lefts[i]
        patch = x[i, :, t : t + crop_size, left : left + crop_size]
        out.append(patch.flip(-1) if flips[i] else patch)
    return torch.stack(out)
