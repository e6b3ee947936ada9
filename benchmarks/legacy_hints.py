"""The input path as main trained at de4f1a5 (before issue 38): numpy and SciPy on the host, once per step.

Kept only so that `bench.py --input-path` times today's path beside the old one in the same run; the
library no longer uses any of it. Copied from src/pix2pix/hints/{simulation,fill}.py and
data/transforms.py at de4f1a5, with the library's own helpers imported where they are unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from pix2pix.hints import FILLED, LINE, WHITE, HintRecipe, fill_labels, paint_boxes, regions, square_boxes
from pix2pix.hints.simulation import JITTER_SATURATION
from pix2pix.images import from_unit, to_unit

JITTER_STREAM = 0x6A17


def numpy_rng(seed: int, stream: int | None = None) -> np.random.Generator:
    return np.random.default_rng(int(seed) if stream is None else [int(seed), stream])


def count(recipe: HintRecipe, rng: np.random.Generator) -> int:
    u_none, u_count = rng.random(2).tolist()
    if u_none < recipe.p_none or recipe.max_count == 0:
        return 0
    extra = 0 if recipe.p >= 1 else int(math.log(max(u_count, 1e-300)) / math.log(1 - recipe.p))
    return min(recipe.max_count, 1 + extra)


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
    n_eval: int | None = None,
    size: int | None = None,
) -> torch.Tensor:
    """A hint map (B, C + 1, H, W) drawn from `target` (B, C, H, W) in [-1, 1], one seed per image.

    Training passes `recipe` (random count and patch sizes). Evaluation passes `count` (and a
    fixed `size`): it draws EVAL_DRAWS hints and keeps the first `count`, so the hints of a
    smaller count are a subset of a larger one's.
    """
    if (recipe is None) == (n_eval is None):
        raise ValueError("simulate_hints needs either a recipe or a count")
    b, c, h, w = target.shape
    if len(seeds) != b:
        raise ValueError(f"{len(seeds)} seeds for a batch of {b}")
    # Inverse-CDF sampling of positions: one cumulative sum per batch, then a search per image.
    # numpy throughout: a hundred small steps per batch cost microseconds here, not milliseconds.
    tgt = target.detach().float().cpu().numpy()
    cdf = hint_weights(line_art, tgt).reshape(b, -1).cumsum(1)  # (B, H*W)
    images, centres, sides = [], [], []
    for i, seed in enumerate(seeds):
        rng = numpy_rng(seed)
        if recipe is not None:
            n = draws = count(recipe, rng)
            side = rng.integers(recipe.size_min, recipe.size_max + 1, max(n, 1))[:n]
        else:
            n, draws = int(n_eval), 32
            side = np.full(n, size)
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
        rng = numpy_rng(seed, JITTER_STREAM)  # a stream of its own: the hints' draws are unchanged
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


def fill_regions(
    hints: torch.Tensor, line_art: torch.Tensor, *, blend: bool = False, mode: str = "closed"
) -> torch.Tensor:
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


def _apply(x: torch.Tensor, crop_size: int, tops: list[int], lefts: list[int], flips: list[bool]) -> torch.Tensor:
    h, w = x.shape[-2:]
    if h == crop_size and w == crop_size and not any(flips):
        return x
    out = []
    for i in range(x.shape[0]):
        t, left = tops[i], lefts[i]
        patch = x[i, :, t : t + crop_size, left : left + crop_size]
        out.append(patch.flip(-1) if flips[i] else patch)
    return torch.stack(out)
