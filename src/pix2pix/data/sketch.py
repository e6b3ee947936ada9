"""Line art from colour art: `pix2pix data sketch SRC --out DIR` writes aligned (line art | colour) pairs.

A sketch-colourisation user arrives with coloured illustrations and no line art. Two ways to
draw it, both on scikit-image's filters:

- `xdog` (default): the extended difference of Gaussians (Winnemöller, Kyprianidis and Olsen
  2012, "XDoG: An eXtended difference-of-Gaussians compendium"), the filter most sketch datasets
  are made with. D = G_sigma(I) - tau * G_{k sigma}(I) on the luminance I in [0, 1]; a pixel is
  white where D >= epsilon and 1 + tanh(phi * (D - epsilon)) below it. Flat regions, light or
  dark, come out white; only edges draw. The defaults give clean 1-2 px lines on illustrations
  at 256 px (sigma 0.6, k 4.5, tau 0.95, epsilon 0, phi 200); raise sigma for thicker lines and
  fewer details, lower tau for more fill in dark areas.
- `canny`: Canny's edge detector (sigma 1.5), a cheaper, harder-edged line: one-pixel edges
  dilated to two. Faster, but it also outlines soft shading.
- `strokes`, for painted pictures (shading, dark garments, texture): the difference of Gaussians
  without XDoG's tone term (tau 1: D = G_sigma(I) - G_{k sigma}(I), a band-pass that is 0 on any flat
  area, light or dark) on the luminance after a median filter (which flattens speckle: fur, mail,
  foliage), drawn where D < -epsilon, on the dark side of each edge, as 1 + tanh(phi * (D + epsilon)),
  and no solid ink by default. A dark cloak comes out as its outline, not a silhouette, so its inside
  can take a hint and be filled; a flat clip-art black (a flag's stripe) is outlined too, where `xdog`
  with ink keeps it black (docs/images/sketch_methods.png shows both kinds of art side by side).

All are given for 256 px pictures and scale with `size` (sigma, the median filter's size and canny's
dilation, times size / 256), so a line is as wide, relative to the picture, at every size. Solid ink stays solid
(`xdog` and `canny`; `strokes` turns it off unless `ink` is given):
an edge filter draws a thick black stroke or a black area as its two outlines, so near-black pixels
(all three channels below `ink`, 0.2 by default: the HSV value; 0 turns it off) are drawn black as
they are, with the soft edge XDoG draws (1 + tanh(INK_PHI * (V - ink)) below it). The value, not
the luminance: a saturated blue or red is dark in luminance but is a colour to fill, not ink.

Each image is composited on white (transparency), turned upright (EXIF), fitted to a square of
`size` (`fit='pad'`: keep the whole image and pad with white, the default; `fit='crop'`: cut the
centre square) and written to train/ val/ test/ by a stable hash of its path, so adding images
later never moves the ones already split. Pairs are written to a staging folder beside `out` and
moved into it only when every image has been read: a file that cannot be read stops the command
with its name and leaves no output behind. `preview` writes a contact sheet to judge the lines
before training.
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps
from tqdm.auto import tqdm

from ..images import is_image_path, load_image
from ..io import atomic_path, atomic_write_text, staged_files
from ..options import SKETCH_FITS, SKETCH_METHODS
from .pairs import side_by_side
from .splits import DEFAULT_FRACTIONS, check_fractions, split_of_name

log = logging.getLogger(__name__)
REFERENCE_SIZE = 256  # the size the filters' parameters are given for; they scale with the output size
INK = 0.2  # luminance below which a pixel is solid ink, drawn black as it is
INK_PHI = 40.0  # sharpness of ink's edge (an 8-bit level below `ink` is ~0.15 darker than white)


@dataclass(frozen=True)
class XDoG:
    """Parameters of the XDoG filter (see the module docstring)."""

    sigma: float = 0.6
    k: float = 4.5
    tau: float = 0.95
    epsilon: float = 0.0
    phi: float = 200.0

    def __post_init__(self) -> None:
        for name in ("sigma", "k", "phi"):
            if not getattr(self, name) > 0:
                raise ValueError(f"xdog {name} must be > 0, got {getattr(self, name)}")
        if not 0 < self.tau <= 1:
            raise ValueError(f"xdog tau must be in (0, 1], got {self.tau}")


@dataclass(frozen=True)
class Strokes:
    """Parameters of the `strokes` filter at 256 px (see the module docstring)."""

    sigma: float = 1.6
    k: float = 1.6
    epsilon: float = 0.01  # a step of about 0.15 in luminance draws; speckle of +-0.05 does not
    phi: float = 300.0
    median: int = 5  # the median filter's side (px) before the edges: speckle this small is flattened

    def __post_init__(self) -> None:
        for name in ("sigma", "phi"):
            if not getattr(self, name) > 0:
                raise ValueError(f"strokes {name} must be > 0, got {getattr(self, name)}")
        if not self.k > 1:
            raise ValueError(f"strokes k must be > 1, got {self.k}")
        if self.epsilon < 0 or self.median < 1:
            raise ValueError(f"strokes epsilon must be >= 0 and median >= 1, got {self.epsilon}, {self.median}")


def luminance(img: Image.Image) -> np.ndarray:
    """(H, W) float in [0, 1] from an RGB image (ITU-R 601, as PIL's 'L')."""
    return np.asarray(img.convert("L"), dtype=np.float64) / 255.0


def xdog(img: Image.Image, params: XDoG | None = None, *, scale: float = 1.0, ink: float = INK) -> Image.Image:
    """Line art by XDoG: dark lines on white, greyscale as RGB; `scale` multiplies sigma (size / 256)."""
    from skimage.filters import gaussian

    p = params or XDoG()
    lum = luminance(img)
    sigma = p.sigma * scale
    d = gaussian(lum, sigma=sigma) - p.tau * gaussian(lum, sigma=p.k * sigma)
    out = np.where(d >= p.epsilon, 1.0, 1.0 + np.tanh(p.phi * (d - p.epsilon)))
    return _to_rgb(with_ink(out, img, ink))


def strokes(img: Image.Image, params: Strokes | None = None, *, scale: float = 1.0, ink: float = 0.0) -> Image.Image:
    """Line art by edges only: dark strokes on white, greyscale as RGB, flat areas (dark ones too) white;
    `scale` (size / 256) multiplies sigma and the median filter's side."""
    from scipy.ndimage import median_filter
    from skimage.filters import gaussian

    p = params or Strokes()
    lum = luminance(img)
    side = max(1, int(p.median * scale + 0.5))
    if side > 1:
        lum = median_filter(lum, size=side, mode="nearest")
    sigma = p.sigma * scale
    d = gaussian(lum, sigma=sigma) - gaussian(lum, sigma=p.k * sigma)
    out = np.where(d >= -p.epsilon, 1.0, 1.0 + np.tanh(p.phi * (d + p.epsilon)))
    return _to_rgb(with_ink(out, img, ink))


def canny(img: Image.Image, *, sigma: float = 1.5, scale: float = 1.0, ink: float = INK) -> Image.Image:
    """Line art by Canny edges, dilated to two pixels at 256 px: dark lines on white."""
    from scipy.ndimage import binary_dilation
    from skimage.feature import canny as canny_edges

    edges = canny_edges(luminance(img), sigma=sigma * scale)
    width = max(1, round(2 * scale))
    if width > 1:
        edges = binary_dilation(edges, structure=np.ones((width, width), dtype=bool))
    return _to_rgb(with_ink(np.where(edges, 0.0, 1.0), img, ink))


def with_ink(line: np.ndarray, img: Image.Image, ink: float) -> np.ndarray:
    """`line` (H, W) in [0, 1] with solid ink: pixels of `img` whose channels are all below `ink` drawn
    dark, as XDoG draws a line."""
    if ink <= 0:
        return line
    value = np.asarray(img.convert("RGB"), dtype=np.float64).max(axis=2) / 255.0
    solid = np.where(value >= ink, 1.0, 1.0 + np.tanh(INK_PHI * (value - ink)))
    return np.minimum(line, solid)


def _to_rgb(values: np.ndarray) -> Image.Image:
    grey = Image.fromarray(np.round(np.clip(values, 0, 1) * 255).astype(np.uint8), mode="L")
    return grey.convert("RGB")


def fit_square(img: Image.Image, size: int, fit: str = "pad") -> Image.Image:
    """`size` x `size`: the whole image on white padding ('pad') or its centre square ('crop')."""
    if fit == "crop":
        return ImageOps.fit(img, (size, size), Image.LANCZOS)
    if fit != "pad":
        raise ValueError(f"unknown fit {fit!r}; valid: {', '.join(SKETCH_FITS)}")
    return ImageOps.pad(img, (size, size), Image.LANCZOS, color=(255, 255, 255))


def find_images(src: Path) -> list[Path]:
    """Image files under `src` (recursively, hidden ones skipped), or `src` itself."""
    if src.is_file():
        return [src]
    if not src.is_dir():
        raise FileNotFoundError(f"source not found: {src}")
    files = sorted(
        p
        for p in src.rglob("*")
        if p.is_file() and is_image_path(p) and not any(part.startswith(".") for part in p.relative_to(src).parts)
    )
    if not files:
        raise ValueError(f"no images in {src} (looked for png, jpg, webp, bmp, tif)")
    return files


@dataclass
class SketchSummary:
    out: Path
    counts: dict[str, int] = field(default_factory=dict)
    preview: Path | None = None


def make_sketch_dataset(
    src: str | Path,
    out: str | Path,
    *,
    method: str = "xdog",
    size: int = 256,
    fit: str = "pad",
    params: XDoG | None = None,
    canny_sigma: float = 1.5,
    ink: float | None = None,
    stroke_params: Strokes | None = None,
    fractions: dict[str, float] | None = None,
    preview: int = 16,
    workers: int | None = None,
    progress: bool = False,
) -> SketchSummary:
    """Write aligned (line art | colour) pairs of every image under `src` into out/{train,val,test}.
    `ink` None: INK for xdog and canny, 0 (off) for strokes."""
    if method not in SKETCH_METHODS:
        raise ValueError(f"unknown method {method!r}; valid: {', '.join(SKETCH_METHODS)}")
    if fit not in SKETCH_FITS:
        raise ValueError(f"unknown fit {fit!r}; valid: {', '.join(SKETCH_FITS)}")
    if size < 8:
        raise ValueError(f"size must be at least 8, got {size}")
    if ink is None:
        ink = 0.0 if method == "strokes" else INK
    if not 0 <= ink < 1:
        raise ValueError(f"ink must be in [0, 1), got {ink}")
    src, out = Path(src), Path(out)
    files = find_images(src)
    fr = {**DEFAULT_FRACTIONS, **(fractions or {})}
    check_fractions(fr)
    params, stroke_params = params or XDoG(), stroke_params or Strokes()
    scale = size / REFERENCE_SIZE

    def one(path: Path, stage: Path) -> tuple[str, Path]:
        rel = path.relative_to(src) if src.is_dir() else Path(path.name)
        colour = fit_square(load_image(path, channels=3), size, fit)
        if method == "xdog":
            line = xdog(colour, params, scale=scale, ink=ink)
        elif method == "strokes":
            line = strokes(colour, stroke_params, scale=scale, ink=ink)
        else:
            line = canny(colour, sigma=canny_sigma, scale=scale, ink=ink)
        pair = side_by_side(line, colour)
        dest = Path(split_of_name(rel.with_suffix("").as_posix(), fr)) / rel.with_suffix(".png")
        (stage / dest).parent.mkdir(parents=True, exist_ok=True)
        pair.save(stage / dest, format="PNG")
        return dest.parts[0], dest

    counts = {"train": 0, "val": 0, "test": 0}
    written: list[Path] = []
    with staged_files(out) as stage:  # every image read, or nothing written
        with ThreadPoolExecutor(max_workers=workers or 2) as pool:  # PIL and scikit-image release the GIL
            done = pool.map(lambda path: one(path, stage), files)
            for split, dest in tqdm(done, total=len(files), desc="sketch", unit="img", disable=not progress):
                counts[split] += 1
                written.append(dest)
    summary = SketchSummary(out=out, counts=counts)
    if preview:
        chosen = written[:: max(1, len(written) // preview)][:preview]
        summary.preview = contact_sheet([out / d for d in chosen], out / "preview.png")
    meta = {
        "source": str(src),
        "method": method,
        "size": size,
        "fit": fit,
        "counts": counts,
        "ink": ink,
        "xdog": {**vars(params), "sigma_at_size": params.sigma * scale} if method == "xdog" else None,
        "canny_sigma": canny_sigma * scale if method == "canny" else None,
        "strokes": {**vars(stroke_params), "sigma_at_size": stroke_params.sigma * scale}
        if method == "strokes"
        else None,
        "fractions": fr,
        "direction": "AtoB: A = line art, B = colour",
    }
    atomic_write_text(out / "dataset.json", json.dumps(meta, indent=2) + "\n")
    return summary


def contact_sheet(pairs: list[Path], dest: Path, *, columns: int = 4, cell: int = 160) -> Path:
    """A grid of pairs (line art | colour), `columns` pairs a row, each side `cell` px: look before training."""
    if not pairs:
        raise ValueError("no pairs for a preview")
    rows = (len(pairs) + columns - 1) // columns
    gap = 8
    sheet = Image.new("RGB", (columns * (2 * cell + gap) + gap, rows * (cell + gap) + gap), (235, 235, 235))
    for i, path in enumerate(pairs):
        with Image.open(path) as pair:
            img = pair.convert("RGB").resize((2 * cell, cell), Image.LANCZOS)
        r, c = divmod(i, columns)
        sheet.paste(img, (gap + c * (2 * cell + gap), gap + r * (cell + gap)))
    with atomic_path(dest) as tmp:
        sheet.save(tmp, format="PNG")
    return dest
