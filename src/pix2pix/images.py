"""Images: reading and writing them, with errors that name the file, and their value ranges.

Value ranges, one conversion each: files hold uint8 [0, 255]; networks take and give float [-1, 1]
(`from_uint8`, `to_uint8`); metrics and plots take [0, 1] (`to_unit`, `from_unit`).

Every mode a user's folder may hold loads as 8-bit RGB (or L): greyscale, RGBA and LA composited
on white, palette images with or without transparency, and 16-bit greyscale scaled down. An EXIF
orientation tag (a phone's portrait photo) is applied, so pixels stand as the photo is shown.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


def is_image_path(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def to_mode(img: Image.Image, channels: int = 3) -> Image.Image:
    """Convert any PIL image to RGB (channels=3) or L (channels=1), transparency on white."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img).astype(np.float64)
        # 16-bit data (PNG 'I;16' or 'I' holding 0..65535) scaled to 0..255, not clipped.
        top = 65535.0 if arr.max(initial=0) > 255 or img.mode.startswith("I;16") else 255.0
        img = Image.fromarray(np.round(arr * (255.0 / top)).clip(0, 255).astype(np.uint8), mode="L")
    elif img.mode == "F":
        arr = np.asarray(img)
        img = Image.fromarray(np.round(arr.clip(0, 1) * 255).astype(np.uint8), mode="L")
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode in ("RGB", "L") and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return img.convert("RGB" if channels == 3 else "L")


def upright(img: Image.Image) -> Image.Image:
    """Apply the EXIF orientation tag, if any: the pixels as a viewer shows them."""
    return ImageOps.exif_transpose(img) if img.getexif().get(0x0112, 1) != 1 else img


def open_image(path: str | Path) -> Image.Image:
    """Open and fully decode an image in its own mode, upright; errors name the file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"image not found: {path}")
    if path.is_dir():
        raise ValueError(f"{path}: is a folder, not an image")
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: empty file (0 bytes)")
    try:
        with Image.open(path) as img:
            img.load()  # force the decode here, so a truncated file fails now, by name
            if getattr(img, "n_frames", 1) > 1:
                img.seek(0)
            out = upright(img)
            return out.copy() if out is img else out
    except UnidentifiedImageError:
        raise ValueError(f"{path}: not a readable image") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise ValueError(f"{path}: corrupt or truncated image ({err})") from None


def load_image(path: str | Path, channels: int = 3) -> Image.Image:
    """Open and fully decode an image as RGB (or L), upright; raise FileNotFoundError / ValueError naming the file."""
    return to_mode(open_image(path), channels)


def pil_to_uint8(img: Image.Image) -> torch.Tensor:
    """PIL image -> (C, H, W) uint8 tensor."""
    arr = np.asarray(img, dtype=np.uint8)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))


def from_uint8(x: Any) -> Any:
    """uint8 [0, 255] -> float32 [-1, 1]: a tensor, or a numpy array (float32 where it is). A float32
    tensor of 0..255 (a crop written as floats: data/transforms.py) is scaled in place, exactly as the
    uint8 one would be."""
    if isinstance(x, torch.Tensor):
        return x.float().div_(127.5).sub_(1.0)
    return x / 127.5 - 1.0


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] -> uint8 [0, 255], rounded; values outside the range are clipped first."""
    return ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] -> float [0, 1], clipped."""
    return (x.clamp(-1, 1) + 1) / 2


def from_unit(x: torch.Tensor) -> torch.Tensor:
    """float [0, 1] -> float [-1, 1]."""
    return x * 2 - 1


def tensor_to_pil(x: torch.Tensor) -> Image.Image:
    """(C, H, W) float tensor in [-1, 1] -> PIL image."""
    arr = to_uint8(x).cpu().numpy().transpose(1, 2, 0)
    return Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)


def save_image(img: Image.Image, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
