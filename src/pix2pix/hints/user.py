"""A user's hints: an RGBA image of the sketch's size (alpha > 0 marks a hint, its RGB is the colour)
or a list of points {"x", "y", "color": "#rrggbb", "size"}, given inline or in a file."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageColor

from ..images import from_uint8, open_image
from .format import paint_boxes, square_boxes
from .simulation import eval_patch_size


def hints_from_rgba(img: Image.Image, *, output_nc: int = 3) -> torch.Tensor:
    """(C + 1, H, W) from an RGBA image: alpha > 0 marks a hint, its RGB is the colour."""
    if "A" not in img.getbands() and not (img.mode == "P" and "transparency" in img.info):
        raise ValueError(f"hints image has no alpha channel (mode {img.mode}): alpha > 0 marks a hint")
    arr = np.asarray(img.convert("RGBA"), dtype=np.float32)  # (H, W, 4)
    mask = torch.from_numpy(arr[..., 3] > 0).float()[None]
    colour = torch.from_numpy(from_uint8(arr[..., :3])).permute(2, 0, 1)
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
    colours = from_uint8(np.array([p["rgb"] for p in parsed], dtype=np.float32))  # (K, 3)
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
        return hints_from_points(
            list(hints) if isinstance(hints, tuple) else hints, width, height, output_nc=output_nc, source=source
        )
    raise ValueError(
        f"{source}: expected an RGBA image, a list of points, a hints file's path or a tensor, "
        f"got {type(hints).__name__}"
    )


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
    img = open_image(path)
    try:
        return as_hint_map(img, width, height, output_nc=output_nc, source=str(path))
    except ValueError as err:
        msg = str(err)
        raise ValueError(msg if msg.startswith(str(path)) else f"{path}: {msg}") from None
