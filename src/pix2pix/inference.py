"""Inference: `Pix2Pix.from_pretrained(run_dir)` rebuilds the generator from the run folder alone.

The pipeline is callable on PIL images, numpy arrays (H, W, C uint8) or tensors ((C, H, W) or
(B, C, H, W) in [-1, 1]), singly or in lists, and returns the same kind at the input's size. By
default (`scale="auto"`) the generator runs at the scale it was trained for and line art keeps its
own strokes at full size (fullsize.py); `scale="native"` runs the generator on the input as it is
(padded to the multiple it needs and cropped back), `size=N` resizes inputs to N x N first.
A hints model also takes colour hints (`hints=`: an RGBA image or a list of points; see hints.py).
A CycleGAN run translates either way (`direction=`).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

from .config import Config
from .devices import resolve_device
from .fullsize import carry_hints, check_pixels, compose, to_size, working_size
from .hints import as_hint_map, fill_as_trained, propagate_hints, resize_hints
from .images import from_uint8, load_image, pil_to_uint8, to_mode, to_uint8
from .models import size_multiple
from .networks import family_for
from .options import BACKENDS, HINT_SPREADS, SCALES, WEIGHTS
from .run_folder import checkpoint_dir, load_config, load_weights, read_meta, weights_file


def pad_to_multiple(x: torch.Tensor, multiple: int, *, mode: str = "replicate") -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad (B, C, H, W) on the right and bottom, replicating the border, to a multiple of `multiple`.

    `mode='constant'` pads with zeros instead (a hint map: no hints in the padding).
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, (h, w)


class Pix2Pix:
    """A trained generator and what is needed to apply it: channels, hints, size multiple, device."""

    def __init__(
        self,
        generator: nn.Module,
        config: Config,
        *,
        device: str | torch.device = "cpu",
        onnx: Any = None,
        direction: str = "AtoB",
        spread: str = "fill",
    ) -> None:
        self.config = config
        self.direction = direction
        # Image channels in, hint-map channels (0 without hints), channels out.
        self.in_nc, self.hint_nc, self.out_nc = family_for(config).generator_channels(config.model, direction)
        self._set_spread(spread)
        self.device = torch.device(device)
        self.generator = generator.to(self.device).eval()
        self.size_multiple = size_multiple(config.model.generator)
        self.meta: dict[str, Any] = {}
        self.onnx = onnx  # an OnnxGenerator: ONNX Runtime runs the forward pass instead of torch

    @property
    def takes_hints(self) -> bool:
        return self.hint_nc > 0

    @property
    def spreads(self) -> tuple[str, ...]:
        """The hint spreads this model takes (options.HINT_SPREADS): propagate only after a fill it was trained with."""
        if not self.takes_hints:
            return ()
        return HINT_SPREADS if self.config.model.hint_fill else ("fill",)

    def with_spread(self, spread: str) -> Pix2Pix:
        """This pipeline spreading hints by `spread` (the same generator, shared; this one unchanged)."""
        if spread == self.spread:
            return self
        other = copy.copy(self)
        other.meta = {**self.meta, "spread": spread}
        other._set_spread(spread)
        return other

    def _set_spread(self, spread: str) -> None:
        if spread not in HINT_SPREADS:
            raise ValueError(f"unknown spread {spread!r}; valid: {', '.join(HINT_SPREADS)}")
        if spread != "fill" and spread not in self.spreads:  # "fill" is every model's: it leaves dots as they are
            raise ValueError("spread 'propagate' needs a hints model trained with hint_fill (it adds to the fill)")
        self.spread = spread

    @property
    def net_in_nc(self) -> int:
        """Channels of the generator's input tensor: the image's, plus the hint map's."""
        return self.in_nc + self.hint_nc

    @classmethod
    def from_pretrained(
        cls,
        run_dir: str | Path,
        *,
        checkpoint: str = "auto",
        weights: str = "auto",
        device: str | torch.device = "auto",
        backend: str = "torch",
        direction: str = "AtoB",
        spread: str = "fill",
    ) -> Pix2Pix:
        """Load the generator of `run_dir/checkpoints/<checkpoint>` (or of a checkpoint folder) with its saved config.

        `checkpoint`: 'auto' (best where the run kept one, else last), 'best', 'last' or another name.
        `device`: 'auto' (CUDA, then Apple's MPS, then the CPU), 'cpu', 'cuda', 'cuda:N' or 'mps'.

        `weights`: 'ema' (the averaged weights), 'raw' (the last training weights), or 'auto':
        EMA where the run kept one, else raw. `backend`: 'torch', or 'onnx' to run the generator in
        ONNX Runtime; the export happens on first use and is cached in the checkpoint folder.
        `direction`: which way a CycleGAN run translates (AtoB or BtoA); pix2pix runs go AtoB only.
        `spread` (hints models): 'fill', each hint over its region as the model was trained, or 'propagate',
        each hint propagated over the line art first, across texture and gaps but not strokes, then the fill
        (hints.propagate_hints; for models trained with hint_fill; a SciPy solve per image on the host).
        """
        if weights not in WEIGHTS:
            raise ValueError(f"unknown weights {weights!r}; valid: {', '.join(WEIGHTS)}")
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; valid: {', '.join(BACKENDS)}")
        device = resolve_device(device)
        folder = checkpoint_dir(run_dir, checkpoint)
        config = load_config(folder)
        family = family_for(config)
        name = family.generator_name(direction)
        generator = family.build_network(config.model, name, init=False)
        ema_file = folder / weights_file(name, ema=True)
        if weights == "ema" and not ema_file.is_file():
            raise FileNotFoundError(f"{folder}: no EMA weights ({ema_file.name}); train with --ema-decay")
        use_ema = weights == "ema" or (weights == "auto" and ema_file.is_file())
        raw_file = folder / weights_file(name)
        if not use_ema and not raw_file.is_file():
            raise FileNotFoundError(f"{folder}: no weights for {direction} ({raw_file.name} is missing)")
        load_weights(generator, ema_file if use_ema else raw_file)
        pipe = cls(generator, config, device=device, direction=direction, spread=spread)
        if backend == "onnx":
            from .onnx_runtime import OnnxGenerator, cached_onnx

            pipe.onnx = OnnxGenerator(cached_onnx(generator, ema_file if use_ema else raw_file, pipe))
        pipe.meta = {
            **read_meta(folder),
            "weights": "ema" if use_ema else "raw",
            "backend": backend,
            "spread": spread,
            "checkpoint_dir": str(folder),
        }
        return pipe

    @torch.inference_mode()
    def translate_tensor(
        self, x: torch.Tensor, *, dropout: bool = False, hints: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(B, C, H, W) in [-1, 1] -> (B, out_nc, H, W) in [-1, 1], any H and W.

        `hints`: a hint map (B, C_out + 1, H, W) for a hints model; None means no hints. A model
        trained with `hint_fill` spreads each hint over its region of `x` first (hints.fill_regions),
        after propagating it where the pipeline's `spread` is 'propagate' (hints.propagate_hints).
        """
        if x.ndim != 4 or x.shape[1] != self.in_nc:
            raise ValueError(f"expected a (B, {self.in_nc}, H, W) tensor, got shape {tuple(x.shape)}")
        self._check_hints(hints)
        padded, (h, w) = pad_to_multiple(x.to(self.device, torch.float32), self.size_multiple)
        if self.takes_hints:
            if hints is None:
                hints = torch.zeros(x.shape[0], self.hint_nc, h, w)
            elif hints.shape != (x.shape[0], self.hint_nc, h, w):
                raise ValueError(
                    f"expected a ({x.shape[0]}, {self.hint_nc}, {h}, {w}) hint map, got {tuple(hints.shape)}"
                )
            else:
                if self.spread == "propagate":
                    hints = propagate_hints(hints, x)
                hints = fill_as_trained(hints, x, self.config.model)  # each hint over its region, if trained so
            hint_map, _ = pad_to_multiple(hints.to(self.device, torch.float32), self.size_multiple, mode="constant")
            padded = torch.cat([padded, hint_map], dim=1)  # (B, in_nc + C_out + 1, H', W')
        if self.onnx is not None:
            if dropout:
                raise ValueError("test-time dropout needs the torch backend (the ONNX graph has dropout folded away)")
            return self.onnx(padded)[..., :h, :w].to(self.device)
        self._set_dropout(dropout)
        return self.generator(padded)[..., :h, :w]

    @torch.inference_mode()
    def translate_full(
        self,
        x: torch.Tensor,
        *,
        hints: torch.Tensor | None = None,
        scale: str = "auto",
        dropout: bool = False,
        carry: bool = True,
    ) -> torch.Tensor:
        """(B, C, H, W) in [-1, 1] -> (B, out_nc, H, W): the generator at the scale it was trained for
        (the longer side at the training size), its result back at H x W (fullsize.py); `hints` a
        (B, C_out + 1, H, W) hint map in the input's own coordinates. `scale` is one of SCALES.

        `carry`: a hinted region the generator cannot colour (the page, a region too thin for the working size)
        takes its hints' colour (fullsize.carry_hints). Evaluation turns it off: it judges the model
        (benchmarks/finishing.py scores both on a test split)."""
        if scale not in SCALES:
            raise ValueError(f"unknown scale {scale!r}; valid: {', '.join(SCALES)}")
        h, w = x.shape[-2:]
        work = working_size(h, w, self.config.data.crop_size)
        if scale == "native" or work == (h, w):
            out, work = self.translate_tensor(x, dropout=dropout, hints=hints), None
        else:
            check_pixels(h, w)
            small_hints = None if hints is None else resize_hints(hints.float(), work)
            small = self.translate_tensor(to_size(x, work), dropout=dropout, hints=small_hints)  # (B, out_nc, h', w')
            out = to_size(small.cpu(), (h, w)).to(small.device) if scale == "bicubic" else compose(x, small)
        return carry_hints(x, hints, out, self.config.model, work) if carry and self.takes_hints else out

    def __call__(
        self,
        images: Any,
        *,
        size: int | None = None,
        scale: str = "auto",
        dropout: bool = False,
        batch_size: int = 8,
        hints: Any = None,
    ) -> Any:
        """Translate one image or a list of them; the output has the input's kind and size
        (or `size` x `size` when given). `scale`: how (see SCALES and `translate_full`).

        `images`: image files' paths (str or Path), PIL images, arrays (H, W, C uint8) or tensors.
        `hints` (hints models only): for one image, an RGBA image of its size (alpha > 0 marks a
        hint), a list of points {"x", "y", "color": "#rrggbb", "size"}, or the path of a file of
        either (a PNG with alpha, or a points .json, as `translate --hints` takes); for a list of
        images, a list of those (None for no hints); for a tensor batch, a (B, C_out + 1, H, W) hint map.
        """
        self._check_hints(hints)
        if isinstance(images, (list, tuple)):
            if hints is not None and (not isinstance(hints, (list, tuple)) or len(hints) != len(images)):
                raise ValueError(f"for {len(images)} images, hints must be a list of {len(images)} (None for no hints)")
            return self._translate_list(
                list(images), size=size, scale=scale, dropout=dropout, batch_size=batch_size, hints=hints
            )
        if isinstance(images, torch.Tensor):
            x = images if images.ndim == 4 else images.unsqueeze(0)
            h_map = None
            if hints is not None:
                h_map = (
                    hints
                    if isinstance(hints, torch.Tensor)
                    else as_hint_map(hints, x.shape[-1], x.shape[-2], output_nc=self.out_nc)
                )
                h_map = h_map if h_map.ndim == 4 else h_map.unsqueeze(0).expand(len(x), -1, -1, -1)
            if size is not None:
                x = F.interpolate(x.float(), size=(size, size), mode="bicubic", align_corners=False).clamp(-1, 1)
                h_map = resize_hints(h_map, (size, size)) if h_map is not None else None
            out = torch.cat(
                [
                    self.translate_full(
                        x[i : i + batch_size],
                        dropout=dropout,
                        scale=scale if size is None else "native",
                        hints=None if h_map is None else h_map[i : i + batch_size],
                    )
                    for i in range(0, len(x), batch_size)
                ]
            )
            return out if images.ndim == 4 else out[0]
        return self._translate_list(
            [images], size=size, scale=scale, dropout=dropout, batch_size=1, hints=None if hints is None else [hints]
        )[0]

    def hint_map_for(self, img: Any, hints: Any, *, size: int | None = None, source: str = "hints") -> torch.Tensor:
        """The (C_out + 1, H, W) hint map of `hints` for image `img`, at `size` x `size` if given."""
        w, h = img.size if isinstance(img, Image.Image) else (img.shape[1], img.shape[0])
        h_map = as_hint_map(hints, w, h, output_nc=self.out_nc, source=source)
        return resize_hints(h_map[None], (size, size))[0] if size is not None else h_map

    def _translate_list(
        self,
        images: list[Any],
        *,
        size: int | None,
        scale: str,
        dropout: bool,
        batch_size: int,
        hints: list[Any] | None = None,
    ) -> list[Any]:
        images = [load_image(img, channels=self.in_nc) if isinstance(img, (str, Path)) else img for img in images]
        tensors = [self._to_tensor(img, size) for img in images]
        maps: list[torch.Tensor | None] = [
            None if hints is None or hints[i] is None else self.hint_map_for(images[i], hints[i], size=size)
            for i in range(len(images))
        ]
        results: list[torch.Tensor | None] = [None] * len(tensors)
        # Batch images of one shape together; other shapes run on their own.
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, t in enumerate(tensors):
            by_shape.setdefault(tuple(t.shape), []).append(i)
        for indices in by_shape.values():
            for j in range(0, len(indices), batch_size):
                chunk = indices[j : j + batch_size]
                h_map = None
                if self.takes_hints and any(maps[i] is not None for i in chunk):
                    h_map = torch.stack(
                        [
                            maps[i] if maps[i] is not None else torch.zeros(self.hint_nc, *tensors[i].shape[-2:])
                            for i in chunk
                        ]
                    )
                out = self.translate_full(
                    torch.stack([tensors[i] for i in chunk]),
                    dropout=dropout,
                    hints=h_map,
                    scale=scale if size is None else "native",
                )
                for i, o in zip(chunk, out):
                    results[i] = o
        return [self._from_tensor(r, like) for r, like in zip(results, images)]  # type: ignore[arg-type]

    def _check_hints(self, hints: Any) -> None:
        if hints is not None and not self.takes_hints:
            raise ValueError("this model was trained without hints (train with --hints to give it colour hints)")

    def _to_tensor(self, img: Any, size: int | None) -> torch.Tensor:
        if isinstance(img, np.ndarray):
            img = Image.fromarray(img if img.dtype == np.uint8 else np.clip(img * 255, 0, 255).astype(np.uint8))
        if not isinstance(img, Image.Image):
            raise ValueError(
                f"cannot translate a {type(img).__name__}: expected an image file's path, a PIL image, "
                "an array or a tensor"
            )
        img = to_mode(img, self.in_nc)
        if size is not None:
            img = img.resize((size, size), Image.BICUBIC)
        return from_uint8(pil_to_uint8(img))

    @staticmethod
    def _from_tensor(out: torch.Tensor, like: Any) -> Any:
        arr = to_uint8(out).cpu().numpy().transpose(1, 2, 0)
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


@dataclass
class Translated:
    """What `translate_paths` did: the files written, and the inputs skipped with why (skip_bad)."""

    written: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def _distinct_outputs(files: list[tuple[Path, Path]]) -> list[tuple[Path, Path]]:
    """Output names that never overwrite one another: inputs whose names differ only in their extension
    (house.png, house.jpg) keep it in the output's name (house.png.png, house.jpg.png); two inputs that
    would still write one file (the same name in two folders given) are refused, both named; a file given
    twice is translated once."""
    unique: dict[Path, tuple[Path, Path]] = {}
    for src, rel in files:  # one file given twice is translated once
        unique.setdefault(src.resolve(), (src, rel))
    files = list(unique.values())
    stems: dict[Path, int] = {}
    for _, rel in files:
        stems[rel] = stems.get(rel, 0) + 1
    out = [(src, rel.with_name(src.name + ".png") if stems[rel] > 1 else rel) for src, rel in files]
    seen: dict[Path, Path] = {}
    for src, rel in out:
        if rel in seen:
            raise ValueError(f"{seen[rel]} and {src} would both be written to {rel}: translate them separately")
        seen[rel] = src
    return out


def translate_paths(
    pipe: Pix2Pix,
    inputs: Sequence[str | Path],
    out_dir: str | Path,
    *,
    size: int | None = None,
    scale: str = "auto",
    dropout: bool = False,
    batch_size: int = 8,
    progress: bool = False,
    hints: str | Path | None = None,
    skip_bad: bool = False,
) -> Translated:
    """Translate image files and folders (recursively) into `out_dir` as PNGs.

    `hints`: a hints file (an RGBA image of the input's size, or a points JSON) for one input image.
    `skip_bad`: an input that cannot be read is skipped and listed instead of stopping the whole run.
    """
    from tqdm.auto import tqdm

    from .hints import load_hints_file
    from .images import is_image_path

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
    files = _distinct_outputs(files)
    if hints is not None:
        pipe._check_hints(hints)
        if len(files) != 1:
            raise ValueError(f"--hints {hints} belongs to one image, but {len(files)} images were given")
    out_dir = Path(out_dir)
    done = Translated()
    for j in tqdm(range(0, len(files), batch_size), desc="translate", unit="batch", disable=not progress):
        chunk, images = [], []
        for src, rel in files[j : j + batch_size]:
            try:
                images.append(load_image(src, channels=pipe.in_nc))
                chunk.append((src, rel))
            except (ValueError, OSError) as err:
                if not skip_bad:
                    raise
                done.skipped.append((src, str(err)))
        if not chunk:
            continue
        maps = None
        if hints is not None:
            w, h = images[0].size
            maps = [load_hints_file(hints, w, h, output_nc=pipe.out_nc)]
        results = pipe(images, size=size, scale=scale, dropout=dropout, batch_size=batch_size, hints=maps)
        for (_, rel), result in zip(chunk, results):
            dest = out_dir / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            result.save(dest)
            done.written.append(dest)
    return done
