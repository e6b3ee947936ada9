"""Line art at its own size: colour it with a generator trained at another size, sharp strokes kept.

A generator learns strokes as wide as they were in training (a few pixels at 64 px); a 1,000 px
drawing shown to it as it is has strokes of another width and comes back uncoloured. So the
generator runs at the scale it was trained for, and its colours come back to the input's size:

1. `working_size`: the image scaled so its longer side is the training size (area-averaged, so thin
   strokes stay as grey). The generator colours that, with hints resized to it (`hints.resize_hints`).
2. `compose`, for line art (`is_line_art`: grey pixels on a mostly light page):
   a. the generator's own blurry strokes and the cells that straddle a stroke are taken out of its
      colours: each such cell takes the colour (and region) of the nearest cell that one region covers;
   b. upsampling region by region: the full-size line art's regions (4-connected pixels as light as
      hints.REGION_LINE, the hint fill's regions) own the working-size cells they cover whole; a full-
      size pixel mixes (bilinearly) only cells its own region owns, so colour does not cross a stroke;
      a region that owns none (thinner than a cell) takes the mean of plain bilinear upsampling over it;
   c. multiplied by the input's lightness: every stroke is the input's own, as sharp as drawn.
   Anything else (a photo, a label map) is upsampled bicubically.
3. `carry_hints`, for a user's hints on line art: a hinted region that the generator cannot colour by
   construction takes the hints' colour itself (the fill's, at the input's size, times the input's
   lightness): the page in the model's region mode (closed: a region touching the border, such as a sky
   or a ground; open: the largest one), which no training hint ever fell on, and a region too thin to
   exist at the working size (it owns no clean cell: a narrow tree trunk). A hint that still colours
   nothing (it lies on a stroke; or on the page of an input that is not line art) is named in an
   `UnhonouredHint` warning.

All of it is NumPy / SciPy on the CPU (`fullsize_steps` writes the same recipe into an export's
sidecar), and it is the one path that `translate`, the Python API and the server take.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .hints import FILLED, REGION_LINE, fill_labels, map_sources, paint_fields, regions
from .images import from_unit, to_unit
from .options import MAX_PIXELS

GREY_SPREAD = 0.08  # line art: channels within this of each other ([0, 1] units) on 99% of pixels
LIGHT_SHARE = 0.5  # line art: at least this share of pixels at least as light as LINE
CLEAN = 1.0  # a working-size cell keeps its colour where one region covers this share of its pixels (all)
FOLLOWED = 0.15  # a hinted region is the generator's where its output under the hints is this close to them
LINE = (REGION_LINE + 1) / 2  # hints.REGION_LINE on the [0, 1] lightness scale (204 of 255)


def working_size(height: int, width: int, train_size: int) -> tuple[int, int]:
    """(H', W') with the longer side `train_size` and the aspect ratio kept (each side >= 1)."""
    scale = train_size / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def check_pixels(height: int, width: int, source: str = "image") -> None:
    if height * width > MAX_PIXELS:
        side = int(MAX_PIXELS**0.5)
        raise ValueError(
            f"{source}: {width}x{height} is larger than the {side}x{side} pixels the full-size output "
            "handles; scale it down first, or use --scale native / --size N"
        )


def to_size(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, C, H, W) in [-1, 1] resized to `size`: area-averaged when shrinking, bicubic when enlarging."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    shrink = size[0] <= x.shape[-2] and size[1] <= x.shape[-1]
    mode = "area" if shrink else "bicubic"
    return F.interpolate(x.float(), size=size, mode=mode, **({} if shrink else {"align_corners": False})).clamp(-1, 1)


def lightness(x: torch.Tensor) -> np.ndarray:
    """(C, H, W) in [-1, 1] -> (H, W) float32 in [0, 1]: the mean of the channels."""
    return to_unit(x.float().mean(0)).cpu().numpy()


def is_line_art(x: torch.Tensor) -> bool:
    """Whether (C, H, W) in [-1, 1] is line art: grey (channels agree) on a mostly light page."""
    v = to_unit(x.float())
    grey = True
    if v.shape[0] > 1:
        spread = v.amax(0) - v.amin(0)  # (H, W)
        grey = bool(torch.quantile(spread.flatten()[:: max(1, spread.numel() // 200_000)], 0.99) <= GREY_SPREAD)
    return grey and float((v.mean(0) >= LINE).float().mean()) >= LIGHT_SHARE


def compose(line_art: torch.Tensor, colour: torch.Tensor) -> torch.Tensor:
    """The generator's `colour` (B, C_out, h, w) brought to the size of `line_art` (B, C_in, H, W),
    both in [-1, 1]: steps 2a-2c of the module's docstring for line art, else bicubic."""
    size = tuple(line_art.shape[-2:])
    out = []
    for x, c in zip(line_art, colour):
        if is_line_art(x):
            out.append(from_unit(torch.from_numpy(_compose_one(lightness(x), to_unit(c.float()).cpu().numpy()))))
        else:
            out.append(to_size(c[None].cpu(), size)[0])
    return torch.stack(out).to(colour.device)


def _compose_one(light: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """`light` (H, W) in [0, 1], `colour` (C, h, w) in [0, 1] -> (C, H, W) in [0, 1]."""
    from scipy.ndimage import distance_transform_edt

    (big_h, big_w), (c_n, h, w) = light.shape, colour.shape
    # a-b. Each working-size cell's owner: the full-size region covering most of it. Only "clean" cells
    # (no stroke, one region over CLEAN of their pixels) keep their colour and owner: a cell across a
    # stroke mixes both sides' colours (and the generator's blurry stroke), so it takes the colour and
    # owner of its nearest clean cell instead.
    labels, n, _ = regions(light[None] >= LINE)
    labels = labels[0]  # (H, W), 0 on strokes
    owner, clean = _cell_owners(labels, n, (h, w))
    on = labels > 0
    if clean.any() and not clean.all():
        _, (iy, ix) = distance_transform_edt(~clean, return_indices=True)
        colour = colour[:, iy, ix]
        owner = owner.reshape(h, w)[iy, ix].ravel()
    flat = colour.reshape(c_n, h * w)
    # Bilinear taps (half-pixel centres, as F.interpolate with align_corners=False).
    sy = np.clip((np.arange(big_h) + 0.5) * h / big_h - 0.5, 0, h - 1)
    sx = np.clip((np.arange(big_w) + 0.5) * w / big_w - 0.5, 0, w - 1)
    y0, x0 = np.floor(sy).astype(np.int64), np.floor(sx).astype(np.int64)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    fy, fx = (sy - y0).astype(np.float32)[:, None], (sx - x0).astype(np.float32)[None, :]
    plain = np.zeros((c_n, big_h, big_w), dtype=np.float32)
    mixed = np.zeros_like(plain)
    total = np.zeros((big_h, big_w), dtype=np.float32)
    for ys, xs, wgt in (
        (y0, x0, (1 - fy) * (1 - fx)),
        (y0, x1, (1 - fy) * fx),
        (y1, x0, fy * (1 - fx)),
        (y1, x1, fy * fx),
    ):
        idx = ys[:, None] * w + xs[None, :]  # (H, W) cells
        tap = flat[:, idx]  # (C, H, W)
        plain += wgt * tap
        own = wgt * (owner[idx] == labels)
        mixed += own * tap
        total += own
    out = plain.copy()
    hit = on & (total > 1e-6)
    out[:, hit] = mixed[:, hit] / total[hit]
    lone = on & ~hit  # no tap of its own region: the region's mean colour where it has one
    if lone.any():
        has = np.bincount(labels[hit], minlength=n + 1)
        src = np.where(has[labels] > 0, hit, lone) & on  # a region with hits averages them, else plain
        count = np.bincount(labels[src], minlength=n + 1)
        for ch in range(c_n):
            values = np.where(hit, out[ch], plain[ch])
            mean = np.bincount(labels[src], weights=values[src], minlength=n + 1) / np.maximum(count, 1)
            out[ch][lone] = mean[labels[lone]]
    # c. The input's strokes, as drawn.
    return (out * light[None]).astype(np.float32)


def fullsize_steps(train_size: int) -> dict[str, object]:
    """The recipe as an export's sidecar states it, every step as the code does it (tests/sidecar_only.py
    follows this text alone with onnxruntime, NumPy and SciPy and matches the library)."""
    light = "lightness L = the mean of the image channels on [0, 1] ((x + 1) / 2)"
    return {
        "working_size": f"(H', W') = (max(1, round(H * s)), max(1, round(W * s))), s = {train_size} / max(H, W), "
        "round halving to even (Python's round); the longer side is "
        f"{train_size} px. If (H', W') == (H, W) the network runs on the input as it is and none of the steps "
        "below apply (nor with scale 'native')",
        "shrink": "when H' <= H and W' <= W: adaptive average pooling (torch's 'area' mode), separable: "
        "out[i, j] = mean of x[floor(i * H / H') : ceil((i + 1) * H / H'), floor(j * W / W') : ceil((j + 1) * W / "
        "W')], whole pixels each weighing 1 (not Pillow's fractional box filter); then clip to [-1, 1]",
        "enlarge": "otherwise bicubic (a = -0.75, half-pixel centres, source indices clamped at the border: "
        "torch's 'bicubic' with align_corners=False), then clip to [-1, 1]",
        "network": "pad, run and crop at the working size as 'padding' says; a hints model takes the hint map "
        "resized as hints.resize says and filled as hints.fill says, at the working size",
        "line_art": f"{light}; line art when (1) the channels' spread (max - min, on [0, 1]) has its 0.99 quantile "
        f"(linear interpolation, over every k-th pixel in row-major order, k = max(1, H * W // 200000)) at most "
        f"{GREY_SPREAD} (one channel: always) and (2) at least {LIGHT_SHARE} of pixels have L >= {LINE}",
        "compose_line_art": [
            f"regions: 4-connected components of the pixels with L >= {LINE} (scipy.ndimage.label with a cross), "
            "numbered in scan order; strokes 0. Pixel (Y, X) lies in working-size cell (Y * h // H, X * w // W), "
            "h x w the network output's size",
            "a cell's owner is the region with the most pixels in it (ties: the lower label); the cell is clean when "
            f"that region covers {CLEAN:.0%} of its pixels. If some but not all cells are clean, every cell takes "
            "the colour (network output on [0, 1]) and the owner of the clean cell scipy.ndimage."
            "distance_transform_edt(~clean, return_indices=True) names (a clean cell names itself)",
            "bilinear taps with half-pixel centres: sy = clip((Y + 0.5) * h / H - 0.5, 0, h - 1), y0 = floor(sy), "
            "y1 = min(y0 + 1, h - 1), fy = sy - y0 (x alike), weights (1-fy)(1-fx), (1-fy)fx, fy(1-fx), fy fx. "
            "plain = the weighted sum of the four taps; own = the same sum over the taps whose owner is the pixel's "
            "region, divided by their weight. A region pixel whose own weight is > 1e-6 takes own; a region pixel "
            "without (unmatched) takes, if its region has matched pixels, the mean of own over them, else the mean "
            "of plain over the region's unmatched pixels; stroke pixels take plain",
            "multiply by L; on [-1, 1]: 2 * value - 1",
        ],
        "otherwise": "the network's output brought to H x W as 'shrink' / 'enlarge' say (bicubic when growing)",
        "to_uint8": "round((y + 1) * 127.5), clipped to 0..255 (round halves to even)",
        "max_pixels": MAX_PIXELS,
        "constants": {"line": LINE, "clean": CLEAN, "grey_spread": GREY_SPREAD, "light_share": LIGHT_SHARE},
        "reference": "pix2pix.fullsize.compose",
    }


def _cell_owners(labels: np.ndarray, n: int, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Each working-size cell's owner (h * w,): the region of `labels` (H, W; n regions, 0 on strokes)
    covering most of the input pixels under it, and whether the cell is clean (h, w): one region covers
    CLEAN of them."""
    (big_h, big_w), (h, w) = labels.shape, size
    cell = (np.arange(big_h) * h // big_h)[:, None] * w + (np.arange(big_w) * w // big_w)[None, :]  # (H, W)
    count = np.bincount(cell.ravel(), minlength=h * w)
    owner = np.zeros(h * w, dtype=np.int64)
    share = np.zeros(h * w)
    on = labels > 0
    if on.any():
        key = cell[on].astype(np.int64) * (n + 1) + labels[on]
        uniq, counts = np.unique(key, return_counts=True)
        u_cell, u_label = uniq // (n + 1), uniq % (n + 1)
        order = np.lexsort((-counts, u_cell))  # by cell, the largest count first
        first = order[np.r_[True, u_cell[order][1:] != u_cell[order][:-1]]]
        owner[u_cell[first]] = u_label[first]
        share[u_cell[first]] = counts[first] / count[u_cell[first]]
    return owner, (share >= CLEAN).reshape(h, w)


class UnhonouredHint(UserWarning):
    """A user's hint that colours nothing: it lies on a stroke, or on the page of an input that is not line art."""


def carry_hints(
    line_art: torch.Tensor, hints: torch.Tensor | None, colour: torch.Tensor, model: Any, work: tuple[int, int] | None
) -> torch.Tensor:
    """`colour` (B, C_out, H, W), the result for `line_art` (B, C_in, H, W), both in [-1, 1], with the user's
    `hints` (B, C_out + 1, H, W) carried into the regions the generator cannot colour (step 3 of the module's
    docstring). `model` is the run's ModelConfig (its hint regions and blend); `work` the working size the
    generator ran at (None: the input's own size, where no region is too thin)."""
    if hints is None or not bool((hints[:, -1] == 1).any()):
        return colour
    out = colour.clone()
    for i, (x, h_map) in enumerate(zip(line_art.detach().float().cpu(), hints.detach().float().cpu())):
        labels, n, page = fill_labels(x.mean(0, keepdim=True).numpy(), model.hint_regions)
        labels = labels[0]
        hint = _one_region_each(h_map[-1].numpy() == 1, labels)
        held = np.unique(labels[hint])
        carried = page[held]
        if work is not None:  # too thin to own a clean working-size cell
            owner, clean = _cell_owners(labels, n, work)
            carried |= ~np.isin(held, owner[clean.ravel()])
        carried = held[carried & ~_followed(out[i], h_map, hint, labels, held)]
        if not len(carried):
            continue
        if not is_line_art(x):
            _warn_points(hint & np.isin(labels, carried), "lies on the page of an input that is not line art")
            continue
        keep = torch.from_numpy(np.where(np.isin(labels, carried), labels, 0).astype(np.int32))[None]
        c = h_map.shape[0] - 1
        dots = h_map[None] * torch.from_numpy(hint)  # each spot's pixels in its own region only
        field = paint_fields(keep, keep > 0, map_sources(dots, keep), blend=model.hint_blend, channels=c)[0]
        painted = field[c] == FILLED
        carried_colour = from_unit(to_unit(field[:c]) * torch.from_numpy(lightness(x)))
        out[i][:, painted.to(out.device)] = carried_colour[:, painted].to(out)
    return out


def _followed(
    colour: torch.Tensor, h_map: torch.Tensor, hint: np.ndarray, labels: np.ndarray, held: np.ndarray
) -> np.ndarray:
    """(len(held),) bool: whether the output `colour` (C, H, W) already shows, under the hint pixels of each
    region in `held`, the hints' colours (mean absolute difference below FOLLOWED on [-1, 1]): the generator
    followed them there, so the region is its to colour (an element drawn without an outline is the page to
    the line art but may be coloured by the model)."""
    diff = (colour.detach().float().cpu() - h_map[:-1]).abs().mean(0).numpy()  # (H, W)
    width = int(labels.max()) + 1
    total = np.bincount(labels[hint], weights=diff[hint], minlength=width)
    count = np.bincount(labels[hint], minlength=width)
    return (total[held] / np.maximum(count[held], 1)) < FOLLOWED


def _one_region_each(hint: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The pixels of `hint` (H, W) bool that lie in their spot's region. A spot (a connected dot or stroke of
    hint pixels) belongs to the region under its centre, as a simulated patch does (or, where its centre is
    not one of its pixels in a region, the region holding most of it), so a dot wider than a thin shape does
    not colour the shape's surroundings with the part that spilt over its outline. A spot wholly on strokes is
    named in a warning."""
    from scipy.ndimage import center_of_mass, label

    spots, n = label(hint)
    if not n:
        return hint
    home = np.zeros(n + 1, dtype=labels.dtype)
    on = (spots > 0) & (labels > 0)
    if on.any():  # the majority region of each spot
        width = int(labels.max()) + 1
        uniq, counts = np.unique(spots[on].astype(np.int64) * width + labels[on], return_counts=True)
        spot, region = uniq // width, uniq % width
        order = np.lexsort((-counts, spot))  # by spot, the largest count first
        first = order[np.r_[True, spot[order][1:] != spot[order][:-1]]]
        home[spot[first]] = region[first]
    centres = np.rint(np.array(center_of_mass(hint, spots, range(1, n + 1)))).astype(np.int64).reshape(-1, 2)
    at = spots[centres[:, 0], centres[:, 1]] == np.arange(1, n + 1)  # the centre is one of the spot's pixels
    under = labels[centres[:, 0], centres[:, 1]]
    home[1:] = np.where(at & (under > 0), under, home[1:])
    _warn_points(hint & (home[spots] == 0), "lies on a stroke")
    return hint & (labels == home[spots]) & (labels > 0)


def _warn_points(where: np.ndarray, why: str) -> None:
    """One UnhonouredHint per connected spot of `where` (H, W), named by its centre."""
    from scipy.ndimage import center_of_mass, label

    spots, n = label(where)
    for y, x in center_of_mass(where, spots, range(1, n + 1)) if n else []:
        warnings.warn(
            f"the hint at x={x:.0f}, y={y:.0f} {why}, so it colours nothing; place it inside a shape",
            UnhonouredHint,
            stacklevel=3,
        )
