"""Where a dataset's images are: its split folders and the image files below a folder, shared by
every layout (aligned, folders, unpaired) and the data tools."""

from __future__ import annotations

from pathlib import Path

from ..images import is_image_path

SPLITS = ("train", "val", "test")


def list_images(folder: Path) -> list[Path]:
    """Image files below `folder`, sorted; any other (non-hidden) file is an error naming it."""
    files = []
    for path in sorted(folder.rglob("*")):
        if path.is_dir() or any(part.startswith(".") for part in path.relative_to(folder).parts):
            continue
        if not is_image_path(path):
            raise ValueError(f"{path}: not an image file (expected {', '.join(('png', 'jpg', 'webp', 'bmp', 'tif'))})")
        files.append(path)
    return files


def split_dir(root: str | Path, split: str) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder not found: {root}")
    folder = root / split
    if not folder.is_dir():
        raise FileNotFoundError(f"split {split!r} not found: {folder} does not exist")
    return folder


def distinct_names(files: list[Path], base: Path) -> list[str]:
    """Each file's name for outputs and evaluation seeds: its path under `base` without the extension, or
    with it where two files share that stem (house.png and house.jpg), so no two names collide."""
    stems = [str(f.relative_to(base).with_suffix("")) for f in files]
    seen: dict[str, int] = {}
    for s in stems:
        seen[s] = seen.get(s, 0) + 1
    return [s if seen[s] == 1 else str(f.relative_to(base)) for s, f in zip(stems, files)]
