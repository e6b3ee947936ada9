"""Hints simulated from a target, as training and evaluation give them to the model.

Zhang et al. 2017 ("Real-Time User-Guided Image Colorization with Learned Deep Priors") simulate
their users so: a geometric number of square patches, each filled with the patch's mean colour in
the target. Their patches are centred by a Gaussian on the image centre; on line art the
informative places are known, so here positions are drawn uniformly from the pixels worth a hint:
not line (dark in the input) and not background (white in the target and joined to the image's
border: white inside an outline is a region like any other). Every draw comes from one seed per
image (seeding.py), so a run resumed, or split over ranks, sees the same hints; evaluation seeds by
the image's name, so every run is judged on the same hints."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .. import seeding
from ..images import from_unit, to_unit
from .fill import regions
from .format import paint_boxes, square_boxes

# A target pixel brighter than this in every channel ([-1, 1] scale; 0.94 is 247 of 255) is white
# (background where it reaches the border); an input pixel darker than 0 (128 of 255) is line.
WHITE = 0.94


LINE = 0.0


EVAL_DRAWS = 32  # evaluation draws this many hints per image and keeps the first N: N hints nest


EVAL_COUNTS = (0, 1, 2, 5, 10, 20)  # the evaluation curve's hint counts


@dataclass(frozen=True)
class HintRecipe:
    """How many hints, and how large, training simulates per image (TrainConfig's hint_* fields)."""

    p_none: float = 0.125
    p: float = 0.125
    max_count: int = 32
    size_min: int = 1
    size_max: int = 9

    @classmethod
    def from_config(cls, tc: Any) -> HintRecipe:
        return cls(
            p_none=tc.hint_p_none,
            p=tc.hint_p,
            max_count=tc.hint_max,
            size_min=tc.hint_size_min,
            size_max=tc.hint_size_max,
        )

    def count(self, rng: np.random.Generator) -> int:
        """0 with probability p_none, else 1 + geometric(p) (mean 1 / p), at most max_count."""
        u_none, u_count = rng.random(2).tolist()
        if u_none < self.p_none or self.max_count == 0:
            return 0
        extra = 0 if self.p >= 1 else int(math.log(max(u_count, 1e-300)) / math.log(1 - self.p))
        return min(self.max_count, 1 + extra)


def eval_patch_size(size: int) -> int:
    """The patch side of evaluation hints and of a point without a size: 3 px up to 127 px images,
    then 2 px more per 64 px (9 px at 256 px, the largest patch of the recipe)."""
    return 2 * max(1, size // 64) + 1


def hint_weights(line_art: torch.Tensor | np.ndarray, target: torch.Tensor | np.ndarray) -> np.ndarray:
    """(B, H, W) float64: 1 where a hint is worth placing, else 0.

    Not on line (dark in the input) and not on background: white target pixels connected to the
    image's border without crossing a line. White inside an outline (a white flag stripe, a white
    disc) is a region like any other and can be hinted. An image with no such pixel gets uniform
    weights, so it can still be hinted.
    """
    line_art, target = (
        t.detach().float().cpu().numpy() if isinstance(t, torch.Tensor) else t for t in (line_art, target)
    )
    line = line_art.mean(axis=1) < LINE  # (B, H, W)
    labels, _, on_edge = regions((target >= WHITE).all(axis=1) & ~line)
    weights = (~line & ~on_edge[labels]).astype(np.float64)
    weights[weights.reshape(len(weights), -1).sum(1) == 0] = 1.0
    return weights


def simulate_hints(
    target: torch.Tensor,
    line_art: torch.Tensor,
    seeds: Sequence[int],
    *,
    recipe: HintRecipe | None = None,
    count: int | None = None,
    size: int | None = None,
) -> torch.Tensor:
    """A hint map (B, C + 1, H, W) drawn from `target` (B, C, H, W) in [-1, 1], one seed per image.

    Training passes `recipe` (random count and patch sizes). Evaluation passes `count` (and a
    fixed `size`): it draws EVAL_DRAWS hints and keeps the first `count`, so the hints of a
    smaller count are a subset of a larger one's.
    """
    if (recipe is None) == (count is None):
        raise ValueError("simulate_hints needs either a recipe or a count")
    if count is not None and not 0 <= count <= EVAL_DRAWS:
        raise ValueError(f"hint count must be between 0 and {EVAL_DRAWS}, got {count}")
    b, c, h, w = target.shape
    if len(seeds) != b:
        raise ValueError(f"{len(seeds)} seeds for a batch of {b}")
    # Inverse-CDF sampling of positions: one cumulative sum per batch, then a search per image.
    # numpy throughout: a hundred small steps per batch cost microseconds here, not milliseconds.
    tgt = target.detach().float().cpu().numpy()
    cdf = hint_weights(line_art, tgt).reshape(b, -1).cumsum(1)  # (B, H*W)
    images, centres, sides = [], [], []
    for i, seed in enumerate(seeds):
        rng = seeding.numpy_rng(seed)
        if recipe is not None:
            n = draws = recipe.count(rng)
            side = rng.integers(recipe.size_min, recipe.size_max + 1, max(n, 1))[:n]
        else:
            n, draws = int(count), EVAL_DRAWS  # type: ignore[arg-type]
            side = np.full(n, size or eval_patch_size(min(h, w)))
        if n == 0:
            continue
        u = rng.random(draws)[:n] * cdf[i, -1]
        centres.append(np.minimum(np.searchsorted(cdf[i], u, side="right"), h * w - 1))
        sides.append(side)
        images.append(np.full(n, i))
    if not images:
        return torch.zeros(b, c + 1, h, w).to(target)
    img, centre, side = np.concatenate(images), np.concatenate(centres), np.concatenate(sides)
    cy, cx = centre // w, centre % w
    y0, y1, x0, x1 = square_boxes(cy, cx, side, h, w)
    # Each patch's mean colour in the target, from every pixel of every patch at once: (K, S*S)
    # offsets from each patch's corner, `inside` those within its own (clipped) square.
    s = int(side.max())
    dy, dx = np.divmod(np.arange(s * s), s)
    yy, xx = y0[:, None] + dy, x0[:, None] + dx
    inside = (yy < y1[:, None]) & (xx < x1[:, None])
    pixels = tgt[img[:, None], :, np.minimum(yy, h - 1), np.minimum(xx, w - 1)]  # (K, S*S, C)
    colours = (pixels * inside[..., None]).sum(1) / inside.sum(1)[:, None]
    return torch.from_numpy(paint_boxes(img, y0, y1, x0, x1, colours, (b, h, w))).to(target)  # (B, C + 1, H, W)


JITTER_SATURATION = (0.6, 1.4)  # the saturation factor's range (PaintsTorch2's ColorJitter uses the same)


def jitter_colours(target: torch.Tensor, seeds: Sequence[int], share: float) -> torch.Tensor:
    """`target` (B, 3, H, W) in [-1, 1] with a `share` of its images recoloured: a hue rotation by a
    uniform angle about the grey axis and a saturation factor in JITTER_SATURATION, one draw per
    image from its seed (so resume and ranks agree). Greys (white paper, black ink) stay as they are.
    Hints drawn from the recoloured target tell the model colours it cannot guess from the shapes:
    PaintsTorch2 jitters a painting and its hint source together so for the same reason."""
    if share <= 0 or target.shape[1] != 3:
        return target
    mats = []
    for seed in seeds:
        rng = seeding.numpy_rng(seed, seeding.JITTER_STREAM)  # a stream of its own: the hints' draws are unchanged
        u, angle, sat = rng.random(3)
        if u >= share:
            mats.append(np.eye(3))
            continue
        theta = 2 * math.pi * angle
        k = np.array([[0, -1, 1], [1, 0, -1], [-1, 1, 0]]) / math.sqrt(3)  # cross product with the grey axis
        rot = math.cos(theta) * np.eye(3) + (1 - math.cos(theta)) / 3 * np.ones((3, 3)) + math.sin(theta) * k
        s = JITTER_SATURATION[0] + sat * (JITTER_SATURATION[1] - JITTER_SATURATION[0])
        mats.append(np.ones((3, 3)) / 3 + s * (rot - np.ones((3, 3)) / 3))  # saturation about each pixel's grey
    m = torch.tensor(np.stack(mats), dtype=torch.float32, device=target.device)  # (B, 3, 3)
    x = to_unit(target.float())
    y = torch.einsum("bij,bjhw->bihw", m, x).clamp(0, 1)
    return from_unit(y).to(target.dtype)


def eval_hints(real_a: torch.Tensor, real_b: torch.Tensor, names: list[str], count: int) -> torch.Tensor:
    """`count` hints per image from its target, seeded by the image's name: the same for every run."""
    if count > EVAL_DRAWS:
        raise ValueError(f"at most {EVAL_DRAWS} simulated hints per image, got {count}")
    return simulate_hints(real_b, real_a, [seeding.name_seed(n) for n in names], count=count)
