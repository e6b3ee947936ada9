import json
from pathlib import Path

import numpy as np
from PIL import Image

from pix2pix.data.datasets.openmoji import (
    base_key,
    build_openmoji,
    line_art_svg,
    openmoji_svg_dir,
    render_pair,
    select_svgs,
    split_of,
)
from pix2pix.data.paired import PairedDataset

from .conftest import TINY_SIZE


def colourfulness(img: Image.Image) -> float:
    """Mean spread between RGB channels: 0 for black, white and greys."""
    arr = np.asarray(img).astype(float)
    return float((arr.max(axis=2) - arr.min(axis=2)).mean())


def test_line_art_keeps_only_the_line_group() -> None:
    text = (openmoji_svg_dir() / "1F600.svg").read_text()
    line = line_art_svg(text)
    assert 'id="line"' in line and 'id="color"' not in line and "#FCEA2B" not in line.upper()


def test_render_pair_line_art_is_grey_and_target_is_coloured() -> None:
    line, colour = render_pair(openmoji_svg_dir() / "1F600.svg", 64)
    assert line.size == colour.size == (64, 64)
    assert colourfulness(line) < 1.0  # black strokes on white, anti-aliased greys only
    assert colourfulness(colour) > 20.0  # the yellow face
    # The lines are in both: dark pixels of the line art stay dark in the target.
    dark = np.asarray(line).mean(axis=2) < 60
    assert dark.sum() > 50 and np.asarray(colour).mean(axis=2)[dark].mean() < 90


def test_skin_tone_variants_share_their_base_split() -> None:
    assert base_key("1F44D-1F3FB") == "1F44D"
    assert base_key("1F9D1-1F3FD-200D-1F91D-200D-1F9D1-1F3FB") == "1F9D1-200D-1F91D-200D-1F9D1"
    for stem in ("1F44D-1F3FB", "1F44D-1F3FF", "1F44D"):
        assert split_of(base_key(stem)) == split_of("1F44D")


def test_splits_are_about_90_5_5_over_the_real_set() -> None:
    stems = [p.stem for p in select_svgs(openmoji_svg_dir(), all_variants=False)]
    counts = {s: 0 for s in ("train", "val", "test")}
    for stem in stems:
        counts[split_of(base_key(stem))] += 1
    assert 2400 < len(stems) < 2600  # one per base emoji out of 4,495 SVGs
    assert 0.03 < counts["test"] / len(stems) < 0.07 and 0.03 < counts["val"] / len(stems) < 0.07


def test_default_keeps_one_variant_all_variants_keeps_them(svg_dir: Path) -> None:
    default = {p.stem for p in select_svgs(svg_dir, all_variants=False)}
    everything = {p.stem for p in select_svgs(svg_dir, all_variants=True)}
    assert "1F44D" in default and "1F44D-1F3FD" not in default
    assert {"1F44D", "1F44D-1F3FD"} <= everything


def test_build_on_real_files(tiny_data: Path, svg_dir: Path) -> None:
    meta = json.loads((tiny_data / "dataset.json").read_text())
    assert meta["license"] == "CC BY-SA 4.0" and meta["size"] == TINY_SIZE
    n = sum(meta["counts"].values())
    assert n + len(meta["skipped_blank"]) == len(select_svgs(svg_dir, all_variants=False))
    assert all(meta["counts"][s] > 0 for s in ("train", "val", "test"))
    for split in ("train", "val", "test"):
        files = sorted((tiny_data / split).glob("*.png"))
        assert len(files) == meta["counts"][split]
        for f in files:
            assert split_of(base_key(f.stem)) == split
            with Image.open(f) as img:
                assert img.size == (2 * TINY_SIZE, TINY_SIZE)
                assert colourfulness(img.crop((0, 0, TINY_SIZE, TINY_SIZE))) < 1.0
    # The builder's output loads as a dataset with A = line art and B = colour.
    ds = PairedDataset(tiny_data, "train", load_size=TINY_SIZE)
    a, b = ds._cache  # type: ignore[misc]
    assert (a.float().amax(1) - a.float().amin(1)).mean() < 1.0
    assert (b.float().amax(1) - b.float().amin(1)).mean() > 5.0


def test_blank_line_art_is_skipped_and_counted(tmp_path: Path) -> None:
    svgs = tmp_path / "svgs"
    svgs.mkdir()
    (svgs / "1F534.svg").write_text(
        '<svg id="emoji" viewBox="0 0 72 72" xmlns="http://www.w3.org/2000/svg">'
        '<g id="color"><circle cx="36" cy="36" r="20" fill="#EA5A47"/></g><g id="line"/></svg>'
    )
    (svgs / "1F600.svg").write_text((openmoji_svg_dir() / "1F600.svg").read_text())
    summary = build_openmoji(tmp_path / "out", size=16, svg_dir=svgs, workers=1, progress=False)
    assert summary.skipped_blank == ["1F534"]
    assert sum(summary.counts.values()) == 1
    assert not list((tmp_path / "out").rglob("1F534*"))


def test_parallel_build_writes_the_same_files(tmp_path: Path, svg_dir: Path) -> None:
    one = build_openmoji(tmp_path / "one", size=16, svg_dir=svg_dir, workers=1, progress=False)
    two = build_openmoji(tmp_path / "two", size=16, svg_dir=svg_dir, workers=2, progress=False)
    assert one.counts == two.counts
    for f in sorted((tmp_path / "one").rglob("*.png")):
        other = tmp_path / "two" / f.relative_to(tmp_path / "one")
        with Image.open(f) as x, Image.open(other) as y:
            assert np.array_equal(np.asarray(x), np.asarray(y))
