"""A user's own pairs: `data combine` (two folders -> aligned A|B files) and `data split` (a flat
folder of pairs -> train / val / test by a stable hash of each name)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image
from tqdm.auto import tqdm

from ..images import load_image
from ..io import atomic_path
from .files import SPLITS, list_images
from .splits import DEFAULT_FRACTIONS, check_fractions, split_of_name


def side_by_side(img_a: Image.Image, img_b: Image.Image) -> Image.Image:
    """An aligned pair: A on the left, B on the right (both of one size), as RGB."""
    pair = Image.new("RGB", (img_a.width * 2, img_a.height))
    pair.paste(img_a.convert("RGB"), (0, 0))
    pair.paste(img_b.convert("RGB"), (img_a.width, 0))
    return pair


@dataclass
class CombineSummary:
    out: Path
    written: int = 0
    unmatched_a: list[str] = field(default_factory=list)
    unmatched_b: list[str] = field(default_factory=list)


def combine_folders(
    dir_a: str | Path,
    dir_b: str | Path,
    out: str | Path,
    *,
    size: int | None = None,
    allow_unmatched: bool = False,
    progress: bool = False,
) -> CombineSummary:
    """Pair files of `dir_a` and `dir_b` by relative path (extension aside) into aligned A|B PNGs.

    Unmatched files are an error that names them, unless `allow_unmatched` (then they are skipped
    and listed). A and B of a pair must have the same size, unless `size` resizes both to size x size.
    """
    dir_a, dir_b, out = Path(dir_a), Path(dir_b), Path(out)
    for d in (dir_a, dir_b):
        if not d.is_dir():
            raise FileNotFoundError(f"folder not found: {d}")
    files_a = {p.relative_to(dir_a).with_suffix(""): p for p in list_images(dir_a)}
    files_b = {p.relative_to(dir_b).with_suffix(""): p for p in list_images(dir_b)}
    summary = CombineSummary(out=out)
    summary.unmatched_a = sorted(str(files_a[k]) for k in set(files_a) - set(files_b))
    summary.unmatched_b = sorted(str(files_b[k]) for k in set(files_b) - set(files_a))
    unmatched = summary.unmatched_a + summary.unmatched_b
    if unmatched and not allow_unmatched:
        more = f" and {len(unmatched) - 5} more" if len(unmatched) > 5 else ""
        raise ValueError(
            f"unmatched files (no partner in the other folder): {', '.join(unmatched[:5])}{more}; "
            "pass --allow-unmatched to skip them"
        )
    keys = sorted(set(files_a) & set(files_b))
    if not keys:
        raise ValueError(f"no file of {dir_a} has a partner of the same name in {dir_b}")
    for key in tqdm(keys, desc="combine", unit="pair", disable=not progress):
        img_a, img_b = load_image(files_a[key]), load_image(files_b[key])
        if size is not None:
            img_a, img_b = (im.resize((size, size), Image.BICUBIC) for im in (img_a, img_b))
        elif img_a.size != img_b.size:
            raise ValueError(
                f"{files_a[key]} is {img_a.size[0]}x{img_a.size[1]} but {files_b[key]} is "
                f"{img_b.size[0]}x{img_b.size[1]}: pass --size to resize both"
            )
        pair = side_by_side(img_a, img_b)
        with atomic_path(out / key.with_suffix(".png")) as tmp:
            pair.save(tmp, format="PNG")
        summary.written += 1
    return summary


def split_folder(
    folder: str | Path, *, fractions: dict[str, float] | None = None, copy_to: str | Path | None = None
) -> dict[str, int]:
    """Move the pairs of a flat folder into folder/{train,val,test}/ by a stable hash of each name
    (or copy them into `copy_to`/{train,val,test}/). Returns the counts per split."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"folder not found: {folder}")
    fr = {**DEFAULT_FRACTIONS, **(fractions or {})}
    check_fractions(fr)
    files = [p for p in list_images(folder) if p.relative_to(folder).parts[0] not in SPLITS]
    if not files:
        raise ValueError(f"no images to split in {folder} (outside its train/ val/ test/)")
    dest_root = Path(copy_to) if copy_to is not None else folder
    counts = dict.fromkeys(SPLITS, 0)
    for path in files:
        rel = path.relative_to(folder)
        split = split_of_name(rel.with_suffix("").as_posix(), fr)
        dest = dest_root / split / rel
        if dest.exists():
            raise ValueError(f"{dest} already exists: not overwriting it")
        dest.parent.mkdir(parents=True, exist_ok=True)
        if copy_to is not None:
            shutil.copy2(path, dest)
        else:
            path.rename(dest)
        counts[split] += 1
    if copy_to is None:  # folders the moves left empty
        for d in sorted({p.parent for p in files}, key=lambda p: -len(p.parts)):
            if d != folder and d.is_dir() and not any(d.iterdir()):
                d.rmdir()
    return counts
