"""Transforms on uint8 tensors, applied identically to A and B.

Decoding and resizing happen once per image (see paired.py); the random crop and flip run per
batch on tensors, driven by an explicit torch.Generator so a resumed run sees the same crops.
"""

from __future__ import annotations

import torch


def random_crop_flip(
    a: torch.Tensor, b: torch.Tensor, *, crop_size: int, flip: bool, generator: torch.Generator,
    offset: int = 0, global_n: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Crop the same random window from A and B (B, C, L, L) and flip both half of the time.

    Under data parallelism a rank holds images offset..offset+B of a global batch of `global_n`:
    the crops and flips are drawn for the whole global batch and sliced, so N ranks augment
    exactly as one process would.
    """
    n, _, h, w = a.shape
    total = global_n or n
    sl = slice(offset, offset + n)
    tops = torch.randint(0, h - crop_size + 1, (total,), generator=generator)[sl].tolist()
    lefts = torch.randint(0, w - crop_size + 1, (total,), generator=generator)[sl].tolist()
    flips = (torch.rand(total, generator=generator) < 0.5)[sl].tolist() if flip else [False] * n
    if h == crop_size and w == crop_size and not any(flips):
        return a, b
    out_a, out_b = [], []
    for i in range(n):
        t, left = tops[i], lefts[i]
        pa = a[i, :, t : t + crop_size, left : left + crop_size]
        pb = b[i, :, t : t + crop_size, left : left + crop_size]
        if flips[i]:
            pa, pb = pa.flip(-1), pb.flip(-1)
        out_a.append(pa)
        out_b.append(pb)
    return torch.stack(out_a), torch.stack(out_b)


def normalize(x: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float32 [-1, 1]."""
    return x.float().div_(127.5).sub_(1.0)


def denormalize(x: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] -> float [0, 1]."""
    return (x.clamp(-1, 1) + 1) / 2
