"""Inference: `Pix2Pix.from_pretrained(run_dir)` rebuilds the generator from the run folder alone.

The pipeline is callable on PIL images, numpy arrays (H, W, C uint8) or tensors ((C, H, W) or
(B, C, H, W) in [-1, 1]), singly or in lists, and returns the same kind. Any input size works:
the image is padded to the multiple the U-Net needs and cropped back, never silently resized.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

from .config import Config
from .data.images import pil_to_uint8, to_mode
from .data.transforms import normalize
from .models import make_generator, size_multiple
from .training.checkpoint import (
    GENERATOR_EMA_FILE,
    GENERATOR_FILE,
    checkpoint_dir,
    load_config,
    load_weights,
    read_meta,
)

WEIGHTS = ("auto", "ema", "raw")
BACKENDS = ("torch", "onnx")


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad (B, C, H, W) on the right and bottom, replicating the border, to a multiple of `multiple`."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
    return x, (h, w)


class Pix2Pix:
    """A trained generator and what is needed to apply it: channels, size multiple, device."""

    def __init__(
        self, generator: nn.Module, config: Config, *, device: str | torch.device = "cpu", onnx: Any = None
    ) -> None:
        self.config = config
        self.device = torch.device(device)
        self.generator = generator.to(self.device).eval()
        self.size_multiple = size_multiple(config.model.generator)
        self.meta: dict[str, Any] = {}
        self.onnx = onnx  # an OnnxGenerator: ONNX Runtime runs the forward pass instead of torch

    @classmethod
    def from_pretrained(
        cls,
        run_dir: str | Path,
        *,
        checkpoint: str = "last",
        weights: str = "auto",
        device: str | torch.device = "cpu",
        backend: str = "torch",
    ) -> Pix2Pix:
        """Load the generator of `run_dir/checkpoints/<checkpoint>` with its saved config.

        `weights`: 'ema' (the averaged weights), 'raw' (the last training weights), or 'auto':
        EMA where the run kept one, else raw. `backend`: 'torch', or 'onnx' to run the generator in
        ONNX Runtime; the export happens on first use and is cached in the checkpoint folder.
        """
        if weights not in WEIGHTS:
            raise ValueError(f"unknown weights {weights!r}; valid: {', '.join(WEIGHTS)}")
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; valid: {', '.join(BACKENDS)}")
        folder = checkpoint_dir(run_dir, checkpoint)
        config = load_config(folder)
        generator = make_generator(config.model, init=False)
        ema_file = folder / GENERATOR_EMA_FILE
        if weights == "ema" and not ema_file.is_file():
            raise FileNotFoundError(f"{folder}: no EMA weights ({GENERATOR_EMA_FILE}); train with --ema-decay")
        use_ema = weights == "ema" or (weights == "auto" and ema_file.is_file())
        load_weights(generator, ema_file if use_ema else folder / GENERATOR_FILE)
        onnx = None
        if backend == "onnx":
            from .export.onnx import OnnxGenerator, export_onnx

            onnx_file = folder / f"generator{'_ema' if use_ema else ''}.onnx"
            if not onnx_file.is_file():
                export_onnx(generator, onnx_file, input_nc=config.model.input_nc,
                            sample_size=size_multiple(config.model.generator))  # fmt: skip
            onnx = OnnxGenerator(onnx_file)
        pipe = cls(generator, config, device=device, onnx=onnx)
        pipe.meta = {**read_meta(folder), "weights": "ema" if use_ema else "raw", "backend": backend}
        return pipe

    @torch.inference_mode()
    def translate_tensor(self, x: torch.Tensor, *, dropout: bool = False) -> torch.Tensor:
        """(B, C, H, W) in [-1, 1] -> (B, output_nc, H, W) in [-1, 1], any H and W."""
        if x.ndim != 4 or x.shape[1] != self.config.model.input_nc:
            raise ValueError(
                f"expected a (B, {self.config.model.input_nc}, H, W) tensor, got shape {tuple(x.shape)}"
            )
        padded, (h, w) = pad_to_multiple(x.to(self.device, torch.float32), self.size_multiple)
        if self.onnx is not None:
            if dropout:
                raise ValueError("test-time dropout needs the torch backend (the ONNX graph has dropout folded away)")
            return self.onnx(padded)[..., :h, :w].to(self.device)
        self._set_dropout(dropout)
        return self.generator(padded)[..., :h, :w]

    def __call__(
        self,
        images: Any,
        *,
        size: int | None = None,
        dropout: bool = False,
        batch_size: int = 8,
    ) -> Any:
        """Translate one image or a list of them; the output has the input's kind and size
        (or `size` x `size` when given)."""
        if isinstance(images, (list, tuple)):
            return self._translate_list(list(images), size=size, dropout=dropout, batch_size=batch_size)
        if isinstance(images, torch.Tensor):
            x = images if images.ndim == 4 else images.unsqueeze(0)
            if size is not None:
                x = F.interpolate(x.float(), size=(size, size), mode="bicubic", align_corners=False).clamp(-1, 1)
            out = torch.cat(
                [self.translate_tensor(x[i : i + batch_size], dropout=dropout) for i in range(0, len(x), batch_size)]
            )
            return out if images.ndim == 4 else out[0]
        return self._translate_list([images], size=size, dropout=dropout, batch_size=1)[0]

    def _translate_list(self, images: list[Any], *, size: int | None, dropout: bool, batch_size: int) -> list[Any]:
        tensors = [self._to_tensor(img, size) for img in images]
        results: list[torch.Tensor | None] = [None] * len(tensors)
        # Batch images of one shape together; other shapes run on their own.
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, t in enumerate(tensors):
            by_shape.setdefault(tuple(t.shape), []).append(i)
        for indices in by_shape.values():
            for j in range(0, len(indices), batch_size):
                chunk = indices[j : j + batch_size]
                out = self.translate_tensor(torch.stack([tensors[i] for i in chunk]), dropout=dropout)
                for i, o in zip(chunk, out):
                    results[i] = o
        return [self._from_tensor(r, like) for r, like in zip(results, images)]  # type: ignore[arg-type]

    def _to_tensor(self, img: Any, size: int | None) -> torch.Tensor:
        if isinstance(img, np.ndarray):
            img = Image.fromarray(img if img.dtype == np.uint8 else np.clip(img * 255, 0, 255).astype(np.uint8))
        if not isinstance(img, Image.Image):
            raise ValueError(f"cannot translate a {type(img).__name__}: expected a PIL image, array or tensor")
        img = to_mode(img, self.config.model.input_nc)
        if size is not None:
            img = img.resize((size, size), Image.BICUBIC)
        return normalize(pil_to_uint8(img))

    @staticmethod
    def _from_tensor(out: torch.Tensor, like: Any) -> Any:
        arr = ((out.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu().numpy().transpose(1, 2, 0)
        if arr.shape[2] == 1:
            arr = arr[:, :, 0]
        return arr if isinstance(like, np.ndarray) else Image.fromarray(arr)

    def _set_dropout(self, enabled: bool) -> None:
        # Eval mode everywhere (running BatchNorm statistics); dropout back on if asked, as
        # the paper's only source of noise at test time.
        self.generator.eval()
        if enabled:
            for m in self.generator.modules():
                if isinstance(m, nn.Dropout):
                    m.train()


def translate_paths(
    pipe: Pix2Pix,
    inputs: Sequence[str | Path],
    out_dir: str | Path,
    *,
    size: int | None = None,
    dropout: bool = False,
    batch_size: int = 8,
    progress: bool = False,
) -> list[Path]:
    """Translate image files and folders (recursively) into `out_dir` as PNGs; return the paths."""
    from tqdm.auto import tqdm

    from .data.images import is_image_path, load_image

    files: list[tuple[Path, Path]] = []  # (source, path relative to out_dir)
    for item in map(Path, inputs):
        if item.is_dir():
            found = sorted(p for p in item.rglob("*") if p.is_file() and is_image_path(p))
            if not found:
                raise ValueError(f"no images in folder {item}")
            files += [(p, p.relative_to(item).with_suffix(".png")) for p in found]
        elif item.exists():
            files.append((item, Path(item.stem + ".png")))
        else:
            raise FileNotFoundError(f"input not found: {item}")
    out_dir = Path(out_dir)
    written = []
    for j in tqdm(range(0, len(files), batch_size), desc="translate", unit="batch", disable=not progress):
        chunk = files[j : j + batch_size]
        images = [load_image(src, channels=pipe.config.model.input_nc) for src, _ in chunk]
        for (_, rel), result in zip(chunk, pipe(images, size=size, dropout=dropout, batch_size=batch_size)):
            dest = out_dir / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            result.save(dest)
            written.append(dest)
    return written
