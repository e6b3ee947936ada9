"""Paired datasets: `aligned` (A|B side by side in one file) and `folders` (A/ and B/ trees).

Each item is a pair of (C, L, L) uint8 tensors resized to `load_size`. With `cache=True` every
pair is decoded and resized once, up front, and kept in memory as uint8.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from PIL import Image
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from ..devices import to_device
from ..images import load_image, pil_to_uint8
from .files import distinct_names, list_images, split_dir

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)


class PairedDataset(Dataset):
    """Pairs (A, B) from `root/split`, A the input and B the target after `direction`."""

    paired = True

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        *,
        mode: str = "aligned",
        direction: str = "AtoB",
        load_size: int = 286,
        input_nc: int = 3,
        output_nc: int = 3,
        cache: bool = True,
        progress: bool = False,
    ) -> None:
        folder = split_dir(root, split)
        self.folder = folder
        self.mode = mode
        self.swap = direction == "BtoA"
        self.load_size = load_size
        self.input_nc, self.output_nc = input_nc, output_nc
        if mode == "aligned":
            self.pairs = [(p, None) for p in list_images(folder)]
        elif mode == "folders":
            self.pairs = _match_folders(folder)
        else:
            raise ValueError(f"unknown dataset_mode {mode!r}; valid: aligned, folders")
        if not self.pairs:
            raise ValueError(f"no images in {folder}: the {split!r} split is empty")
        self._cache: tuple[torch.Tensor, torch.Tensor] | None = None
        self._names: list[str] | None = None
        if cache:
            self._cache = self._decode_all(progress)

    def __len__(self) -> int:
        return len(self.pairs)

    @property
    def cached(self) -> bool:
        return self._cache is not None

    def name(self, index: int) -> str:
        if self._names is None:
            base = self.folder / "A" if self.mode == "folders" else self.folder
            self._names = distinct_names([a for a, _ in self.pairs], base)
        return self._names[index]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self._cache is not None:
            return self._cache[0][index], self._cache[1][index]
        return self._decode(index)

    @property
    def images_a(self) -> PairSide:
        return PairSide(self, 0)

    @property
    def images_b(self) -> PairSide:
        return PairSide(self, 1)

    @property
    def decoded(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The whole cache, (A, B) uint8 (N, C, L, L), without a copy; an error when not cached."""
        if self._cache is None:
            raise ValueError(f"{self.folder} is not cached (data.cache false): its images are decoded per batch")
        return self._cache

    @property
    def nbytes(self) -> int:
        """The cache's size in bytes (0 when not cached)."""
        return sum(t.nbytes for t in self._cache) if self._cache is not None else 0

    def place(self, device: torch.device | None) -> None:
        """Keep the cache on `device` (a GPU: batches are gathered there), or with None in pinned host memory."""
        if self._cache is not None:
            a, b = self._cache
            self._cache = (a.to(device), b.to(device)) if device is not None else (a.pin_memory(), b.pin_memory())

    def batch(self, indices: torch.Tensor | list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """(A, B) uint8 batches for `indices`; a single gather (on the cache's device) when cached."""
        indices = torch.as_tensor(indices, dtype=torch.long)
        if self._cache is not None:
            indices = to_device(indices, self._cache[0].device)
            return self._cache[0].index_select(0, indices), self._cache[1].index_select(0, indices)
        items = [self._decode(int(i)) for i in indices]
        return torch.stack([a for a, _ in items]), torch.stack([b for _, b in items])

    def _decode(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        path_a, path_b = self.pairs[index]
        # Channels on disk follow A/B; after a swap, the input is B.
        nc_a, nc_b = (self.output_nc, self.input_nc) if self.swap else (self.input_nc, self.output_nc)
        if path_b is None:
            img = load_image(path_a, channels=3)
            w, h = img.size
            if w % 2:
                raise ValueError(f"{path_a}: aligned image has odd width {w}; expected A|B side by side")
            img_a = img.crop((0, 0, w // 2, h))
            img_b = img.crop((w // 2, 0, w, h))
            if nc_a == 1:
                img_a = img_a.convert("L")
            if nc_b == 1:
                img_b = img_b.convert("L")
        else:
            img_a, img_b = load_image(path_a, channels=nc_a), load_image(path_b, channels=nc_b)
            if img_a.size != img_b.size:
                raise ValueError(
                    f"{path_a} is {img_a.size[0]}x{img_a.size[1]} but {path_b} is "
                    f"{img_b.size[0]}x{img_b.size[1]}: A and B must have the same size"
                )
        size = (self.load_size, self.load_size)
        a = pil_to_uint8(img_a.resize(size, Image.BICUBIC))
        b = pil_to_uint8(img_b.resize(size, Image.BICUBIC))
        return (b, a) if self.swap else (a, b)

    def _decode_all(self, progress: bool) -> tuple[torch.Tensor, torch.Tensor]:
        # PIL releases the GIL while decoding and resizing, so threads overlap the work.
        with ThreadPoolExecutor(max_workers=max(1, min(8, torch.get_num_threads()))) as pool:
            items = list(
                tqdm(
                    pool.map(self._decode, range(len(self.pairs))),
                    total=len(self.pairs),
                    desc=f"decode {self.folder.name}",
                    unit="img",
                    disable=not progress,
                    leave=False,
                )
            )
        return torch.stack([a for a, _ in items]), torch.stack([b for _, b in items])


class PairSide:
    """One side (A or B) of a paired dataset, with the interface of an unpaired image folder."""

    def __init__(self, dataset: PairedDataset, side: int) -> None:
        self.dataset, self.side = dataset, side

    @property
    def count(self) -> int:
        return len(self.dataset)

    def batch(self, indices: Any) -> torch.Tensor:
        return self.dataset.batch(indices)[self.side]


def _match_folders(folder: Path) -> list[tuple[Path, Path | None]]:
    dir_a, dir_b = folder / "A", folder / "B"
    for d in (dir_a, dir_b):
        if not d.is_dir():
            raise FileNotFoundError(f"folders dataset needs {d}")
    files_a = {p.relative_to(dir_a).with_suffix(""): p for p in list_images(dir_a)}
    files_b = {p.relative_to(dir_b).with_suffix(""): p for p in list_images(dir_b)}
    only_a = sorted(set(files_a) - set(files_b))
    only_b = sorted(set(files_b) - set(files_a))
    if only_a or only_b:
        unmatched = [str(files_a[k]) for k in only_a] + [str(files_b[k]) for k in only_b]
        more = f" and {len(unmatched) - 5} more" if len(unmatched) > 5 else ""
        raise ValueError(f"unmatched files (no partner in the other folder): {', '.join(unmatched[:5])}{more}")
    return [(files_a[k], files_b[k]) for k in sorted(files_a)]
