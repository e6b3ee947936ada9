"""The hints of a training step, on the step's device: the regions labelled once per image (`label_images`,
when the dataset is cached), then per step the colour jitter, the simulated patches, their hint map and
the fill, all batched torch with no host synchronisation (tests/test_hint_step.py holds it to that)."""

from __future__ import annotations

from typing import Any

import torch
from tqdm.auto import tqdm

from ..images import from_uint8
from .fill import paint_fields, region_map
from .simulation import (
    HintRecipe,
    covered_pixels,
    hint_worth,
    jitter_colours,
    paint_patches,
    patch_sources,
    simulate_patches,
)

LABEL_CHUNK = 256  # images labelled per SciPy call when a dataset is cached


def pack_regions(labels: torch.Tensor, worth: torch.Tensor) -> torch.Tensor:
    """One int32 map (B, H, W) per image: its fill region (label) << 1 | whether a hint is worth placing."""
    return (labels.to(torch.int32) << 1) | worth.to(torch.int32)


def unpack_regions(packed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(labels, worth) from `pack_regions`; the crop and flip carry the packed map with its image."""
    return packed >> 1, (packed & 1).bool()


def label_images(a_u8: torch.Tensor, b_u8: torch.Tensor, mode: str, *, progress: bool = False) -> torch.Tensor:
    """The packed regions (N, H, W) int32 of a decoded dataset's line art `a_u8` and targets `b_u8`
    (N, C, H, W) uint8: the fill's regions in `mode` and where hints are worth placing, once per image.
    Labels come from the whole (load-size) image, so a crop keeps a region whole even where the crop
    cuts it in two, and a region the crop pushes against its border is still not the page."""
    out = torch.empty(a_u8.shape[0], *a_u8.shape[-2:], dtype=torch.int32)
    for lo in tqdm(
        range(0, len(a_u8), LABEL_CHUNK), desc="label regions", unit="chunk", disable=not progress, leave=False
    ):
        a, b = from_uint8(a_u8[lo : lo + LABEL_CHUNK]), from_uint8(b_u8[lo : lo + LABEL_CHUNK])
        out[lo : lo + LABEL_CHUNK] = pack_regions(region_map(a, mode), hint_worth(a, b))
    return out


def training_hints(
    real_a: torch.Tensor,
    real_b: torch.Tensor,
    seeds: torch.Tensor,
    *,
    recipe: HintRecipe,
    model: Any,
    jitter: float = 0.0,
    regions: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(target, hint map) of a step: `real_b` recoloured for a `jitter` share of images, hints drawn
    from it by `recipe` and, for a `model` with hint_fill, filled over their regions.

    `regions` (B, H, W) packed (`pack_regions`, cropped with the images) come from the cache; without
    them the step labels its crops itself."""
    if regions is None:
        mode = model.hint_regions if model.hint_fill else "closed"
        regions = pack_regions(region_map(real_a, mode), hint_worth(real_a, real_b)).to(real_a.device)
    labels, worth = unpack_regions(regions)
    if jitter:
        real_b = jitter_colours(real_b, seeds, jitter)
    patches = simulate_patches(real_b, worth, seeds, recipe=recipe)
    b, c, h, w = real_b.shape
    filled = None
    if model.hint_fill:  # the fill first, the patches over it: every pixel of the map is written once
        free = ~covered_pixels(patches, (b, h, w))
        sources = patch_sources(patches, labels, recipe.group)  # a stroke or blob is one source, as a dot
        filled = paint_fields(labels, free, sources, blend=model.hint_blend, channels=c)
    return real_b, paint_patches(patches, (b, c + 1, h, w), onto=filled).to(real_b.dtype)
