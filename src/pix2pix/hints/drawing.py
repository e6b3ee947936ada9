"""Hints drawn on their line art, to show a person what the model was given."""

from __future__ import annotations

import torch


def draw_hints(line_art: torch.Tensor, hints: torch.Tensor) -> torch.Tensor:
    """What was given, to show: the line art dimmed to grey (so white hints show) with the hint
    colours painted over it; (B, C, H, W) in [-1, 1]."""
    colour, mask = hints[:, :-1], hints[:, -1:]
    if colour.shape[1] != line_art.shape[1]:
        colour = (
            colour.mean(1, keepdim=True).expand_as(line_art) if line_art.shape[1] != 1 else colour.mean(1, keepdim=True)
        )
    dimmed = line_art * 0.6 - 0.25  # white paper -> mid grey, lines stay dark
    return dimmed * (1 - mask) + colour * mask
