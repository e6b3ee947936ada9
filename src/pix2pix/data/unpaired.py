"""Unpaired datasets: two folders of images, A and B, of any sizes and with no matching.

Layouts, per split: `SPLIT/A/...` and `SPLIT/B/...`, or the field's reference layout
`trainA/ trainB/ testA/ testB/` beside each other (recognised by name). Training draws A in a
seeded order and B independently (see loader.py); evaluation splits that hold pairs (aligned
A|B files, or A/ and B/ with matching names) are read as pairs, so an unpaired model can still be
scored against true targets.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from ..images import load_image, pil_to_uint8
from .files import distinct_names, list_images
from .paired import PairedDataset

log = logging.getLogger(__name__)


def unpaired_folders(root: str | Path, split: str) -> tuple[Path, Path] | None:
    """(A folder, B folder) of `split` in either layout, or None if neither is there."""
    root = Path(root)
    for dir_a, dir_b in ((root / split / "A", root / split / "B"), (root / f"{split}A", root / f"{split}B")):
        if dir_a.is_dir() and dir_b.is_dir():
            return dir_a, dir_b
    return None


class ImageFolder:
    """The images of one folder, resized to load_size x load_size, decoded once if cached."""

    def __init__(self, folder: Path, *, channels: int, load_size: int, cache: bool, progress: bool = False) -> None:
        self.folder = folder
        self.files = list_images(folder)
        if not self.files:
            raise ValueError(f"no images in {folder}")
        self.names = distinct_names(self.files, folder)
        self.channels, self.load_size = channels, load_size
        self._cache: torch.Tensor | None = None
        if cache:
            with ThreadPoolExecutor(max_workers=max(1, min(8, torch.get_num_threads()))) as pool:
                items = list(
                    tqdm(
                        pool.map(self.decode, range(len(self.files))),
                        total=len(self.files),
                        desc=f"decode {folder.parent.name}/{folder.name}",
                        unit="img",
                        disable=not progress,
                        leave=False,
                    )
                )
            self._cache = torch.stack(items)

    @property
    def count(self) -> int:
        return len(self.files)

    def name(self, index: int) -> str:
        return self.names[index]

    def decode(self, index: int) -> torch.Tensor:
        img = load_image(self.files[index], channels=self.channels)
        return pil_to_uint8(img.resize((self.load_size, self.load_size), Image.BICUBIC))

    def get(self, index: int) -> torch.Tensor:
        return self._cache[index] if self._cache is not None else self.decode(index)

    def batch(self, indices: Any) -> torch.Tensor:
        idx = torch.as_tensor(indices, dtype=torch.long)
        if self._cache is not None:
            return self._cache[idx]
        return torch.stack([self.decode(int(i)) for i in idx])


class UnpairedDataset(Dataset):
    """Images of domain A and domain B from `root/split`; an item is keyed (index in A, index in B).

    `direction` BtoA swaps the domains. Its length is the number of A images (an epoch is a pass
    over A; B images are drawn at random, as the reference does).
    """

    paired = False

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        *,
        direction: str = "AtoB",
        load_size: int = 286,
        input_nc: int = 3,
        output_nc: int = 3,
        cache: bool = True,
        progress: bool = False,
    ) -> None:
        folders = unpaired_folders(root, split)
        if folders is None:
            if not Path(root).is_dir():
                raise FileNotFoundError(f"dataset folder not found: {root}")
            raise FileNotFoundError(
                f"split {split!r} not found: an unpaired dataset needs {Path(root) / split / 'A'} and "
                f"{Path(root) / split / 'B'} (or {Path(root) / (split + 'A')} and {Path(root) / (split + 'B')})"
            )
        dir_a, dir_b = folders if direction == "AtoB" else folders[::-1]
        self.folder = dir_a.parent
        self.images_a = ImageFolder(dir_a, channels=input_nc, load_size=load_size, cache=cache, progress=progress)
        self.images_b = ImageFolder(dir_b, channels=output_nc, load_size=load_size, cache=cache, progress=progress)

    def __len__(self) -> int:
        return self.images_a.count

    @property
    def n_b(self) -> int:
        return self.images_b.count

    @property
    def cached(self) -> bool:
        return self.images_a._cache is not None

    def name(self, index: int) -> str:
        return self.images_a.name(index)

    def __getitem__(self, key: Any) -> tuple[torch.Tensor, torch.Tensor]:
        ia, ib = (int(k) for k in key)
        return self.images_a.get(ia), self.images_b.get(ib)

    def batch(self, keys: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """(A, B) uint8 batches for a list of (index in A, index in B) keys, or for indices into both."""
        keys = torch.as_tensor(keys, dtype=torch.long)
        ia, ib = (keys[:, 0], keys[:, 1]) if keys.ndim == 2 else (keys, keys % self.n_b)
        return self.images_a.batch(ia), self.images_b.batch(ib)


def open_unpaired_split(
    root: str | Path,
    split: str,
    *,
    direction: str,
    load_size: int,
    input_nc: int,
    output_nc: int,
    cache: bool,
    progress: bool,
) -> PairedDataset | UnpairedDataset:
    """The split of an unpaired dataset: pairs where the split holds them (aligned files, or A/ and
    B/ with matching names) outside training, else unpaired images."""
    common: dict[str, Any] = dict(
        direction=direction, load_size=load_size, input_nc=input_nc, output_nc=output_nc, cache=cache, progress=progress
    )
    if split != "train":
        folder = Path(root) / split
        if folder.is_dir() and not (folder / "A").is_dir() and any(p.is_file() for p in folder.iterdir()):
            return PairedDataset(root, split, mode="aligned", **common)
        folders = unpaired_folders(root, split)
        if folders is not None and _names(folders[0]) == _names(folders[1]):
            if folders[0] == folder / "A":
                return PairedDataset(root, split, mode="folders", **common)
    return UnpairedDataset(root, split, **common)


def _names(folder: Path) -> set[Path]:
    return {p.relative_to(folder).with_suffix("") for p in list_images(folder)}
