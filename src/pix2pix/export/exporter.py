"""`pix2pix export`: a generator file any runtime can load, a parity check, and a sidecar JSON.

The sidecar says everything a user of the file needs without this package: channels, value
range and normalisation, layout, the size multiple and how to pad to it, the training size and
direction. The parity check runs the exported file on real images from the run's dataset and
compares with PyTorch; above the tolerance the export fails.
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .. import __version__
from ..config import apply_overrides
from ..data.layouts import dataset_for
from ..fullsize import FOLLOWED, fullsize_steps
from ..hints import EXACT, FIELD, FILLED, GAP, REGION_LINE, fill_as_trained
from ..hints.fill import NEAR
from ..images import from_uint8, from_unit
from ..inference import Pix2Pix, pad_to_multiple
from ..io import atomic_path, atomic_write_text
from ..onnx_runtime import OPSET, OnnxGenerator, _quiet_exporter, export_onnx
from ..options import EXPORT_FORMATS

log = logging.getLogger(__name__)
PARITY_TOLERANCE = 1e-4


@dataclass
class ExportResult:
    path: Path
    sidecar: Path
    max_abs_diff: float
    n_images: int
    source: str = ""  # where the parity images came from


def parity_images(
    pipe: Pix2Pix, n: int = 8, *, images_dir: str | Path | None = None
) -> tuple[torch.Tensor, torch.Tensor | None, str]:
    """Up to n input images (B, C, S, S) in [-1, 1] for the parity check, their hint maps for a
    hints model, and where they came from: `images_dir`, else the run's dataset (test, val or
    train split; hints simulated from the targets), else drawings made here (the run folder was
    copied without its data)."""
    from ..config import VAL_HINTS
    from ..hints import eval_hints
    from ..run_folder import resolve_data_root

    cfg = pipe.config
    s = cfg.data.crop_size
    if images_dir is not None:
        from ..images import is_image_path, load_image, pil_to_uint8

        folder = Path(images_dir)
        files = sorted(p for p in folder.rglob("*") if p.is_file() and is_image_path(p))[:n] if folder.is_dir() else []
        if not files:
            raise FileNotFoundError(f"no images for the parity check in {folder}")
        x = from_uint8(torch.stack([pil_to_uint8(load_image(f, pipe.in_nc).resize((s, s))) for f in files]))
        return x, synthetic_hints(pipe, len(x), s) if pipe.takes_hints else None, f"images from {folder}"
    root = resolve_data_root(pipe.meta.get("checkpoint_dir", "."), cfg)
    for split in ("test", "val", "train"):
        try:
            ds = dataset_for(apply_overrides(cfg, {"root": root}), split, load_size=s, cache=False)
        except (FileNotFoundError, ValueError):
            continue
        idx = torch.arange(min(n, len(ds)))
        a_u8, b_u8 = ds.batch(idx)
        if pipe.direction == "BtoA":
            a_u8, b_u8 = b_u8, a_u8
        a, b = from_uint8(a_u8), from_uint8(b_u8)
        hints = eval_hints(a, b, [ds.name(int(i)) for i in idx], VAL_HINTS) if pipe.takes_hints else None
        return a, hints, f"real images from the run's dataset ({split} split)"
    log.info("the run's dataset %r is not here: checking parity on drawings made for it", cfg.data.root)
    x = synthetic_drawings(n, s, pipe.in_nc)
    return (
        x,
        synthetic_hints(pipe, n, s) if pipe.takes_hints else None,
        "drawings made here (the run's dataset is not here)",
    )


def synthetic_drawings(n: int, size: int, channels: int, *, seed: int = 0) -> torch.Tensor:
    """n line drawings (ellipses, boxes, strokes on white), (n, C, S, S) in [-1, 1], the same every time."""
    import numpy as np
    from PIL import Image, ImageDraw

    from ..images import pil_to_uint8, to_mode

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        img = Image.new("RGB", (size, size), "white")
        draw = ImageDraw.Draw(img)
        for _ in range(4):
            x0, y0, x1, y1 = sorted(rng.integers(0, size, 2).tolist()) + sorted(rng.integers(0, size, 2).tolist())
            box = (min(x0, x1), min(y0, y1), max(x0, x1) + 2, max(y0, y1) + 2)
            shape = rng.choice(["ellipse", "rectangle", "line"])
            getattr(draw, str(shape))(
                box, **({"fill": "black"} if shape == "line" else {"outline": "black"}), width=max(1, size // 32)
            )
        out.append(pil_to_uint8(to_mode(img, channels)))
    return from_uint8(torch.stack(out))


def synthetic_hints(pipe: Pix2Pix, n: int, size: int, *, seed: int = 0) -> torch.Tensor:
    """n hint maps of a few random colour squares each."""
    g = torch.Generator().manual_seed(seed)
    maps = torch.zeros(n, pipe.hint_nc, size, size)
    side = max(1, size // 16)
    for i in range(n):
        for _ in range(5):
            y, x = torch.randint(0, size - side + 1, (2,), generator=g).tolist()
            maps[i, :-1, y : y + side, x : x + side] = from_unit(torch.rand(pipe.hint_nc - 1, generator=g))[
                :, None, None
            ]
            maps[i, -1, y : y + side, x : x + side] = 1
    return maps


def export_torchscript(pipe: Pix2Pix, path: Path) -> Path:
    g = pipe.generator.eval()
    m = pipe.size_multiple
    sample = torch.zeros(2, pipe.net_in_nc, 2 * m, 3 * m)
    with torch.no_grad(), _quiet_exporter(), atomic_path(path) as tmp:
        torch.jit.trace(g, sample, check_trace=False).save(str(tmp))
    return path


def export_tflite(pipe: Pix2Pix, path: Path) -> Path:
    """TFLite through litert-torch (the `tflite` extra). TFLite graphs have static shapes: the
    input is fixed at 1 x C x S x S with S the training size, so resize inputs to S first."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import litert_torch
    except ImportError:
        raise ImportError("TFLite export needs litert-torch: pip install 'pix2pix[tflite]'") from None
    s = pipe.config.data.crop_size
    sample = torch.zeros(1, pipe.net_in_nc, s, s)
    with torch.no_grad(), warnings.catch_warnings(), atomic_path(path) as tmp:
        warnings.simplefilter("ignore")
        litert_torch.convert(pipe.generator.eval(), (sample,)).export(str(tmp))
    return path


class TFLiteGenerator:
    """The LiteRT interpreter behind a tensor-in, tensor-out call, one image at a time."""

    def __init__(self, path: Path) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from ai_edge_litert.interpreter import Interpreter
        self.interpreter = Interpreter(model_path=str(path))
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]["index"]
        self.output = self.interpreter.get_output_details()[0]["index"]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        outs = []
        for img in x:
            self.interpreter.set_tensor(self.input, img[None].float().contiguous().numpy())
            self.interpreter.invoke()
            outs.append(torch.from_numpy(self.interpreter.get_tensor(self.output).copy()))
        return torch.cat(outs)


def export_run(
    run_dir: str | Path,
    *,
    fmt: str = "onnx",
    out: str | Path | None = None,
    checkpoint: str = "auto",
    weights: str = "auto",
    images: torch.Tensor | None = None,
    direction: str = "AtoB",
    images_dir: str | Path | None = None,
) -> ExportResult:
    """Export the run's generator for `direction` as `fmt`, check it against PyTorch, write the sidecar JSON.

    The default file is RUN/export/NAME.onnx (.pt, .tflite) with NAME the network: `generator`
    (A -> B) or, for a CycleGAN run's BtoA, `generator_ba`.
    """
    from ..networks import family_for

    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"unknown format {fmt!r}; valid: {', '.join(EXPORT_FORMATS)}")
    pipe = Pix2Pix.from_pretrained(run_dir, checkpoint=checkpoint, weights=weights, direction=direction)
    suffix = {"onnx": ".onnx", "torchscript": ".pt", "tflite": ".tflite"}[fmt]
    name = family_for(pipe.config).generator_name(direction)
    path = Path(out) if out is not None else Path(run_dir) / "export" / f"{name}{suffix}"
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "onnx":
        export_onnx(pipe.generator, path, input_nc=pipe.net_in_nc, sample_size=pipe.size_multiple)
        runner = OnnxGenerator(path)
    elif fmt == "tflite":
        runner = TFLiteGenerator(export_tflite(pipe, path))
    else:
        export_torchscript(pipe, path)
        with _quiet_exporter():
            loaded = torch.jit.load(str(path))
        runner = lambda x: loaded(x)  # noqa: E731

    # Parity on real images at the training size, and (where shapes are dynamic) a padded odd size;
    # a hints model's with hints simulated from the targets.
    if images is not None:
        x, hints, source = images, None, "the images given"
    else:
        x, hints, source = parity_images(pipe, images_dir=images_dir)
    if pipe.takes_hints and hints is None:
        hints = torch.zeros(x.shape[0], pipe.hint_nc, *x.shape[-2:])
    diffs = []
    batches = [(x, hints)]
    if fmt != "tflite":
        resize = lambda t, mode: torch.nn.functional.interpolate(t, scale_factor=1.5, mode=mode)  # noqa: E731
        batches.append((resize(x, "bilinear").clamp(-1, 1), None if hints is None else resize(hints, "nearest")))
    for batch, h_map in batches:
        if h_map is not None:
            h_map = fill_as_trained(h_map, batch, pipe.config.model)  # the file takes the filled map
        want = pipe.translate_tensor(batch, hints=h_map)
        padded, (h, w) = pad_to_multiple(batch, pipe.size_multiple)
        if h_map is not None:
            padded = torch.cat([padded, pad_to_multiple(h_map, pipe.size_multiple, mode="constant")[0]], dim=1)
        with torch.no_grad():
            got = runner(padded)[..., :h, :w]
        diffs.append((got - want).abs().max().item())
    max_diff = max(diffs)
    if max_diff > PARITY_TOLERANCE:
        path.unlink(missing_ok=True)
        raise ValueError(
            f"exported {fmt} differs from PyTorch by {max_diff:.2e} (> {PARITY_TOLERANCE:.0e}); not written"
        )
    sidecar = path.with_suffix(path.suffix + ".json")
    atomic_write_text(sidecar, json.dumps(sidecar_dict(pipe, path, fmt, max_diff, len(x), source), indent=2) + "\n")
    return ExportResult(path=path, sidecar=sidecar, max_abs_diff=max_diff, n_images=len(x), source=source)


def _hints_sidecar(pipe: Pix2Pix) -> dict[str, Any]:
    """How a hints model's hint channels are made and its hints carried, every step as the library does it."""
    cfg, c = pipe.config, pipe.out_nc
    mode, blend = cfg.model.hint_regions, cfg.model.hint_blend
    out = {
        "channels": list(range(pipe.in_nc, pipe.net_in_nc)),
        "layout": f"input channels {pipe.in_nc}..{pipe.in_nc + c - 1}: hint colours, {pipe.in_nc + c}: mask",
        "colours": "the hint's colour normalised like the image (x / 127.5 - 1) where a hint is, 0 elsewhere",
        "mask": "1 where a hint is, 0 elsewhere",
        "no_hints": "all hint channels 0",
        "from_rgba": "alpha > 0 marks a hint pixel; its RGB is the colour",
        "points": "a point {x, y, color, size} is a size x size square of hint pixels from (int(y) - (size - 1) // 2, "
        "int(x) - (size - 1) // 2), size rounded (default 2 * max(1, min(H, W) // 64) + 1), clipped to the image; "
        "a later point over an earlier one",
        "padding": "pad the hint channels with zeros (not by replicating the border)",
        "resize": "to the working size: when both sides grow, nearest (source index floor(i * H / H')); else "
        "m = area(mask) and s = area(colours * mask) with full_size.shrink's pooling, mask' = 1 where m > 0, "
        "colours' = s / m there and 0 elsewhere",
        "regions": _regions_text(mode),
        "constants": {
            "region_line": REGION_LINE,
            "exact": EXACT,
            "field": FIELD,
            "near": NEAR,
            "filled": FILLED,
            "gap": GAP,
            "followed": FOLLOWED,
        },
    }
    if cfg.model.hint_fill:
        out["fill"] = (
            "at the working size, before the network, when some pixel has mask 1 (else the map is unchanged): "
            "the sources are the hint pixels (mask 1) in a region, pooled per cell of a grid of stride s = 1 where "
            f"max(h, w) <= {EXACT}, else max(1, max(h, w) // {FIELD}) (cell (y // s, x // s)) and per region: "
            "centroid (mean y, mean x of pixel indices), mean colour, pixel count m. The grid's cell centres are "
            "s * i + (s - 1) / 2, clipped to the image. At s = 1 a cell is a pixel and holds its own region; "
            "at s > 1 a cell holds two: the largest label among its pixels and the label of its pixel "
            "(s * i + s // 2, s * j + s // 2) (cells past the image padded with 0). For each of the two, in that "
            "order, a cell whose label's region holds a source has a field: "
            + (
                f"sum(m * colour / max(d2, {NEAR})) / sum(m / max(d2, {NEAR})) over the region's sources, d2 the "
                "squared distance from the cell centre to the centroid"
                if blend
                else "the colour of the region's source at the least round(d2) (d2 the squared distance from the "
                "cell centre to the centroid; ties to the first source in order of (cell, region))"
            )
            + f". A pixel with mask 0 whose region is the label of one of its cell's fields (the first that is) "
            f"takes that field's colour and mask {FILLED}; every other pixel is unchanged. "
            f"pix2pix.hints.fill_regions (blend={blend}, mode={mode!r}) is the reference"
        )
        out["propagate"] = (
            "optional and not part of this recipe: pix2pix's spread 'propagate' (hints.propagate_hints, a sparse "
            "solve per image) spreads the hints over the line art before this fill; the library's default, and "
            "what this recipe reproduces, is the fill alone"
        )
    out["carry"] = (
        "after full_size (or the network at the input's size), for line art only: regions as hints.regions says, "
        "on the input at its own size. Spots are the 4-connected components of hint pixels; a spot belongs to the "
        "region under its centre of mass (rounded) when that pixel is the spot's and in a region, else to the "
        "region holding most of its pixels (ties: the lower label); only its pixels in that region count. A "
        "region holding a spot is carried when it is the page (see hints.regions) or, when the network ran at a "
        "working size, when it owns no clean cell (full_size.compose_line_art, with these regions), unless the "
        f"output already follows it: the mean over its counted hint pixels of the mean over channels of |output - "
        f"hint colour| (on -1..1) is below {FOLLOWED}. A carried "
        "region's pixels, hint pixels included, take the colour hints.fill gives them with these regions (only the "
        "carried ones kept, sources from the spots' counted pixels), times L (compose's step 4), on -1..1. "
        "pix2pix.fullsize.carry_hints is the reference"
    )
    return out


def _regions_text(mode: str) -> str:
    """The fill's and the carry's regions, as fill.fill_labels makes them."""
    base = (
        "4-connected components (scipy.ndimage.label with a cross, numbered in scan order) of the pixels whose "
        f"mean over the image channels (on -1..1) is >= {REGION_LINE}; darker pixels are strokes (label 0). "
    )
    if mode == "closed":
        return base + "The page: every region with a pixel on the image's border; the fill never paints it."
    return base + (
        f"Mode open: first strokes are dilated by a 3x3 cross {GAP // 2} time(s) and the rest labelled, then, "
        f"{GAP // 2 + 1} time(s), every unlabelled non-stroke pixel next to a labelled one (grey dilation of the "
        "labels with the cross: the largest neighbouring label) takes it; non-stroke pixels still unlabelled are "
        "labelled as regions of their own after the others. The page: the largest region with a pixel on the "
        "border (ties: the lower label); the fill never paints it."
    )


def sidecar_dict(
    pipe: Pix2Pix, path: Path, fmt: str, max_diff: float, n_images: int, source: str = ""
) -> dict[str, Any]:
    cfg = pipe.config
    out = {
        "format": fmt,
        "file": path.name,
        "opset": OPSET if fmt == "onnx" else None,
        "static_input_shape": [1, pipe.net_in_nc, cfg.data.crop_size, cfg.data.crop_size] if fmt == "tflite" else None,
        "model": cfg.model.method,
        "translates": pipe.direction,
        "input": {
            "name": "input",
            "layout": "NCHW",
            "dtype": "float32",
            "channels": pipe.net_in_nc,
            "image_channels": pipe.in_nc,
            "colour": "RGB" if pipe.in_nc == 3 else "L",
            "range": [-1.0, 1.0],
            "from_uint8": "x / 127.5 - 1",
            "transparency": "composite on white first",
        },
        "output": {
            "name": "output",
            "layout": "NCHW",
            "dtype": "float32",
            "channels": pipe.out_nc,
            "range": [-1.0, 1.0],
            "to_uint8": "round((y + 1) * 127.5), clipped to 0..255",
        },
        "size_multiple": pipe.size_multiple,
        "padding": (
            "pad right and bottom by replicating the border up to a multiple of size_multiple; crop the output back"
        ),
        # What `translate`, the API and the server do with an input of another size (fullsize.py); run at
        # the input's own size after padding, the network alone is what they call scale "native".
        "full_size": fullsize_steps(cfg.data.crop_size),
        "train_size": cfg.data.crop_size,
        "direction": cfg.data.direction,
        "weights": pipe.meta.get("weights"),
        "step": pipe.meta.get("step"),
        "parity": {
            "max_abs_diff_vs_pytorch": max_diff,
            "tolerance": PARITY_TOLERANCE,
            "images": n_images,
            "source": source,
        },
        "pix2pix_version": __version__,
        "config": cfg.to_dict(),
    }
    if pipe.takes_hints:
        out["hints"] = _hints_sidecar(pipe)
    return out
