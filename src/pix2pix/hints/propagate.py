"""Propagation: hints spread softly over the line art, across texture, not across strokes (issue 40).

The fill (fill.py) paints whole regions, so it stops wherever strokes close a region: on a textured area
(mail, fur, hatching) that is hundreds of tiny regions, and a dot colours a few pixels around itself.
`propagate_hints` follows colourisation by optimisation (Levin, Lischinski and Weiss, SIGGRAPH 2004)
written for line art: the pixels are a grid graph whose 4-neighbour edges conduct exp(-STROKE * d), d the
darker pixel's ink (1 - lightness), so paper conducts and a stroke all but blocks. Each hint pixel holds its
colour and a confidence of 1; every other pixel takes the conductance-weighted mean of its neighbours,
pulled towards nothing by a screening term 1 / (REACH x the longer side)². Solved for the confidence M
and the colour times M (one sparse factorisation, SciPy's SuperLU, four right-hand sides), so the colour is
the hints' influence-weighted mean and M says how much of it arrived: a region behind a closed stroke gets
almost none, speckle and short dashes are walked around, and a gap in an outline lets some through, less
the narrower it is. Pixels with M >= PAINT and lighter than REGION_LINE are painted. The page (the fill's,
in open mode: the largest region touching the border once gaps of GAP px are shut) is held at no colour,
as the fill never paints it: colour that leaks out through a gap in an outline stops at the paper. (A hint
on the page is the user's word for the page: translate's finishing carries it, `fullsize.carry_hints`.)

One image at a time on the host, so it is for inference and evaluation; its cost per image is in
docs/hints.md (benchmarks/propagation.py). The fill stays what training and the models use.
"""

from __future__ import annotations

import numpy as np
import torch

from .fill import FILLED, REGION_LINE, fill_labels

STROKE = 12.0  # an edge's conductance is exp(-STROKE * ink) of its darker pixel: paper 1, a black stroke 6e-6
REACH = 0.5  # a hint's confidence decays over about this share of the image's longer side
PAINT = 0.05  # the confidence from which a pixel is painted


def propagate_hints(hints: torch.Tensor, line_art: torch.Tensor) -> torch.Tensor:
    """`hints` (B, C + 1, H, W) with each hint propagated over its image of `line_art` (B, C_in, H, W),
    both on [-1, 1]: pixels that are not hints, not lines and reached with confidence PAINT or more get the
    propagated colour and mask FILLED, as the fill paints (`fill_regions`). Hint pixels, lines and pixels
    the hints do not reach are left as they are, so propagating twice changes nothing."""
    if hints.shape[0] != line_art.shape[0] or hints.shape[-2:] != line_art.shape[-2:]:
        raise ValueError(f"hint map {tuple(hints.shape)} does not match line art {tuple(line_art.shape)}")
    out = hints.clone()
    c = hints.shape[1] - 1
    light = ((line_art.detach().float().mean(1) + 1) / 2).cpu().numpy()  # (B, H, W) on [0, 1]
    for i in range(hints.shape[0]):
        mask = (hints[i, c] == 1).cpu().numpy()
        if not mask.any():
            continue
        colour = ((hints[i, :c].detach().float().cpu().numpy() + 1) / 2).transpose(1, 2, 0)  # (H, W, C)
        labels, _, page = fill_labels(light[i][None] * 2 - 1, "open")
        paper = page[labels[0]]
        field, confidence = propagate(light[i], mask, colour, paper & ~mask)
        paint = (confidence >= PAINT) & ~mask & (light[i] * 2 - 1 >= REGION_LINE)
        where = torch.from_numpy(paint).to(hints.device)
        painted = torch.from_numpy(field.transpose(2, 0, 1) * 2 - 1).to(hints.device, hints.dtype)
        out[i, :c] = torch.where(where, painted, out[i, :c])
        out[i, c] = torch.where(where, torch.full_like(out[i, c], FILLED), out[i, c])
    return out


def propagate(
    light: np.ndarray, mask: np.ndarray, colour: np.ndarray, empty: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The propagated colour (H, W, C) on [0, 1] and confidence M (H, W) on [0, 1] of one image: `light`
    (H, W) its lightness on [0, 1], `mask` (H, W) bool its hint pixels, `colour` (H, W, C) their colours on
    [0, 1], `empty` (H, W) bool pixels held at no colour (M = 0). Where M is 0 the colour is 0."""
    from scipy.sparse.linalg import splu

    h, w = light.shape
    if light.shape != mask.shape or colour.shape[:2] != (h, w):
        raise ValueError(f"lightness {light.shape}, mask {mask.shape} and colour {colour.shape} differ in size")
    system = _system(light)
    hinted = mask.ravel()
    known = hinted | (empty.ravel() if empty is not None else False)
    free = ~known
    # Hint pixels are fixed at M = 1 and M * colour = the hint, empty ones at 0; the free pixels solve
    # A_ff x = -A_fk x_k.
    x = np.zeros((h * w, 1 + colour.shape[2]))
    x[hinted, 0] = 1.0
    x[hinted, 1:] = colour.reshape(-1, colour.shape[2])[hinted]
    fixed = x[known]
    if free.any():
        a_ff = system[free][:, free].tocsc()
        rhs = -(system[free][:, known] @ fixed)
        x[free] = splu(a_ff).solve(rhs)
    confidence = np.clip(x[:, 0], 0.0, 1.0)
    field = np.where(x[:, :1] > 1e-12, x[:, 1:] / np.maximum(x[:, :1], 1e-12), 0.0)
    return np.clip(field, 0.0, 1.0).reshape(h, w, -1), confidence.reshape(h, w)


def _system(light: np.ndarray):
    """The screened graph Laplacian (N, N) CSR of the pixel grid: L + I / (REACH * max(H, W))²."""
    from scipy.sparse import coo_matrix, diags

    h, w = light.shape
    ink = 1.0 - np.clip(light.astype(np.float64), 0.0, 1.0)
    index = np.arange(h * w).reshape(h, w)
    rows, cols, weights = [], [], []
    for a, b, inks in (
        (index[:, :-1], index[:, 1:], np.maximum(ink[:, :-1], ink[:, 1:])),  # left-right neighbours
        (index[:-1], index[1:], np.maximum(ink[:-1], ink[1:])),  # up-down neighbours
    ):
        conduct = np.exp(-STROKE * inks).ravel()
        rows += [a.ravel(), b.ravel()]
        cols += [b.ravel(), a.ravel()]
        weights += [conduct, conduct]
    n = h * w
    adjacency = coo_matrix((np.concatenate(weights), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
    adjacency = adjacency.tocsr()
    degree = np.asarray(adjacency.sum(1)).ravel()
    screen = 1.0 / (REACH * max(h, w)) ** 2
    return (diags(degree + screen) - adjacency).tocsr()
