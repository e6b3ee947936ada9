"""Colour hints: the map a hints model takes beside its line art, simulated or given by a user.

A hint map is (B, C + 1, H, W): the hint colours (C = output_nc channels, normalised like the
image to [-1, 1], 0 where there is no hint) and a mask (1 where a hint is). The generator of a
hints model takes cat([line art, hint colours, mask]) on channels; its discriminator does not
see the hints (they are the user's, not part of the condition it judges).

One module per role: format.py (the map, boxes, resizing), simulation.py (hints drawn from a
target for training and evaluation), fill.py (spreading hints over their regions), user.py (a
user's points or RGBA image) and drawing.py (hints shown on the line art).
"""

from __future__ import annotations

from .drawing import draw_hints
from .fill import (
    BLEND_WEIGHTS,
    FILLED,
    GAP,
    HINT_REGIONS,
    REGION_LINE,
    fill_as_trained,
    fill_labels,
    fill_regions,
    regions,
)
from .format import empty_hints, hint_channels, paint_boxes, resize_hints, square_boxes
from .simulation import (
    EVAL_COUNTS,
    EVAL_DRAWS,
    JITTER_SATURATION,
    LINE,
    WHITE,
    HintRecipe,
    eval_hints,
    eval_patch_size,
    hint_weights,
    jitter_colours,
    simulate_hints,
)
from .user import as_hint_map, hints_from_points, hints_from_rgba, load_hints_file, parse_points

__all__ = [
    "BLEND_WEIGHTS",
    "EVAL_COUNTS",
    "EVAL_DRAWS",
    "FILLED",
    "GAP",
    "HINT_REGIONS",
    "JITTER_SATURATION",
    "LINE",
    "REGION_LINE",
    "WHITE",
    "HintRecipe",
    "as_hint_map",
    "draw_hints",
    "empty_hints",
    "eval_hints",
    "eval_patch_size",
    "fill_as_trained",
    "fill_labels",
    "fill_regions",
    "hint_channels",
    "hint_weights",
    "hints_from_points",
    "hints_from_rgba",
    "jitter_colours",
    "load_hints_file",
    "paint_boxes",
    "parse_points",
    "regions",
    "resize_hints",
    "simulate_hints",
    "square_boxes",
]
