"""Hints simulated from a target, as training and evaluation give them to the model.

Zhang et al. 2017 ("Real-Time User-Guided Image Colorization with Learned Deep Priors") simulate
their users so: a geometric number of square patches, each filled with the patch's mean colour in
the target. Their patches are centred by a Gaussian on the image centre; on line art the
informative places are known, so here positions are drawn uniformly from the pixels worth a hint
(`hint_worth`): not line (dark in the input) and not background (white in the target and joined to
the image's border: white inside an outline is a region like any other).

Everything after `hint_worth` (labelled once per image, like the fill's regions) is batched torch on
the run's device, with fixed shapes and no host synchronisation: K patch slots per image (the
recipe's max_count; evaluation's count), of which the first n are used. Every draw is a counter-based
hash of one seed per image (`seeding.uniforms`), so a run resumed, or split over ranks, sees the same
hints on any device; evaluation seeds by the image's name, so every run is judged on the same hints."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch

from .. import seeding
from ..options import HINT_SHAPES
from .fill import Sources, regions

# A target pixel brighter than this in every channel ([-1, 1] scale; 0.94 is 247 of 255) is white
# (background where it reaches the border); an input pixel darker than 0 (128 of 255) is line.
WHITE = 0.94


LINE = 0.0


EVAL_DRAWS = 32  # evaluation draws at most this many hints per image; the first N of them are its N hints


EVAL_COUNTS = (0, 1, 2, 5, 10, 20)  # the evaluation curve's hint counts


STROKE_SQUARES = 5  # a simulated stroke: this many squares of the evaluation's side in a row, one side apart


STROKE_MATCH = 0.1  # a stroke keeps a square whose mean colour is this close (mean |diff|, [-1, 1]) to its middle's


# A hint's STROKE_SQUARES squares as offsets in sides (along its angle, across it), one row per shape: a dot
# is its middle square alone, a stroke a row, a blob a cross; the middle square (index 2) is the drawn centre.
SHAPES = torch.tensor(
    [
        [[0, 0], [0, 0], [0, 0], [0, 0], [0, 0]],  # dot
        [[-2, 0], [-1, 0], [0, 0], [1, 0], [2, 0]],  # stroke
        [[-1, 0], [0, -1], [0, 0], [0, 1], [1, 0]],  # blob
    ],
    dtype=torch.float64,
)


@dataclass(frozen=True)
class HintRecipe:
    """How many hints, and how large, training simulates per image (TrainConfig's hint_* fields)."""

    p_none: float = 0.125
    p: float = 0.125
    max_count: int = 32
    size_min: int = 1
    size_max: int = 9
    strokes: float = 0.0  # the share of hints drawn as strokes (SHAPES), the rest as the paper's single patches
    blobs: float = 0.0  # the share drawn as blobs

    @classmethod
    def from_config(cls, tc: Any) -> HintRecipe:
        return cls(
            p_none=tc.hint_p_none,
            p=tc.hint_p,
            max_count=tc.hint_max,
            size_min=tc.hint_size_min,
            size_max=tc.hint_size_max,
            strokes=tc.hint_strokes,
            blobs=tc.hint_blobs,
        )

    @property
    def group(self) -> int:
        """Patch slots per hint in `simulate_patches`' output: STROKE_SQUARES where hints take shapes, else 1."""
        return STROKE_SQUARES if self.strokes or self.blobs else 1

    def shapes(self, u: torch.Tensor) -> torch.Tensor:
        """Each hint's shape (SHAPES' row: 0 dot, 1 stroke, 2 blob) from a uniform per hint."""
        return (u >= 1 - self.strokes - self.blobs).long() + (u >= 1 - self.blobs).long()

    def counts(self, u_none: torch.Tensor, u_count: torch.Tensor) -> torch.Tensor:
        """(B,) long from two uniforms per image: 0 with probability p_none, else 1 + geometric(p)
        (mean 1 / p), at most max_count."""
        extra = (
            torch.zeros_like(u_count)
            if self.p >= 1
            else torch.floor(u_count.clamp_min(1e-300).log() / math.log1p(-self.p))
        )
        n = (1 + extra).clamp(max=self.max_count).long()
        return torch.where((u_none < self.p_none) | (self.max_count == 0), 0, n)


def eval_patch_size(size: int) -> int:
    """The patch side of evaluation hints and of a point without a size: 3 px up to 127 px images,
    then 2 px more per 64 px (9 px at 256 px, the largest patch of the recipe)."""
    return 2 * max(1, size // 64) + 1


def hint_worth(line_art: torch.Tensor | np.ndarray, target: torch.Tensor | np.ndarray) -> torch.Tensor:
    """(B, H, W) bool: where a hint is worth placing, labelled once per image on the host (SciPy).

    Not on line (dark in the input) and not on background: white target pixels connected to the
    image's border without crossing a line. White inside an outline (a white flag stripe, a white
    disc) is a region like any other and can be hinted. (An image with no such pixel is hinted
    anywhere: `simulate_patches` draws uniformly where the map is empty.)
    """
    line_art, target = (
        t.detach().float().cpu().numpy() if isinstance(t, torch.Tensor) else t for t in (line_art, target)
    )
    line = line_art.mean(axis=1) < LINE  # (B, H, W)
    labels, _, on_edge = regions((target >= WHITE).all(axis=1) & ~line)
    return torch.from_numpy(~line & ~on_edge[labels])


class Patches(NamedTuple):
    """K square patches per image: the box (B, K, 4) long (y0, y1, x0, x1: clipped, ends exclusive), centre
    (B, K, 2) long, colour (B, K, C) (the target's mean over the patch), the used slots (B, K) bool and
    each slot's pixels: flat index (B, K, S*S) long and whether each lies in the patch (B, K, S*S)."""

    box: torch.Tensor
    centre: torch.Tensor
    colour: torch.Tensor
    used: torch.Tensor
    pixels: torch.Tensor
    inside: torch.Tensor


def simulate_patches(
    target: torch.Tensor,
    worth: torch.Tensor,
    seeds: torch.Tensor,
    *,
    recipe: HintRecipe | None = None,
    count: int | None = None,
    size: int | None = None,
) -> Patches:
    """Hint patches drawn from `target` (B, C, H, W) in [-1, 1] where `worth` (B, H, W) holds, one seed
    per image (`seeds` (B,) int64 on the target's device).

    Training passes `recipe` (a random count of K = max_count slots, random sides; where the recipe has
    strokes or blobs, a share of the hints grown into those shapes by `_shaped` through the same centres,
    STROKE_SQUARES slots per hint, with shape and angle from the seed's STROKE_STREAM). Evaluation passes
    `count` (and a fixed `size`): draw i of an image is the same whatever the count, so the hints of a
    smaller count are a subset of a larger one's.
    """
    if (recipe is None) == (count is None):
        raise ValueError("simulate_hints needs either a recipe or a count")
    if count is not None and not 0 <= count <= EVAL_DRAWS:
        raise ValueError(f"hint count must be between 0 and {EVAL_DRAWS}, got {count}")
    b, c, h, w = target.shape
    if len(seeds) != b:
        raise ValueError(f"{len(seeds)} seeds for a batch of {b}")
    dev = target.device
    if recipe is not None:
        k, s_max = recipe.max_count, recipe.size_max
        u = seeding.uniforms(seeds, seeding.HINT_STREAM, 2 + 2 * k)  # (B, 2 + 2K)
        n = recipe.counts(u[:, 0], u[:, 1])
        side = recipe.size_min + (u[:, 2 : 2 + k] * (recipe.size_max - recipe.size_min + 1)).long()
        u_pos = u[:, 2 + k :]
    else:
        k, s_max = int(count), size or eval_patch_size(min(h, w))  # type: ignore[arg-type]
        u_pos = seeding.uniforms(seeds, seeding.HINT_STREAM, EVAL_DRAWS)[:, :k]
        n = torch.full((b,), k, device=dev)
        side = torch.full((b, k), s_max, device=dev)
    used = torch.arange(k, device=dev)[None, :] < n[:, None]  # (B, K)
    cy, cx = _positions(worth, u_pos)  # (B, K) each
    if recipe is not None and recipe.group > 1:  # the same centres, sides and counts, some grown into shapes
        u_shape = seeding.uniforms(seeds, seeding.STROKE_STREAM, 2 * k)  # (B, 2K): shape, angle
        shape = recipe.shapes(u_shape[:, :k])
        return _shaped(target, worth, cy, cx, side, shape, u_shape[:, k:] * (2 * math.pi), used, s_max)
    return _squares(target, cy, cx, side, used, s_max)


def _squares(
    target: torch.Tensor, cy: torch.Tensor, cx: torch.Tensor, side: torch.Tensor, used: torch.Tensor, s_max: int
) -> Patches:
    """Squares of `side` (B, K) centred on (cy, cx) (B, K), clipped to the image, each in the target's mean
    colour over it; `used` (B, K) says which slots count; `s_max` bounds the sides."""
    b, c, h, w = target.shape
    k, dev = cy.shape[1], target.device
    # Clipped squares centred on (cy, cx), and every pixel of each: (B, K, S*S) offsets from its corner.
    before = (side - 1) // 2
    y0, x0 = (cy - before).clamp_min(0), (cx - before).clamp_min(0)
    y1, x1 = (cy - before + side).clamp(max=h), (cx - before + side).clamp(max=w)
    dy, dx = (
        torch.arange(s_max * s_max, device=dev).div(s_max, rounding_mode="floor"),
        torch.arange(s_max * s_max, device=dev) % s_max,
    )
    yy, xx = y0[..., None] + dy, x0[..., None] + dx
    inside = (yy < y1[..., None]) & (xx < x1[..., None]) & used[..., None]
    pixels = yy.clamp(max=h - 1) * w + xx.clamp(max=w - 1)  # (B, K, S*S)
    values = torch.gather(target.reshape(b, c, -1), 2, pixels.reshape(b, 1, -1).expand(-1, c, -1))
    values = values.reshape(b, c, k, s_max * s_max)
    values = values.float() * inside[:, None]
    colour = values.sum(3) / inside.sum(2).clamp_min(1)[:, None]  # (B, C, K)
    box = torch.stack([y0, y1, x0, x1], 2)
    return Patches(box, torch.stack([cy, cx], 2), colour.transpose(1, 2), used, pixels, inside)


def _positions(worth: torch.Tensor, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows and columns (B, K) drawn uniformly among the pixels where `worth` (B, H, W) holds (anywhere
    where it holds nowhere) by the inverse CDF: a row by its count of such pixels, then a column in it."""
    b, h, w = worth.shape
    per_row = worth.view(torch.uint8).sum(2, dtype=torch.int32).long()  # (B, H); bytes summed: twice as fast
    empty = (per_row.sum(1) == 0)[:, None]  # an image with nothing worth a hint: every pixel is
    cdf = torch.where(empty, w, per_row).cumsum(1).double()
    v = u * cdf[:, -1:]  # (B, K)
    row = torch.searchsorted(cdf, v, right=True).clamp(max=h - 1)
    before = torch.gather(torch.nn.functional.pad(cdf, (1, 0)), 1, row)  # the count in the rows above
    pixels = torch.gather(worth, 1, row[..., None].expand(-1, -1, w))  # (B, K, W): the chosen rows
    in_row = (pixels | empty[..., None]).cumsum(2, dtype=torch.float64)
    col = torch.searchsorted(in_row, (v - before)[..., None], right=True).squeeze(-1).clamp(max=w - 1)
    return row, col


def paint_patches(patches: Patches, shape: tuple[int, int, int, int], onto: torch.Tensor | None = None) -> torch.Tensor:
    """A hint map (B, C + 1, H, W) of `patches`: each in its colour with mask 1, a later patch over an
    earlier one; `onto` (a map of that shape, written in place) or zeros beneath."""
    b, c1, h, w = shape
    dev = patches.colour.device
    out = torch.zeros(shape, dtype=patches.colour.dtype, device=dev) if onto is None else onto
    k = patches.used.shape[1]
    if k == 0:
        return out
    # Each pixel's owner, 1 + the last slot over it (0: none), as a maximum scattered into one map per image:
    # the same whatever order the writes land in, so the same on any device, with fixed shapes.
    image = torch.arange(b, device=dev)[:, None]
    pixels = patches.pixels.reshape(b, -1)  # (B, K*S*S)
    slot = (torch.arange(1, k + 1, dtype=torch.int32, device=dev)[None, :, None] * patches.inside).reshape(b, -1)
    owner = torch.zeros(b, h * w, dtype=slot.dtype, device=dev).scatter_reduce_(1, pixels, slot, "amax")
    winner = torch.gather(owner, 1, pixels)  # (B, K*S*S)
    values = torch.cat([patches.colour, torch.ones_like(patches.colour[..., :1])], 2).to(out.dtype)  # (B, K, C + 1)
    won = torch.gather(values, 1, (winner.long() - 1).clamp_min(0)[..., None].expand(-1, -1, c1))  # (B, K*S*S, C + 1)
    # Every listed pixel is written with its owner's value, or (padding of a clipped or unused slot, a pixel no
    # slot covers) with the value it holds: writes to one pixel agree.
    flat = out.view(-1)
    for ch in range(c1):
        where = (image * c1 + ch) * h * w + pixels  # (B, K*S*S)
        value = torch.where(winner > 0, won[..., ch], flat[where])
        flat.index_put_((where.reshape(-1),), value.reshape(-1))
    return out


def uncovered(labels: torch.Tensor, patches: Patches) -> torch.Tensor:
    """A copy of the region `labels` (B, H, W) with 0 on every pixel a used patch covers: the labels of the
    pixels the fill may paint (no field is ever held by label 0), in one pass over the map."""
    b, h, w = labels.shape
    at = torch.where(
        patches.inside, patches.pixels + torch.arange(b, device=patches.pixels.device)[:, None, None] * h * w, b * h * w
    )
    out = torch.cat([labels.reshape(-1), labels.new_zeros(1)])  # a spare last slot for the padding to write
    out[at.reshape(-1)] = 0
    return out[:-1].reshape(b, h, w)


def patch_sources(patches: Patches, regions: torch.Tensor, group: int = 1) -> Sources:
    """The fill's sources of simulated patches: one per patch, at its centre, weighing its pixel count,
    in the region under its centre (where the centre is on a line: the highest region it covers).

    With `group` > 1 each run of `group` slots is one hint (`_shaped`'s squares, all in the hint's colour):
    one source at its middle square, in that square's region, weighing every kept square's pixels, so a
    stroke costs the fill what a dot does."""
    b = regions.shape[0]
    mass = patches.inside.sum(2).to(patches.colour.dtype)
    if group > 1:
        mass = mass.reshape(b, -1, group).sum(2)
        patches = Patches(*(t.reshape(b, -1, group, *t.shape[2:])[:, :, group // 2] for t in patches))
    flat = regions.reshape(b, -1)  # gathered in its own dtype: only the few gathered labels become long
    covered = torch.gather(flat, 1, patches.pixels.reshape(b, -1)).reshape(patches.pixels.shape).long()
    covered = covered * patches.inside
    cy, cx = patches.centre.unbind(2)
    centre = torch.gather(flat, 1, cy * regions.shape[2] + cx).long()
    label = torch.where(centre > 0, centre, covered.amax(2)) * patches.used
    return Sources(patches.centre.to(patches.colour.dtype), patches.colour, mass, label)


def simulate_hints(
    target: torch.Tensor,
    line_art: torch.Tensor,
    seeds: Sequence[int] | torch.Tensor,
    *,
    recipe: HintRecipe | None = None,
    count: int | None = None,
    size: int | None = None,
    worth: torch.Tensor | None = None,
    shape: str = "dots",
) -> torch.Tensor:
    """A hint map (B, C + 1, H, W) drawn from `target` (B, C, H, W) in [-1, 1], one seed per image (see
    `simulate_patches`, or with `shape` "strokes" and a `count`, `stroke_patches`); `worth` (from
    `hint_worth`, labelled once per image) spares the labelling."""
    how = {"count": count, "size": size} if shape == "strokes" else {"recipe": recipe, "count": count, "size": size}
    patches = _simulate(target, line_art, seeds, worth=worth, shape=shape, **how)
    return paint_patches(patches, (target.shape[0], target.shape[1] + 1, *target.shape[-2:])).to(target.dtype)


def _simulate(
    target: torch.Tensor, line_art: torch.Tensor, seeds: Any, *, worth: Any, shape: str = "dots", **how: Any
) -> Patches:
    if worth is None:
        worth = hint_worth(line_art, target).to(target.device)
    seeds = torch.as_tensor(seeds, dtype=torch.int64).to(target.device, non_blocking=True)
    return (stroke_patches if shape == "strokes" else simulate_patches)(target, worth, seeds, **how)


JITTER_SATURATION = (0.6, 1.4)  # the saturation factor's range (PaintsTorch2's ColorJitter uses the same)


def jitter_colours(target: torch.Tensor, seeds: Sequence[int] | torch.Tensor, share: float) -> torch.Tensor:
    """`target` (B, 3, H, W) in [-1, 1] with a `share` of its images recoloured: a hue rotation by a
    uniform angle about the grey axis and a saturation factor in JITTER_SATURATION, one draw per
    image from its seed (so resume and ranks agree). Greys (white paper, black ink) stay as they are.
    Hints drawn from the recoloured target tell the model colours it cannot guess from the shapes:
    PaintsTorch2 jitters a painting and its hint source together so for the same reason."""
    if share <= 0 or target.shape[1] != 3:
        return target
    seeds = torch.as_tensor(seeds, dtype=torch.int64).to(target.device, non_blocking=True)
    u = seeding.uniforms(seeds, seeding.JITTER_STREAM, 3).float()  # (B, 3): whether, the angle, the saturation
    theta = 2 * math.pi * u[:, 1, None, None]
    sat = JITTER_SATURATION[0] + u[:, 2, None, None] * (JITTER_SATURATION[1] - JITTER_SATURATION[0])
    eye, third = torch.eye(3, device=target.device), torch.full((3, 3), 1 / 3, device=target.device)
    cross = torch.tensor([[0, -1, 1], [1, 0, -1], [-1, 1, 0]], device=target.device) / math.sqrt(3)  # x grey axis
    rot = theta.cos() * eye + (1 - theta.cos()) * third + theta.sin() * cross  # (B, 3, 3)
    m = third + sat * (rot - third)  # saturation about each pixel's grey
    m = torch.where(u[:, 0, None, None] < share, m, eye)
    # Each row of m sums to 1 (greys stay grey), so on [-1, 1] it maps x to m @ x as on [0, 1].
    b, _, h, w = target.shape
    y = torch.bmm(m, target.float().reshape(b, 3, h * w)).clamp_(-1, 1)
    return y.reshape(b, 3, h, w).to(target.dtype)


def eval_seeds(names: list[str], device: torch.device | str = "cpu") -> torch.Tensor:
    """(N,) int64: each test image's hints seed, from its name: the same for every run."""
    return torch.tensor([seeding.name_seed(n) for n in names], dtype=torch.int64).to(device)


def eval_hints(
    real_a: torch.Tensor,
    real_b: torch.Tensor,
    names: list[str],
    count: int,
    *,
    worth: torch.Tensor | None = None,
    shape: str = "dots",
) -> torch.Tensor:
    """`count` hints per image from its target, seeded by the image's name: the same for every run. `shape`
    (options.HINT_SHAPES): square dots, the standard protocol, or strokes through the same centres
    (`stroke_patches`)."""
    if shape not in HINT_SHAPES:
        raise ValueError(f"unknown hint shape {shape!r}; valid: {', '.join(HINT_SHAPES)}")
    if count > EVAL_DRAWS:
        raise ValueError(f"at most {EVAL_DRAWS} simulated hints per image, got {count}")
    return simulate_hints(real_b, real_a, eval_seeds(names, real_b.device), count=count, worth=worth, shape=shape)


def stroke_patches(
    target: torch.Tensor, worth: torch.Tensor, seeds: torch.Tensor, *, count: int, size: int | None = None
) -> Patches:
    """`count` simulated strokes per image of `target` (B, C, H, W): stroke i is a row of STROKE_SQUARES
    squares of the evaluation's side (`size`), one side apart, through the centre of the evaluation's dot i
    (so strokes nest as dots do) at an angle drawn from the seed's STROKE_STREAM, kept as `_shaped` says.
    Returned as patches, one slot per square (count x STROKE_SQUARES slots)."""
    if not 0 <= count <= EVAL_DRAWS:
        raise ValueError(f"hint count must be between 0 and {EVAL_DRAWS}, got {count}")
    b, c, h, w = target.shape
    if len(seeds) != b:
        raise ValueError(f"{len(seeds)} seeds for a batch of {b}")
    side = size or eval_patch_size(min(h, w))
    cy, cx = _positions(worth, seeding.uniforms(seeds, seeding.HINT_STREAM, EVAL_DRAWS)[:, :count])  # (B, K)
    angle = seeding.uniforms(seeds, seeding.STROKE_STREAM, EVAL_DRAWS)[:, :count] * (2 * math.pi)
    every = torch.ones_like(cy, dtype=torch.bool)
    return _shaped(target, worth, cy, cx, torch.full_like(cy, side), torch.ones_like(cy), angle, every, side)


def _shaped(
    target: torch.Tensor,
    worth: torch.Tensor,
    cy: torch.Tensor,
    cx: torch.Tensor,
    side: torch.Tensor,
    shape: torch.Tensor,
    angle: torch.Tensor,
    used: torch.Tensor,
    s_max: int,
) -> Patches:
    """Hints of STROKE_SQUARES squares each: hint k of an image (`used` (B, K)) is centred on (cy, cx), its
    squares of `side` laid out by its row of SHAPES (`shape` (B, K)), turned by `angle` (B, K) radians. A
    square is kept where its shape has it, its centre is worth a hint (`worth` (B, H, W)) and its mean colour
    is within STROKE_MATCH of the middle square's, as a user keeps a stroke inside one colour area; the hint
    takes the mean colour of its kept squares' pixels. One patch slot per square (K x STROKE_SQUARES)."""
    b, c, h, w = target.shape
    k, n = cy.shape[1], STROKE_SQUARES
    layout = SHAPES.to(target.device)[shape]  # (B, K, J, 2)
    along, across = (layout[..., 0] * side[..., None]), (layout[..., 1] * side[..., None])  # (B, K, J) float64
    sin, cos = torch.sin(angle)[..., None], torch.cos(angle)[..., None]
    sy = (cy[..., None] + (along * sin + across * cos).round().long()).clamp(0, h - 1).reshape(b, -1)  # (B, K*J)
    sx = (cx[..., None] + (along * cos - across * sin).round().long()).clamp(0, w - 1).reshape(b, -1)
    anywhere = ~worth.reshape(b, -1).any(1, keepdim=True)  # nothing worth a hint: dots go anywhere, so do shapes
    middle = torch.arange(n, device=target.device) == n // 2
    has = (layout.abs().sum(3) > 0) | middle  # (B, K, J): the squares the shape has
    on = (torch.gather(worth.reshape(b, -1), 1, sy * w + sx) | anywhere) & (has & used[..., None]).reshape(b, -1)
    squares = _squares(target, sy, sx, side[..., None].expand(-1, -1, n).reshape(b, -1), on, s_max)
    colour = squares.colour.reshape(b, k, n, c)
    keep = on.reshape(b, k, n) & ((colour - colour[:, :, n // 2 : n // 2 + 1]).abs().mean(3) <= STROKE_MATCH)
    weight = (squares.inside.sum(2).reshape(b, k, n) * keep)[..., None].to(colour.dtype)
    mean = (colour * weight).sum(2, keepdim=True) / weight.sum(2, keepdim=True).clamp_min(1)  # (B, K, 1, C)
    kept = keep.reshape(b, -1)
    return Patches(
        squares.box,
        squares.centre,
        mean.expand(-1, -1, n, -1).reshape(b, -1, c),
        kept,
        squares.pixels,
        squares.inside & kept[..., None],
    )
