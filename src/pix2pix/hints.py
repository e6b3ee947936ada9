"""Colour hints: the map a hints model takes beside its line art, simulated or given by a user.

A hint map is (B, C + 1, H, W): the hint colours (C = output_nc channels, normalised like the
image to [-1, 1], 0 where there is no hint) and a mask (1 where a hint is). The generator of a
hints model takes cat([line art, hint colours, mask]) on channels; its discriminator does not
see the hints (they are the user's, not part of the condition it judges).

While training, hints are simulated from the target as Zhang et al. 2017 ("Real-Time
User-Guided Image Colorization with Learned Deep Priors") simulate their users: a geometric
number of square patches, each filled with the patch's mean colour in the target. Their patches
are centred by a Gaussian on the image centre; on line art the informative places are known, so
here positions are drawn uniformly from the pixels worth a hint: not line (dark in the input) and
not background (white in the target and joined to the image's border: white inside an outline is
a region like any other). Every draw comes from one seed per image, so a run
resumed, or split over ranks, sees the same hints.

Users give hints as an RGBA image of the sketch's size (alpha > 0 marks a hint, its RGB is the
colour) or as a list of points {"x", "y", "color": "#rrggbb", "size"}.

With `model.hint_fill`, each hint also spreads over its region of the line art before the
generator sees it (`fill_regions`: a paint bucket, as colouring tools have): the pixels of a closed
region that holds a hint take the nearest hint's colour with mask FILLED (0.5), so a dot tells the
network the colour of the whole region, not only of the pixels it covers. With `model.hint_blend`
they take the region's hint colours weighted by 1 / distance² instead, so two hints in one region
(two stripes of a flag that its outline does not separate) meet in a gradient, not a hard edge. The
network still decides where lines leak or a region is not one colour. Simulated hints, a user's
hints and evaluation hints all go through the same fill, in `Pix2Pix.translate_tensor` and the
training step.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageColor

# A target pixel brighter than this in every channel ([-1, 1] scale; 0.94 is 247 of 255) is white
# (background where it reaches the border); an input pixel darker than 0 (128 of 255) is line.
WHITE = 0.94
LINE = 0.0
# The fill's region boundaries: an input pixel darker than this (0.6 is 204 of 255) bounds a region.
# Anti-aliased lines at 64 px are grey at their thin points; at LINE, most outlines leak.
REGION_LINE = 0.6
FILLED = 0.5  # the mask value of a pixel that a hint's fill reached (a hint itself is 1)
# Which regions the fill paints (model.hint_regions). "closed": regions an outline closes and that do not
# touch the image's border (the built-in emoji: a white page around closed outlines). "open": for line art
# whose outlines do not close (painted illustrations, flags, shading): gaps in strokes up to GAP px wide
# are closed first, and only the page (the largest region touching the border) is left unpainted.
HINT_REGIONS = ("closed", "open")
GAP = 2
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
        return cls(p_none=tc.hint_p_none, p=tc.hint_p, max_count=tc.hint_max, size_min=tc.hint_size_min,
                   size_max=tc.hint_size_max)  # fmt: skip

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


def hint_channels(output_nc: int) -> int:
    return output_nc + 1


def empty_hints(n: int, output_nc: int, h: int, w: int, device: torch.device | str = "cpu") -> torch.Tensor:
    return torch.zeros(n, hint_channels(output_nc), h, w, device=device)


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


def regions(pixels: np.ndarray) -> tuple[np.ndarray, int, np.ndarray]:
    """Label the 4-connected regions of `pixels` (B, H, W) bool: one labelling for the batch, never
    joining two images. Returns the labels (0 outside `pixels`), their count n, and (n + 1,) bool:
    whether each label touches its image's border (False for 0)."""
    from scipy.ndimage import label

    structure = np.zeros((3, 3, 3), dtype=bool)
    structure[1] = [[0, 1, 0], [1, 1, 1], [0, 1, 0]]
    labels, n = label(pixels, structure=structure)
    on_border = np.zeros(n + 1, dtype=bool)
    for edge in (labels[:, 0], labels[:, -1], labels[:, :, 0], labels[:, :, -1]):
        on_border[edge.ravel()] = True
    on_border[0] = False
    return labels, n, on_border


def seed_for(seed: int, step: int, index: int) -> int:
    """A seed for image `index` of the global batch at `step`: resume and ranks see the same hints."""
    return (seed * 0x9E3779B1 + step * 0x85EBCA77 + index * 0xC2B2AE3D + 1) % (2**63 - 1)


def seed_for_name(name: str) -> int:
    """A fixed seed per test image, the same for every run, so evaluations compare fairly."""
    return int(hashlib.sha256(name.encode()).hexdigest()[:15], 16)


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
        rng = np.random.default_rng(int(seed))
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
        rng = np.random.default_rng([int(seed), 0x6A17])  # a stream of its own: the hints' draws are unchanged
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
    x = (target.float() + 1) / 2
    y = torch.einsum("bij,bjhw->bihw", m, x).clamp(0, 1)
    return (y * 2 - 1).to(target.dtype)


def fill_regions(hints: torch.Tensor, line_art: torch.Tensor, *, blend: bool = False, mode: str = "closed") -> torch.Tensor:
    """Spread each hint of `hints` (B, C + 1, H, W) over its region of `line_art` (B, C_in, H, W).

    A region is a 4-connected set of pixels lighter than REGION_LINE (`fill_labels`; with mode
    "open" gaps up to GAP px in the strokes are closed first). Every region that holds a hint and is
    not the page (mode "closed": any region touching the image's border; "open": the largest one) is
    painted, with mask FILLED: each of its pixels takes the colour of the nearest hint pixel in the
    same region (the mean of the region's hints where the nearest hint lies across a line), or with
    `blend` (model.hint_blend) the mean of all the region's hint pixels weighted by 1 / distance²
    (Shepard's inverse-distance weighting), so that colours meet in a gradient halfway between
    two hints instead of at a hard Voronoi edge. Hint pixels, line pixels and regions without hints
    are left as they are, so filling twice changes nothing.
    """
    if hints.shape[0] != line_art.shape[0] or hints.shape[-2:] != line_art.shape[-2:]:
        raise ValueError(f"hint map {tuple(hints.shape)} does not match line art {tuple(line_art.shape)}")
    hn = hints.detach().float().cpu().numpy()
    c = hn.shape[1] - 1
    mask = hn[:, c] > 0
    if not mask.any():
        return hints
    labels, n, page = fill_labels(line_art.detach().float().cpu().numpy().mean(axis=1), mode)
    hinted = np.zeros(n + 1, dtype=bool)
    hinted[labels[mask]] = True
    hinted[0] = False  # label 0 is line
    paint = hinted[labels] & ~page[labels] & ~mask  # (B, H, W)
    if not paint.any():
        return hints
    result = hn.copy()
    (_blend if blend else _nearest)(result, mask, paint, labels, n)
    result[:, c][paint] = FILLED
    return torch.from_numpy(result).to(hints)


def fill_labels(light: np.ndarray, mode: str = "closed") -> tuple[np.ndarray, int, np.ndarray]:
    """The fill's regions of `light` (B, H, W) on [-1, 1]: labels (0 on lines), their count n, and
    (n + 1,) bool: which labels are the page, never painted (see HINT_REGIONS)."""
    if mode not in HINT_REGIONS:
        raise ValueError(f"unknown hint_regions {mode!r}; valid: {', '.join(HINT_REGIONS)}")
    line = light < REGION_LINE
    if mode == "closed":
        labels, n, on_border = regions(~line)
        return labels, n, on_border
    from scipy.ndimage import binary_dilation, grey_dilation

    # Close gaps: strokes one pixel thicker (a 3 x 3 cross), so an opening of up to GAP px is shut.
    plane = np.zeros((3, 3, 3), dtype=bool)
    plane[1] = [[0, 1, 0], [1, 1, 1], [0, 1, 0]]
    labels, n, _ = regions(~binary_dilation(line, structure=plane, iterations=GAP // 2))
    # Grow the regions back over the band the thicker strokes took (never across a stroke); what the
    # band swallowed whole (a sliver thinner than GAP) becomes regions of its own.
    free = ~line
    for _ in range(GAP // 2 + 1):
        take = (labels == 0) & free
        if not take.any():
            break
        grown = grey_dilation(labels, footprint=plane)
        labels = np.where(take & (grown > 0), grown, labels)
    left = free & (labels == 0)
    if left.any():
        extra, n_extra, _ = regions(left)
        labels = np.where(extra > 0, extra + n, labels)
        n += n_extra
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    page = np.zeros(n + 1, dtype=bool)
    for image in labels:  # the page: the largest region touching each image's border
        edge = np.unique(np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]]))
        edge = edge[edge > 0]
        if len(edge):
            page[edge[np.argmax(sizes[edge])]] = True
    return labels, n, page


def _nearest(result: np.ndarray, mask: np.ndarray, paint: np.ndarray, labels: np.ndarray, n: int) -> None:
    """fill_regions' colours in place: each painted pixel takes its nearest hint pixel's colour."""
    from scipy.ndimage import distance_transform_edt

    # The flat (B*H*W) index of every pixel's nearest hint pixel (one 2-D transform per image that
    # gets paint; a 3-D one over the batch costs more than all of them).
    b, h, w = mask.shape
    c = result.shape[1] - 1
    nearest = np.arange(b * h * w).reshape(b, h, w)
    for i in np.flatnonzero(paint.reshape(b, -1).any(axis=1)):
        iy, ix = distance_transform_edt(~mask[i], return_indices=True)[1]
        nearest[i] = (i * h + iy) * w + ix
    lab, flat_mask = labels.ravel(), mask.ravel()
    colours = np.ascontiguousarray(result[:, :c].transpose(0, 2, 3, 1)).reshape(-1, c)  # (B*H*W, C)
    where = np.flatnonzero(paint.ravel())
    src = nearest.ravel()[where]
    same = lab[src] == lab[where]
    out = colours.copy()
    out[where[same]] = colours[src[same]]
    if not same.all():
        # Where the nearest hint lies across a line, the mean of the region's hints.
        at = lab[flat_mask]  # the region of each hint pixel
        counts = np.bincount(at, minlength=n + 1)
        sums = np.stack([np.bincount(at, weights=colours[flat_mask, k], minlength=n + 1) for k in range(c)], 1)
        region_mean = sums / np.maximum(counts, 1)[:, None]  # (n + 1, C)
        out[where[~same]] = region_mean[lab[where[~same]]]
    result[:, :c] = out.reshape(b, h, w, c).transpose(0, 3, 1, 2)


def fill_as_trained(hints: torch.Tensor, line_art: torch.Tensor, model: Any) -> torch.Tensor:
    """`hints` filled as the model (a ModelConfig) was trained to see them: by `fill_regions` with
    its `hint_blend` and `hint_regions` where it has `hint_fill`, else unchanged."""
    if not model.hint_fill:
        return hints
    return fill_regions(hints, line_art, blend=model.hint_blend, mode=model.hint_regions)


BLEND_WEIGHTS = 1 << 22  # (painted pixels x hint pixels) weights computed at once: 32 MB of float64


def _blend(result: np.ndarray, mask: np.ndarray, paint: np.ndarray, labels: np.ndarray, n: int) -> None:
    """fill_regions' colours in place: each painted pixel takes the mean of its region's hint pixels
    weighted by 1 / distance². Region by region: a pixel's weights are zero across a line anyway."""
    from scipy.spatial.distance import cdist

    b, h, w = mask.shape
    c = result.shape[1] - 1
    for i in np.flatnonzero(paint.reshape(b, -1).any(axis=1)):
        lab = labels[i].ravel()
        src = np.flatnonzero(mask[i].ravel() & (lab > 0))  # hint pixels inside a region
        tgt = np.flatnonzero(paint[i].ravel())
        src, tgt = src[np.argsort(lab[src], kind="stable")], tgt[np.argsort(lab[tgt], kind="stable")]
        s_lab, t_lab = lab[src], lab[tgt]
        colours_all = result[i, :c].reshape(c, -1)
        out = np.empty((c, len(tgt)), dtype=np.float64)
        for region in np.unique(t_lab):  # every painted region holds a hint pixel
            s_at = src[np.searchsorted(s_lab, region) : np.searchsorted(s_lab, region, side="right")]
            lo, hi = np.searchsorted(t_lab, region), np.searchsorted(t_lab, region, side="right")
            s_yx = np.stack(np.divmod(s_at, w), axis=1).astype(np.float64)
            colours = colours_all[:, s_at].T  # (S, C)
            rows = max(1, BLEND_WEIGHTS // len(s_at))  # a user's large brush strokes make many hint pixels
            for j in range(lo, hi, rows):
                t_yx = np.stack(np.divmod(tgt[j : min(j + rows, hi)], w), axis=1).astype(np.float64)
                weight = cdist(t_yx, s_yx, "sqeuclidean")  # >= 1: no painted pixel is a hint
                np.reciprocal(weight, out=weight)
                out[:, j : min(j + rows, hi)] = ((weight @ colours) / weight.sum(1, keepdims=True)).T
        colours_all[:, tgt] = out


def square_boxes(cy: np.ndarray, cx: np.ndarray, side: Any, h: int, w: int) -> tuple[np.ndarray, ...]:
    """(top, bottom, left, right) of `side`-wide squares centred on (cy, cx), clipped to the image."""
    before = (side - 1) // 2
    return (np.maximum(cy - before, 0), np.minimum(cy - before + side, h),
            np.maximum(cx - before, 0), np.minimum(cx - before + side, w))  # fmt: skip


def paint_boxes(img: np.ndarray, y0: np.ndarray, y1: np.ndarray, x0: np.ndarray, x1: np.ndarray,
                colours: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:  # fmt: skip
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


def hints_from_rgba(img: Image.Image, *, output_nc: int = 3) -> torch.Tensor:
    """(C + 1, H, W) from an RGBA image: alpha > 0 marks a hint, its RGB is the colour."""
    if "A" not in img.getbands() and not (img.mode == "P" and "transparency" in img.info):
        raise ValueError(f"hints image has no alpha channel (mode {img.mode}): alpha > 0 marks a hint")
    arr = np.asarray(img.convert("RGBA"), dtype=np.float32)  # (H, W, 4)
    mask = torch.from_numpy(arr[..., 3] > 0).float()[None]
    colour = torch.from_numpy(arr[..., :3] / 127.5 - 1.0).permute(2, 0, 1)
    if output_nc == 1:
        colour = colour.mean(0, keepdim=True)
    return torch.cat([colour * mask, mask])


def parse_points(points: Any, width: int, height: int, *, source: str = "hints") -> list[dict[str, Any]]:
    """Check a list of {"x", "y", "color", "size"} points; errors name `source` and the bad value."""
    if isinstance(points, Mapping) and "points" in points:
        points = points["points"]
    if not isinstance(points, list):
        raise ValueError(
            f'{source}: expected a list of points {{"x", "y", "color", "size"}}, got {type(points).__name__}'
        )
    parsed = []
    for i, p in enumerate(points):
        where = f"{source}: point {i}"
        if not isinstance(p, Mapping):
            raise ValueError(f"{where}: expected an object with x, y and color, got {p!r}")
        missing = [k for k in ("x", "y", "color") if k not in p]
        if missing:
            raise ValueError(f"{where}: missing {', '.join(missing)} in {dict(p)!r}")
        x, y = p["x"], p["y"]
        for name, v in (("x", x), ("y", y)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError(f"{where}: {name} must be a number, got {v!r}")
        if not (0 <= x < width and 0 <= y < height):
            raise ValueError(f"{where}: ({x}, {y}) is outside the {width}x{height} image")
        color = p["color"]
        try:
            if not isinstance(color, str):
                raise ValueError
            rgb = ImageColor.getrgb(color)[:3]
        except ValueError:
            raise ValueError(f"{where}: color {color!r} is not a colour (use #rrggbb)") from None
        size = p.get("size", eval_patch_size(min(width, height)))
        if isinstance(size, bool) or not isinstance(size, (int, float)) or not size >= 1 or not math.isfinite(size):
            raise ValueError(f"{where}: size must be a number of pixels >= 1, got {size!r}")
        parsed.append({"x": float(x), "y": float(y), "rgb": rgb, "size": int(round(size))})
    return parsed


def hints_from_points(
    points: Any, width: int, height: int, *, output_nc: int = 3, source: str = "hints"
) -> torch.Tensor:
    """(C + 1, H, W) from a list of points, each a `size` x `size` square centred on (x, y)."""
    parsed = parse_points(points, width, height, source=source)
    if not parsed:
        return torch.zeros(output_nc + 1, height, width)
    cx = np.array([int(p["x"]) for p in parsed])
    cy = np.array([int(p["y"]) for p in parsed])
    side = np.array([p["size"] for p in parsed])
    y0, y1, x0, x1 = square_boxes(cy, cx, side, height, width)
    colours = np.array([p["rgb"] for p in parsed], dtype=np.float32) / 127.5 - 1.0  # (K, 3)
    if output_nc == 1:
        colours = colours.mean(1, keepdims=True)
    zero = np.zeros(len(parsed), dtype=np.int64)
    return torch.from_numpy(paint_boxes(zero, y0, y1, x0, x1, colours, (1, height, width))[0])


def as_hint_map(hints: Any, width: int, height: int, *, output_nc: int = 3, source: str = "hints") -> torch.Tensor:
    """Any form of hints for one (width x height) image -> (C + 1, H, W).

    Accepts a PIL image with alpha (same size as the image), a list of points, the path of a file
    of either (`load_hints_file`), or a tensor already in the encoding.
    """
    if isinstance(hints, (str, Path)):
        return load_hints_file(hints, width, height, output_nc=output_nc)
    if isinstance(hints, torch.Tensor):
        if hints.shape != (output_nc + 1, height, width):
            raise ValueError(
                f"{source}: a hint map must be ({output_nc + 1}, {height}, {width}), got {tuple(hints.shape)}"
            )
        return hints.float()
    if isinstance(hints, Image.Image):
        if hints.size != (width, height):
            raise ValueError(
                f"{source}: hints image is {hints.size[0]}x{hints.size[1]} but the image is {width}x{height}"
            )
        return hints_from_rgba(hints, output_nc=output_nc)
    if isinstance(hints, (list, tuple, Mapping)):
        return hints_from_points(list(hints) if isinstance(hints, tuple) else hints, width, height,
                                 output_nc=output_nc, source=source)  # fmt: skip
    raise ValueError(f"{source}: expected an RGBA image, a list of points, a hints file's path or a tensor, "
                     f"got {type(hints).__name__}")  # fmt: skip


def load_hints_file(path: str | Path, width: int, height: int, *, output_nc: int = 3) -> torch.Tensor:
    """Read `--hints FILE`: a points JSON or an image with alpha of the sketch's size."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"hints file not found: {path}")
    if path.suffix.lower() == ".json":
        try:
            points = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{path}: not valid JSON ({err})") from None
        return hints_from_points(points, width, height, output_nc=output_nc, source=str(path))
    from .data.images import open_image

    img = open_image(path)
    try:
        return as_hint_map(img, width, height, output_nc=output_nc, source=str(path))
    except ValueError as err:
        msg = str(err)
        raise ValueError(msg if msg.startswith(str(path)) else f"{path}: {msg}") from None


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
