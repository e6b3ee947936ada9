"""The hint map's format: (B, C + 1, H, W), the hint colours (C = output_nc channels, normalised
like the image to [-1, 1], 0 where there is no hint) and a mask (1 where a hint is, FILLED where a
hint's fill reached). Painting square boxes into it, and resizing it without losing small dots."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F


def hint_channels(output_nc: int) -> int:
    return output_nc + 1


def empty_hints(n: int, output_nc: int, h: int, w: int, device: torch.device | str = "cpu") -> torch.Tensor:
    return torch.zeros(n, hint_channels(output_nc), h, w, device=device)


def square_boxes(cy: np.ndarray, cx: np.ndarray, side: Any, h: int, w: int) -> tuple[np.ndarray, ...]:
    """(top, bottom, left, right) of `side`-wide squares centred on (cy, cx), clipped to the image."""
    before = (side - 1) // 2
    return (
        np.maximum(cy - before, 0),
        np.minimum(cy - before + side, h),
        np.maximum(cx - before, 0),
        np.minimum(cx - before + side, w),
    )


def paint_boxes(
    img: np.ndarray,
    y0: np.ndarray,
    y1: np.ndarray,
    x0: np.ndarray,
    x1: np.ndarray,
    colours: np.ndarray,
    shape: tuple[int, int, int],
) -> np.ndarray:
    """A hint map (B, C + 1, H, W) float32 of K boxes on images `img` in `colours` (K, C), mask 1;
    a later box covers an earlier one, and pixels outside every box are 0."""
    b, h, w = shape
    values = np.zeros((len(img) + 1, colours.shape[1] + 1), dtype=np.float32)
    values[1:, :-1], values[1:, -1] = colours, 1.0
    # The index of the last box over each pixel (0: none), then one gather. One slice assignment per
    # box: a microsecond or two each, and memory bounded by the image whatever the boxes' size.
    index = np.zeros((b, h, w), dtype=np.int64)
    for k, (i, top, bottom, left, right) in enumerate(zip(img, y0, y1, x0, x1)):
        index[i, top:bottom, left:right] = k + 1
    return np.ascontiguousarray(values[index].transpose(0, 3, 1, 2))


def resize_hints(hints: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize a hint map (B, C + 1, H, W) to `size` (H', W') without losing small dots.

    Shrinking averages each colour over the hint pixels under the new pixel, and marks it a hint
    where any was; growing repeats pixels.
    """
    if tuple(hints.shape[-2:]) == tuple(size):
        return hints
    colour, mask = hints[:, :-1], hints[:, -1:]
    if size[0] >= hints.shape[-2] and size[1] >= hints.shape[-1]:
        return F.interpolate(hints, size=size, mode="nearest")
    weight = F.interpolate(mask, size=size, mode="area")  # fraction of hint pixels under each new pixel
    summed = F.interpolate(colour * mask, size=size, mode="area")
    new_mask = (weight > 0).to(hints.dtype)
    return torch.cat([summed / weight.clamp_min(1e-12) * new_mask, new_mask], dim=1)
