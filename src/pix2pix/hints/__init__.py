"""Colour hints: the map a hints model takes beside its line art, simulated or given by a user.

A hint map is (B, C + 1, H, W): the hint colours (C = output_nc channels, normalised like the
image to [-1, 1], 0 where there is no hint) and a mask (1 where a hint is). The generator of a
hints model takes cat([line art, hint colours, mask]) on channels; its discriminator does not
see the hints (they are the user's, not part of the condition it judges).

One module per role: format.py (the map, boxes, resizing), simulation.py (hints drawn from a
target for training and evaluation), fill.py (regions labelled once per image; spreading hints over
them), propagate.py (hints propagated across texture but not strokes, at inference), step.py (a
training step's hints on its device), user.py (a user's points or RGBA image) and drawing.py (hints
shown on the line art).
"""

from __future__ import annotations

from .drawing import draw_hints
from .fill import (
    EXACT,
    FIELD,
    FILLED,
    GAP,
    HINT_REGIONS,
    REGION_LINE,
    Sources,
    field_stride,
    fill_as_trained,
    fill_from_sources,
    fill_labels,
    fill_regions,
    map_sources,
    paint_fields,
    region_map,
    regions,
)
from .format import empty_hints, hint_channels, paint_boxes, resize_hints, square_boxes
from .propagate import propagate, propagate_hints
from .simulation import (
    EVAL_COUNTS,
    EVAL_DRAWS,
    JITTER_SATURATION,
    LINE,
    WHITE,
    HintRecipe,
    Patches,
    eval_hints,
    eval_patch_size,
    eval_seeds,
    hint_worth,
    jitter_colours,
    paint_patches,
    patch_sources,
    simulate_hints,
    simulate_patches,
    uncovered,
)
from .step import Regions, label_images, training_hints
from .user import as_hint_map, hints_from_points, hints_from_rgba, load_hints_file, parse_points

__all__ = [
    "EVAL_COUNTS",
    "EVAL_DRAWS",
    "EXACT",
    "FIELD",
    "FILLED",
    "GAP",
    "HINT_REGIONS",
    "JITTER_SATURATION",
    "LINE",
    "REGION_LINE",
    "WHITE",
    "HintRecipe",
    "Patches",
    "Regions",
    "Sources",
    "as_hint_map",
    "uncovered",
    "draw_hints",
    "empty_hints",
    "eval_hints",
    "eval_patch_size",
    "eval_seeds",
    "field_stride",
    "fill_as_trained",
    "fill_from_sources",
    "fill_labels",
    "fill_regions",
    "hint_channels",
    "hint_worth",
    "hints_from_points",
    "hints_from_rgba",
    "jitter_colours",
    "label_images",
    "load_hints_file",
    "map_sources",
    "paint_boxes",
    "paint_fields",
    "paint_patches",
    "parse_points",
    "propagate",
    "propagate_hints",
    "patch_sources",
    "region_map",
    "regions",
    "resize_hints",
    "simulate_hints",
    "simulate_patches",
    "square_boxes",
    "training_hints",
]
