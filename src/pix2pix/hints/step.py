"""The hints of a training step, on the step's device: the regions labelled once per image (`label_images`,
when the dataset is cached), then per step the colour jitter, the simulated patches, their hint map and
the fill, all batched torch with no host synchronisation (tests/test_hint_step.py holds it to that)."""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from tqdm.auto import tqdm

from ..images import from_uint8
from .fill import paint_fields, region_map
from .simulation import (
    HintRecipe,
    hint_worth,
    jitter_colours,
    paint_patches,
    patch_sources,
    simulate_patches,
    uncovered,
)

LABEL_CHUNK = 256  # images labelled per SciPy call when a dataset is cached


class Regions(NamedTuple):
    """The hint regions of images, labelled once (`label_images`) and cropped with them: the fill's region
    labels (N, H, W) float32 (exact below 2**24; the fill tests them as floats, so the cache spares it a
    conversion per step) and where a hint is worth placing (N, H, W) bool."""

    labels: torch.Tensor
    worth: torch.Tensor


def label_images(a_u8: torch.Tensor, b_u8: torch.Tensor, mode: str, *, progress: bool = False) -> Regions:
    """The `Regions` of a decoded dataset's line art `a_u8` and targets `b_u8` (N, C, H, W) uint8: the
    fill's regions in `mode` and where hints are worth placing, once per image. Labels come from the
    whole (load-size) image, so a crop keeps a region whole even where the crop cuts it in two, and a
    region the crop pushes against its border is still not the page."""
    n, hw = a_u8.shape[0], a_u8.shape[-2:]
    if hw[0] * hw[1] > 2**24:
        raise ValueError(f"images of {hw[0]} x {hw[1]} px are too large to cache their hint regions (at most 2**24 px)")
    out = Regions(torch.empty(n, *hw, dtype=torch.float32), torch.empty(n, *hw, dtype=torch.bool))
    for lo in tqdm(range(0, n, LABEL_CHUNK), desc="label regions", unit="chunk", disable=not progress, leave=False):
        a, b = from_uint8(a_u8[lo : lo + LABEL_CHUNK]), from_uint8(b_u8[lo : lo + LABEL_CHUNK])
        out.labels[lo : lo + LABEL_CHUNK] = region_map(a, mode)
        out.worth[lo : lo + LABEL_CHUNK] = hint_worth(a, b)
    return out


def training_hints(
    real_a: torch.Tensor,
    real_b: torch.Tensor,
    seeds: torch.Tensor,
    *,
    recipe: HintRecipe,
    model: Any,
    jitter: float = 0.0,
    regions: Regions | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(target, hint map) of a step: `real_b` recoloured for a `jitter` share of images, hints drawn
    from it by `recipe` and, for a `model` with hint_fill, filled over their regions.

    `regions` (cropped with the images) come from the cache; without them the step labels its crops itself."""
    if regions is None:
        mode = model.hint_regions if model.hint_fill else "closed"
        regions = Regions(
            *(t.to(real_a.device) for t in (region_map(real_a, mode).float(), hint_worth(real_a, real_b)))
        )
    labels, worth = regions
    if jitter:
        real_b = jitter_colours(real_b, seeds, jitter)
    patches = simulate_patches(real_b, worth, seeds, recipe=recipe)
    b, c, h, w = real_b.shape
    filled = None
    if model.hint_fill:  # the fill first, the patches over it: every pixel of the map is written once
        sources = patch_sources(patches, labels, recipe.group)  # a stroke or blob is one source, as a dot
        free = uncovered(labels, patches)  # the labels with the hints' own pixels 0: what the fill may paint
        filled = paint_fields(free, None, sources, blend=model.hint_blend, channels=c, cells=labels)
    return real_b, paint_patches(patches, (b, c + 1, h, w), onto=filled).to(real_b.dtype)
