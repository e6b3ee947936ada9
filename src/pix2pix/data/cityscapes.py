"""`pix2pix data cityscapes`: aligned (photo | label colours) pairs from Cityscapes' own archives.

Cityscapes is licensed per user, so pix2pix never downloads it: a user registers, fetches
`leftImg8bit_trainvaltest.zip` (the photos) and `gtFine_trainvaltest.zip` (the fine labels),
unzips both, and points this at the two folders. As the reference's preparation script
(`datasets/prepare_cityscapes_dataset.py` in the CycleGAN-and-pix2pix repository) does, each photo
`leftImg8bit/SPLIT/CITY/NAME_leftImg8bit.png` is paired with the label colour image
`gtFine/SPLIT/CITY/NAME_gtFine_color.png` of the same NAME (the two never share a relative path,
so `data combine` cannot pair them), both resized to `size` x `size` (256 as the reference), the
photo as A on the left and the labels as B on the right: the paper's labels -> photo task is
`--direction BtoA`. Differences from that script, on purpose: pairs are matched by NAME rather
than by position in two sorted lists (a missing file is an error naming it, not a silent shift),
label colours are resized with nearest-neighbour (a label's colour stays exactly one of the
palette's), files are PNG, named by NAME, and its val split is written as val/ (the layout of the
authors' `cityscapes.tar.gz`; the reference script writes it as test/).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image
from tqdm.auto import tqdm

from ..images import load_image
from ..io import staged_files
from .pairs import side_by_side

PHOTO_SUFFIX = "_leftImg8bit"
LABEL_SUFFIX = "_gtFine_color"
CITYSCAPES_SPLITS = ("train", "val")  # the test split's labels are not public


@dataclass
class CityscapesSummary:
    out: Path
    counts: dict[str, int] = field(default_factory=dict)


def _by_name(folder: Path, suffix: str) -> dict[str, Path]:
    """NAME -> file for every folder/CITY/NAME{suffix}.png."""
    return {p.name[: -len(suffix) - 4]: p for p in sorted(folder.glob(f"*/*{suffix}.png"))}


def prepare_cityscapes(
    left_img8bit: str | Path, gt_fine: str | Path, out: str | Path, *, size: int = 256, progress: bool = False
) -> CityscapesSummary:
    """Write out/train and out/val of aligned photo | label-colour pairs (see the module docstring)."""
    photos_root, labels_root, out = Path(left_img8bit), Path(gt_fine), Path(out)
    if size < 8:
        raise ValueError(f"size must be at least 8, got {size}")
    for root, what in ((photos_root, "leftImg8bit"), (labels_root, "gtFine")):
        if not root.is_dir():
            raise FileNotFoundError(f"{what} folder not found: {root}")
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"{out} already exists and is not empty: choose a new folder")
    plan: list[tuple[str, str, Path, Path]] = []
    for split in CITYSCAPES_SPLITS:
        photos = _by_name(photos_root / split, PHOTO_SUFFIX)
        labels = _by_name(labels_root / split, LABEL_SUFFIX)
        lonely = sorted(
            [str(photos[n]) for n in set(photos) - set(labels)] + [str(labels[n]) for n in set(labels) - set(photos)]
        )
        if lonely:
            more = f" and {len(lonely) - 3} more" if len(lonely) > 3 else ""
            raise ValueError(
                f"no partner for {', '.join(lonely[:3])}{more} (a photo NAME{PHOTO_SUFFIX}.png pairs with "
                f"NAME{LABEL_SUFFIX}.png in the same split and city)"
            )
        plan += [(split, name, photos[name], labels[name]) for name in sorted(photos)]
    if not plan:
        raise ValueError(
            f"no Cityscapes photos found: expected {photos_root}/train/CITY/NAME{PHOTO_SUFFIX}.png "
            f"(the unzipped leftImg8bit_trainvaltest.zip)"
        )
    summary = CityscapesSummary(out=out, counts=dict.fromkeys(CITYSCAPES_SPLITS, 0))
    with staged_files(out) as stage:
        for split, name, photo, label in tqdm(plan, desc="cityscapes", unit="pair", disable=not progress):
            a = load_image(photo, channels=3).resize((size, size), Image.BICUBIC)
            b = load_image(label, channels=3).resize((size, size), Image.NEAREST)
            dest = stage / split / f"{name}.png"
            dest.parent.mkdir(parents=True, exist_ok=True)
            side_by_side(a, b).save(dest, format="PNG")
            summary.counts[split] += 1
    return summary
