"""The fill: each hint spread over its region of the line art before the generator sees it.

With `model.hint_fill`, a paint bucket, as colouring tools have (`fill_regions`): the pixels of a
region that holds a hint take the nearest hint's colour with mask FILLED (0.5), so a dot tells the
network the colour of the whole region, not only of the pixels it covers. With `model.hint_blend`
they take the region's hint colours weighted by 1 / distance² instead, so two hints in one region
(two stripes of a flag that its outline does not separate) meet in a gradient, not a hard edge. The
network still decides where lines leak or a region is not one colour.

Two stages, so that training never labels an image twice:
- **Regions, once per image** (`region_map`, SciPy): the 4-connected regions of the line art, numbered
  1..n per image, 0 on lines and on the page (never painted). The training set labels each image
  once when it is decoded and cached; the labels travel through the crop and flip with their image.
- **The fill, batched in torch** (`fill_from_sources`) on the run's device, with no per-image loop
  and no host synchronisation: each hint is a *source* (a centre, a colour, a mass: the pixels it
  covers, and the region under it). A region's colour field is computed per pixel up to EXACT px a
  side (the main job's 64 px), above that on a grid of FIELD x FIELD cells (stride 4 at 128 px, 8 at
  256 px), and read back per pixel. Simulated hints
  are their own sources (one per square patch, `simulation.py`); a user's hint map becomes sources by
  `map_sources` (its hint pixels pooled per grid cell and region). Both end in the same fill.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np
import torch

from ..options import HINT_REGIONS

# The fill's region boundaries: an input pixel darker than this (0.6 is 204 of 255) bounds a region.
# Anti-aliased lines at 64 px are grey at their thin points; at LINE, most outlines leak.
REGION_LINE = 0.6


FILLED = 0.5  # the mask value of a pixel that a hint's fill reached (a hint itself is 1)


# Which regions the fill paints (model.hint_regions). "closed": regions an outline closes and that do not
# touch the image's border (the built-in emoji: a white page around closed outlines). "open": for line art
# whose outlines do not close (painted illustrations, flags, shading): gaps in strokes up to GAP px wide
# are closed first, and only the page (the largest region touching the border) is left unpainted.


GAP = 2


EXACT = 64  # images up to this many px a side get a colour field per pixel (stride 1)
FIELD = 32  # larger ones a grid of about this many cells a side (stride = longer side // FIELD)


NEAR = 0.5  # squared distance floor (px²) of a grid cell to a source: a cell on a source weighs 2 x its mass


class Sources(NamedTuple):
    """K hint sources per image, padded: centre (B, K, 2) float (y, x in pixels), colour (B, K, C),
    mass (B, K) float (pixels covered; 0 for an empty slot) and label (B, K) long (the region; 0: none)."""

    yx: torch.Tensor
    colour: torch.Tensor
    mass: torch.Tensor
    label: torch.Tensor


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


def region_map(line_art: torch.Tensor | np.ndarray, mode: str = "closed") -> torch.Tensor:
    """(B, H, W) int32: the fill's regions of `line_art` (B, C, H, W) on [-1, 1], numbered 1..n in
    each image, 0 on lines and on the page (`fill_labels`). Labelled once per image, on the host."""
    light = line_art.detach().float().cpu().numpy() if isinstance(line_art, torch.Tensor) else line_art
    labels, n, page = fill_labels(light.mean(axis=1), mode)
    out = np.zeros(labels.shape, dtype=np.int32)
    for i, image in enumerate(labels):  # renumber per image, the page and lines 0
        kept = np.unique(image[~page[image] & (image > 0)])
        lookup = np.zeros(n + 1, dtype=np.int32)
        lookup[kept] = np.arange(1, len(kept) + 1, dtype=np.int32)
        out[i] = lookup[image]
    return torch.from_numpy(out)


def field_stride(h: int, w: int) -> int:
    """The colour field's grid stride: 1 up to EXACT px a side, then FIELD cells along the longer side.

    The field's cost grows with cells x sources, so 8 x 8 px cells at 256 px make it a 32 px image's,
    and per pixel they change the fill little: on the OpenMoji test split at 256 px, 10 evaluation
    hints, they leave 0.03% (closed) / 0.08% (open) of the exact fill's pixels unpainted and move the
    rest by 0.010 on [-1, 1] (docs/hints.md)."""
    return 1 if max(h, w) <= EXACT else max(1, max(h, w) // FIELD)


@lru_cache(maxsize=16)
def _centres(h: int, w: int, stride: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The grid's cell centres along y (Gh,) and x (Gw,), in pixels, clipped to the image."""
    gh, gw = -(-h // stride), -(-w // stride)
    ys = torch.arange(gh, device=device, dtype=torch.float32) * stride + (stride - 1) / 2
    xs = torch.arange(gw, device=device, dtype=torch.float32) * stride + (stride - 1) / 2
    return ys.clamp(max=h - 1), xs.clamp(max=w - 1)


def _rows(x: torch.Tensor, stride: int) -> torch.Tensor:
    """(..., H, W) -> (..., Gh, stride, W): the pixel rows of each row of cells (padded below if needed)."""
    h = x.shape[-2]
    gh = -(-h // stride)
    if gh * stride != h:
        x = torch.nn.functional.pad(x, (0, 0, 0, gh * stride - h))
    return x.reshape(*x.shape[:-2], gh, stride, x.shape[-1])


def _columns(x: torch.Tensor, stride: int, w: int) -> torch.Tensor:
    """(..., Gh, Gw) per cell -> (..., Gh, 1, W) per column: each cell's value on each of its columns
    (a broadcast copy: repeat_interleave gathers by index, several times slower on a CPU)."""
    if stride == 1:
        return x.unsqueeze(-2)
    wide = x.unsqueeze(-1).expand(*x.shape, stride).reshape(*x.shape[:-1], x.shape[-1] * stride)
    return wide[..., :w].unsqueeze(-2)


def _cell_labels(regions: torch.Tensor, stride: int) -> list[torch.Tensor]:
    """(B, Gh, Gw) labels whose field each cell holds: the image's own labels at stride 1, else each
    cell's largest label and the label of its middle pixel (a strided view), which differ where a
    stroke divides the cell."""
    if stride == 1:
        return [regions]
    b, h, w = regions.shape
    gh, gw = -(-h // stride), -(-w // stride)
    pad = (0, gw * stride - w, 0, gh * stride - h)
    blocks = torch.nn.functional.pad(regions, pad) if any(pad) else regions
    # The largest label per cell in two reductions, each over a dimension with a long one inside it.
    high = blocks.reshape(b, gh, stride, gw * stride).amax(2).reshape(b, gh, gw, stride).amax(3)
    middle = blocks[:, stride // 2 :: stride, stride // 2 :: stride]
    return [high, middle]


def fill_from_sources(
    hints: torch.Tensor, regions: torch.Tensor, sources: Sources, *, blend: bool = False
) -> torch.Tensor:
    """`hints` (B, C + 1, H, W) with every region of `regions` (B, H, W) that holds a source painted.

    A painted pixel (a hint-free pixel of a region holding a source; regions are 0 on lines and the
    page, never painted) gets mask FILLED and the colour of the nearest source of its region, or with
    `blend` the colours of all its region's sources weighted by mass / distance² (Shepard's
    inverse-distance weighting), so that colours meet in a gradient halfway between two hints instead
    of at a hard Voronoi edge. Distances are measured from the centre of the pixel's grid cell
    (`field_stride`); a cell holds the fields of two regions (its largest label and its middle pixel's),
    and a pixel of another region in that cell (a sliver between two strokes) is left unpainted. At stride 1
    (up to FIELD px) the fill is exact per pixel. Hint pixels, lines and regions without a source are
    left as they are. Fixed shapes, no host synchronisation: the same on CPU and GPU.
    """
    c = hints.shape[1] - 1
    return paint_fields(regions, hints[:, c] == 0, sources, blend=blend, base=hints)


def paint_fields(
    regions: torch.Tensor,
    free: torch.Tensor | None,
    sources: Sources,
    *,
    blend: bool,
    base: torch.Tensor | None = None,
    channels: int | None = None,
    cells: torch.Tensor | None = None,
) -> torch.Tensor:
    """The fill's map (B, C + 1, H, W): `base` (a hint map; None: zeros of `channels` + 1 channels) with
    the pixels of `free` (B, H, W; bool, or 0/1 in any dtype; None: every pixel, the caller having set
    the labels of the others to 0, as `simulation.uncovered` does) in a region of `regions` (labels, of
    any dtype: the cache keeps them as floats) holding one of `sources` painted (see `fill_from_sources`).
    The grid's cells take their labels from `cells` where given (the whole map beneath such labels).

    On a CPU the fill's cost is passes over memory, so every large tensor is laid out with its long
    dimension innermost (sources x cells, cells inside; pixels by grid row, columns inside), the label
    tests write 0/1 floats that multiply (`torch.where` and bool masks run several times slower), and each
    output pixel is written once per cell label."""
    b, h, w = regions.shape
    c = base.shape[1] - 1 if base is not None else int(channels)  # type: ignore[arg-type]
    stride = field_stride(h, w)
    fields = _cell_fields(regions if cells is None else cells, sources, stride, blend)
    # The pixels by grid row: (B, [C,] Gh, s, W), a view of the image where the grid divides its height.
    dtype = base.dtype if base is not None else sources.colour.dtype
    gh = -(-h // stride)
    out = torch.empty(b, c + 1, gh * stride, w, dtype=dtype, device=regions.device)
    rows = out.reshape(b, c + 1, gh, stride, w)
    # Labels as floats (exact below 2**24; a test of floats into floats is one vectorised pass), 0 where the
    # pixel is not free: no cell holds label 0, so one pass keeps hint pixels out of every field.
    region = _rows(regions, stride).to(dtype)
    if free is not None:
        region = region * _rows(free, stride).to(dtype)
    # One 0/1 map per cell label: the two labels of a cell differ (`_cell_fields`), so the maps are disjoint.
    taken = [torch.eq(region, _columns(cell.to(dtype), stride, w), out=torch.empty_like(region)) for cell, _ in fields]
    for i, ((_, field), mine) in enumerate(zip(fields, taken)):
        field = _columns(field.to(dtype), stride, w)  # (B, C, Gh, 1, W)
        if i == 0:
            torch.mul(field, mine[:, None], out=rows[:, :c])
        else:
            rows[:, :c].addcmul_(field, mine[:, None])
    # The mask: FILLED where a field was written; of two disjoint 0/1 maps, their lerp halfway (exact).
    if len(taken) == 1:
        painted = torch.mul(taken[0], FILLED, out=rows[:, c])
    else:
        painted = torch.lerp(taken[0], taken[1], FILLED, out=rows[:, c])
    if base is not None:  # the base where nothing was painted (x 1 and x 0 are exact)
        kept = torch.mul(painted, -1 / FILLED).add_(1)[:, None]
        rows.addcmul_(_rows(base, stride), kept)
    return out if gh * stride == h else out[:, :, :h].contiguous()


def _cell_fields(
    regions: torch.Tensor, sources: Sources, stride: int, blend: bool
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per cell label of `_cell_labels`: (the label, -1 where its region holds no source or, for the second
    label, where it is the first: (B, Gh, Gw);
    the colour field there: (B, C, Gh, Gw)), from every source's weight on every cell."""
    b = regions.shape[0]
    k, c = sources.mass.shape[1], sources.colour.shape[2]
    ys, xs = _centres(*regions.shape[1:], stride, regions.device)
    gh, gw = len(ys), len(xs)
    used = (sources.mass > 0) & (sources.label > 0)
    label = torch.where(used, sources.label, -1)[:, :, None]  # (B, K, 1); -1 matches no cell
    # Every source's squared distance to every cell: (B, K, cells).
    dy = (ys[None, None, :] - sources.yx[:, :, 0, None]) ** 2  # (B, K, Gh)
    dx = (xs[None, None, :] - sources.yx[:, :, 1, None]) ** 2  # (B, K, Gw)
    d2 = (dy[..., None] + dx[:, :, None, :]).reshape(b, k, gh * gw)
    if blend:  # mass / distance², in place
        weight = torch.div(sources.mass[:, :, None].to(d2.dtype), d2.clamp_(min=NEAR), out=d2)
        # Colours with a column of ones: one matrix product gives a field's numerator and its denominator.
        colour1 = torch.cat([sources.colour, torch.ones_like(sources.colour[..., :1])], 2).to(d2.dtype)
        colour_t = colour1.transpose(1, 2)  # (B, C + 1, K)
    else:  # the nearest source: the smallest key, the squared distance rounded to 1 px² then the slot
        h, w = regions.shape[1:]
        far = 2**30 if (h * h + w * w + 1) * k < 2**30 else 2**62  # past every key: int32 keys where they fit
        dt = torch.int32 if far == 2**30 else torch.int64
        key = d2.round_().to(dt).mul_(k).add_(torch.arange(k, dtype=dt, device=d2.device)[:, None])
        colour_t = sources.colour.transpose(1, 2)  # (B, C, K)
    # The label tests in the dtype they write (floats for the blend, keys for the nearest): one fast pass.
    label = label.to(d2.dtype if blend else dt)
    scratch = torch.empty_like(d2 if blend else key)  # (B, K, cells), written by each label's test
    out = []
    for cell_label in _cell_labels(regions, stride):
        flat = cell_label.reshape(b, 1, -1).to(label.dtype)
        if blend:  # the weights of the sources in the cell's region; 0 elsewhere
            match = torch.eq(label, flat, out=scratch).mul_(weight)
            sums = torch.bmm(colour_t, match)  # (B, C + 1, cells)
            den = sums[:, c]
            field = sums[:, :c] / den.clamp_min(1e-30)[:, None]  # (B, C, cells)
            held = den > 0
        else:  # keys of sources in other regions pushed past `far`
            best = torch.ne(label, flat, out=scratch).mul_(far).add_(key).amin(1)  # (B, cells)
            held = best < far
            winner = (best % k).long()
            field = torch.gather(colour_t, 2, winner[:, None].expand(-1, c, -1))
        cell = torch.where(held.reshape(b, gh, gw), cell_label, -1)  # -1: the region holds no source
        out.append((cell, field.reshape(b, c, gh, gw)))
    if len(out) == 2:  # a cell's second label only where it differs from its first: each pixel takes one field
        out[1] = (torch.where(out[1][0] == out[0][0], -1, out[1][0]), out[1][1])
    return out


def map_sources(hints: torch.Tensor, regions: torch.Tensor) -> Sources:
    """The sources of an arbitrary hint map (a user's dots and strokes): its hint pixels (mask 1) in a
    region, pooled per grid cell and region (centroid, mean colour, pixel count). The count per image
    depends on the map, so this runs where shapes may (inference, evaluation), not in the step."""
    b, c1, h, w = hints.shape
    c, dev = c1 - 1, hints.device
    stride = field_stride(h, w)
    gw = -(-w // stride)
    cell = (
        (torch.arange(h, device=dev) // stride)[:, None] * gw + torch.arange(w, device=dev)[None, :] // stride
    ).reshape(-1)
    region = regions.reshape(b, -1).long()
    hint = (hints[:, c].reshape(b, -1) == 1) & (region > 0)
    width = int(region.max()) + 1
    cells = int(cell.max()) + 1
    key = (torch.arange(b, device=dev)[:, None] * cells + cell[None, :]) * width + region  # (B, H*W)
    keys, inverse = torch.unique(key[hint], return_inverse=True)  # sorted: by image, then cell, then region
    n = len(keys)
    pix = torch.arange(h * w, device=dev).expand(b, -1)[hint]
    mass = torch.zeros(n, device=dev).index_add_(0, inverse, torch.ones(len(pix), device=dev))
    yx = torch.stack([pix // w, pix % w], 1).float()
    centre = torch.zeros(n, 2, device=dev).index_add_(0, inverse, yx) / mass[:, None]
    colours = hints[:, :c].reshape(b, c, -1).transpose(1, 2)[hint].float()  # (P, C)
    colour = torch.zeros(n, c, device=dev).index_add_(0, inverse, colours) / mass[:, None]
    image = keys // (cells * width)
    counts = torch.bincount(image, minlength=b)
    k = max(1, int(counts.max()) if n else 1)
    slot = torch.arange(n, device=dev) - (torch.cumsum(counts, 0) - counts)[image]
    out = Sources(
        torch.zeros(b, k, 2, device=dev),
        torch.zeros(b, k, c, device=dev),
        torch.zeros(b, k, device=dev),
        torch.zeros(b, k, dtype=torch.long, device=dev),
    )
    for tensor, value in zip(out, (centre, colour, mass, keys % width)):
        tensor[image, slot] = value.to(tensor.dtype)
    return out


def fill_regions(
    hints: torch.Tensor,
    line_art: torch.Tensor,
    *,
    blend: bool = False,
    mode: str = "closed",
    regions: torch.Tensor | None = None,
) -> torch.Tensor:
    """Spread each hint of `hints` (B, C + 1, H, W) over its region of `line_art` (B, C_in, H, W).

    A region is a 4-connected set of pixels lighter than REGION_LINE (`fill_labels`; with mode
    "open" gaps up to GAP px in the strokes are closed first). Every region that holds a hint pixel
    and is not the page (mode "closed": any region touching the image's border; "open": the largest
    one) is painted by `fill_from_sources`, the hint pixels pooled per grid cell (`map_sources`): at
    64 px and below each hint pixel is a source of its own. `regions` (from `region_map`) spares the
    labelling. Hint pixels, line pixels and regions without hints are left as they are, so filling
    twice changes nothing.
    """
    if hints.shape[0] != line_art.shape[0] or hints.shape[-2:] != line_art.shape[-2:]:
        raise ValueError(f"hint map {tuple(hints.shape)} does not match line art {tuple(line_art.shape)}")
    if regions is None:
        regions = region_map(line_art, mode).to(hints.device)
    if not bool((hints[:, -1] == 1).any()):
        return hints
    return fill_from_sources(hints, regions, map_sources(hints, regions), blend=blend)


def fill_as_trained(hints: torch.Tensor, line_art: torch.Tensor, model: Any) -> torch.Tensor:
    """`hints` filled as the model (a ModelConfig) was trained to see them: by `fill_regions` with
    its `hint_blend` and `hint_regions` where it has `hint_fill`, else unchanged."""
    if not model.hint_fill:
        return hints
    return fill_regions(hints, line_art, blend=model.hint_blend, mode=model.hint_regions)
