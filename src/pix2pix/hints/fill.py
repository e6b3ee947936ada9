"""The fill: each hint spread over its region of the line art before the generator sees it.

With `model.hint_fill`, a paint bucket, as colouring tools have (`fill_regions`): the pixels of a
region that holds a hint take the nearest hint's colour with mask FILLED (0.5), so a dot tells the
network the colour of the whole region, not only of the pixels it covers. With `model.hint_blend`
they take the region's hint colours weighted by 1 / distance² instead, so two hints in one region
(two stripes of a flag that its outline does not separate) meet in a gradient, not a hard edge. The
network still decides where lines leak or a region is not one colour. Simulated hints, a user's
hints and evaluation hints all go through the same fill (`fill_as_trained`)."""

from __future__ import annotations

from typing import Any

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
