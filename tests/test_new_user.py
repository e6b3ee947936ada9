"""What a new user meets after `make demo` (issue 42): files with the ordinary permissions (0666 / 0777 less
the umask; mkstemp and mkdtemp make private 0600 files and 0700 folders, which the atomic writers used to
keep), translations that never overwrite one another, configs found by name from any folder, and help
that reads."""

from __future__ import annotations

import os
import stat
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageColor, ImageDraw

from pix2pix.io import atomic_path, atomic_write_text
from pix2pix.training.loop import train

from .conftest import make_shapes, tiny_config


@pytest.fixture
def umask() -> Iterator[object]:
    def set_to(mask: int) -> None:
        os.umask(mask)

    old = os.umask(0o022)
    try:
        yield set_to
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("mask, file_mode, dir_mode", [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700)])
def test_atomic_writes_and_checkpoints_honour_the_umask(
    tmp_path: Path, umask, mask: int, file_mode: int, dir_mode: int
) -> None:
    umask(mask)
    atomic_write_text(tmp_path / "a.json", "{}")
    with atomic_path(tmp_path / "b.bin") as tmp:
        tmp.write_bytes(b"x")
    assert mode(tmp_path / "a.json") == mode(tmp_path / "b.bin") == file_mode
    run = tmp_path / "run"
    train(
        tiny_config(make_shapes(tmp_path / "shapes", 4), max_steps=1, val_every=0, sample_every=0), run, progress=False
    )
    folder = run / "checkpoints" / "last"
    assert mode(folder) == dir_mode
    files = [p for p in folder.iterdir() if p.is_file()] + [run / "config.json"]
    assert files and all(mode(p) == file_mode for p in files), {p.name: oct(mode(p)) for p in files}


def test_translate_never_writes_two_inputs_to_one_file(tmp_path: Path, hints_run: Path) -> None:
    """Issue 42, item 3: house.png and house.jpg give two outputs that say which is which; the same
    name in two folders given is refused with both named, before anything is written."""
    from PIL import Image

    from pix2pix.inference import Pix2Pix, translate_paths

    for name in ("house.png", "house.jpg", "tree.png"):
        Image.new("RGB", (32, 32), "white").save(tmp_path / name)
    pipe = Pix2Pix.from_pretrained(hints_run)
    inputs = [tmp_path / n for n in ("house.png", "house.jpg", "tree.png")]
    done = translate_paths(pipe, inputs, tmp_path / "out")
    assert sorted(p.name for p in done.written) == ["house.jpg.png", "house.png.png", "tree.png"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["house.jpg.png", "house.png.png", "tree.png"]
    (tmp_path / "other").mkdir()
    Image.new("RGB", (32, 32), "white").save(tmp_path / "other" / "tree.png")
    with pytest.raises(ValueError, match="tree.png would both be written to tree.png"):
        translate_paths(pipe, [tmp_path / "tree.png", tmp_path / "other" / "tree.png"], tmp_path / "out2")
    assert not (tmp_path / "out2").exists()
    once = translate_paths(pipe, [tmp_path / "tree.png", tmp_path / "tree.png"], tmp_path / "out3")
    assert [p.name for p in once.written] == ["tree.png"]  # one file given twice: translated once


def test_evaluate_keeps_two_test_images_that_share_a_stem(tmp_path: Path, hints_run: Path, shapes_data: Path) -> None:
    """Item 3 in evaluate's image folders: a test split holding house.png and house.jpg writes both, under
    names that keep the extension (a name that no other file shares keeps its stem, so seeds are unchanged)."""
    import shutil

    from pix2pix.data.paired import PairedDataset
    from pix2pix.evaluation import evaluate

    data = tmp_path / "data"
    shutil.copytree(shapes_data, data)
    first = sorted((data / "test").glob("*.png"))[0]
    Image.open(first).save(data / "test" / "house.jpg", quality=95)
    first.rename(data / "test" / "house.png")
    ds = PairedDataset(data, "test", load_size=32, cache=False)
    names = [ds.name(i) for i in range(len(ds))]
    assert "house.png" in names and "house.jpg" in names and len(set(names)) == len(names)
    assert all("." not in n for n in names if not n.startswith("house"))
    evaluate(hints_run, split="test", data_root=data, image_dir=tmp_path / "report")
    outputs = sorted(p.name for p in (tmp_path / "report" / "outputs").iterdir())
    assert len(outputs) == len(ds) and "house.png.png" in outputs and "house.jpg.png" in outputs


def test_train_help_is_grouped() -> None:
    """Issue 42, item 8: `train --help` lists its options under headings, each option under its own."""
    from click.testing import CliRunner

    from pix2pix.cli import main

    text = CliRunner().invoke(main, ["train", "--help"], terminal_width=120).output
    headings = [line for line in text.splitlines() if line.endswith("options:")]
    assert headings == [
        "Run options:",
        "Data options:",
        "Model options:",
        "Training options:",
        "Hints options:",
        "Precision and devices options:",
        "Logging and checkpoints options:",
    ]

    def under(flag: str) -> str:
        before = text[: text.index(f"  {flag}")]
        return [line for line in before.splitlines() if line.endswith("options:")][-1]

    assert under("--config") == "Run options:" and under("--crop-size") == "Data options:"
    assert under("--ngf") == "Model options:" and under("--lr ") == "Training options:"
    assert under("--hint-fill") == under("--hint-p ") == "Hints options:"
    assert under("--amp") == under("--device") == "Precision and devices options:"
    assert under("--save-every") == under("--tensorboard") == "Logging and checkpoints options:"


def test_packaged_configs_are_found_by_name_from_any_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pix2pix.config import config_path, packaged_configs, read_config_file

    monkeypatch.chdir(tmp_path)  # not the checkout: configs/ is not here
    assert set(packaged_configs()) >= {"openmoji_cpu", "openmoji_cyclegan_cpu", "own_art_128"}
    assert read_config_file("own_art_128")["model"]["hint_regions"] == "open"
    assert config_path("configs/openmoji_cpu.yaml") == packaged_configs()["openmoji_cpu"]  # the README's spelling
    (tmp_path / "own_art_128").write_text("{}")  # a file of that name wins
    assert config_path("own_art_128") == Path("own_art_128")
    with pytest.raises(FileNotFoundError, match="config file not found: mine.yaml .packaged configs: openmoji_cpu"):
        read_config_file("mine.yaml")


def house_drawing(width: int = 350, height: int = 250) -> Image.Image:
    """The issue's drawing, at half size: a ground line from edge to edge (so the sky and the ground both touch
    the border: the page for a `closed` model), a house, a sun and a tree whose trunk is a narrow box."""
    im = Image.new("RGB", (width, height), "white")
    d = ImageDraw.Draw(im)
    d.line([(0, 190), (width, 190)], fill="black", width=3)
    d.rectangle([100, 110, 210, 190], outline="black", width=3)  # walls
    d.ellipse([280, 20, 330, 70], outline="black", width=3)  # sun
    d.rectangle([250, 140, 262, 190], outline="black", width=3)  # trunk: 6 px inside
    return im


HOUSE_HINTS = {
    "sky": (50, 50, "#60a0f0"),
    "ground": (50, 225, "#40a040"),
    "trunk": (256, 165, "#804020"),
    "walls": (150, 150, "#f0d040"),
}


def test_hints_on_the_sky_the_ground_and_a_thin_trunk_colour_their_regions(hints_run: Path) -> None:
    """Issue 42, item 1: the generator never saw a hint on the page (regions touching the border) and cannot
    colour a region thinner than its working size's cells, so those regions take their hint's colour at the
    input's size (fullsize.carry_hints); the rest of the picture is the model's, and nothing is warned."""
    from pix2pix import Pix2Pix

    pipe = Pix2Pix.from_pretrained(hints_run)
    points = [{"x": x, "y": y, "color": c, "size": 3} for x, y, c in HOUSE_HINTS.values()]
    drawing = house_drawing()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = np.asarray(pipe(drawing, hints=points).convert("RGB")).astype(int)
        plain = np.asarray(pipe(drawing).convert("RGB")).astype(int)
    assert out.shape == (250, 350, 3)
    for name in ("sky", "ground", "trunk"):  # the walls are the model's to colour (a tiny model here)
        x, y, colour = HOUSE_HINTS[name]
        want = np.array(ImageColor.getrgb(colour))
        for dx, dy in ((0, 0), (20, 10), (-30, -5)) if name in ("sky", "ground") else ((0, 0), (0, 12), (0, -12)):
            assert np.abs(out[y + dy, x + dx] - want).max() <= 1, (
                f"{name} at ({x + dx}, {y + dy}): {out[y + dy, x + dx]}"
            )
    assert (plain[50, 50] >= 240).all(), "without hints the sky stays the model's (near white)"
    # Strokes stay the input's own.
    assert (out[190, 10] <= 40).all() and (out[190, 340] <= 40).all()


def test_a_hint_that_colours_nothing_is_named_in_a_warning(hints_run: Path) -> None:
    from pix2pix import Pix2Pix
    from pix2pix.fullsize import UnhonouredHint

    pipe = Pix2Pix.from_pretrained(hints_run)
    with pytest.warns(UnhonouredHint, match=r"x=120, y=190 lies on a stroke"):
        pipe(house_drawing(), hints=[{"x": 120, "y": 190, "color": "#ff0000", "size": 1}])


def test_a_dot_wider_than_its_shape_colours_only_its_shape(hints_run: Path) -> None:
    """A 20 px dot on the 6 px trunk spills over its outline into the sky: the spill is not a sky hint (a spot
    belongs to the region holding most of it), so the sky stays as the model left it and the trunk is brown."""
    from pix2pix import Pix2Pix

    pipe = Pix2Pix.from_pretrained(hints_run)
    x, y, colour = HOUSE_HINTS["trunk"]
    drawing = house_drawing()
    out = np.asarray(pipe(drawing, hints=[{"x": x, "y": y, "color": colour, "size": 20}]).convert("RGB")).astype(int)
    plain = np.asarray(pipe(drawing).convert("RGB")).astype(int)
    brown = np.array(ImageColor.getrgb(colour))
    assert np.abs(out[y, x] - brown).max() <= 1
    for sky in ((50, 50), (y, x - 12)):  # the model's (its hint input tints it near the trunk), not the brown
        assert np.abs(out[sky] - brown).max() > 60, (sky, out[sky])
    assert np.abs(out[50, 50] - plain[50, 50]).max() <= 30


def test_a_page_hint_the_model_already_followed_is_left_to_the_model() -> None:
    """carry_hints paints a page region only where the output under the hint is not already its colour: an
    element drawn without an outline is the page to the line art, and a model that coloured it keeps it."""
    import torch

    from pix2pix.fullsize import carry_hints
    from pix2pix.images import from_uint8

    drawing = Image.new("RGB", (96, 64), "white")
    ImageDraw.Draw(drawing).ellipse([30, 16, 60, 46], outline="black", width=2)
    x = from_uint8(torch.from_numpy(np.array(drawing)).permute(2, 0, 1))[None]
    blue = torch.tensor([-0.2, 0.2, 0.9])
    hint = torch.zeros(1, 4, 64, 96)
    hint[0, :3, 4:9, 4:9], hint[0, 3, 4:9, 4:9] = blue[:, None, None], 1
    model = type("Model", (), {"hint_regions": "closed", "hint_blend": True})()
    white = torch.ones(1, 3, 64, 96)
    carried = carry_hints(x, hint, white, model, None)
    torch.testing.assert_close(carried[0, :, 60, 90], blue)  # the whole page took the hint
    followed = white.clone()
    followed[0, :, 2:12, 2:12] = blue[:, None, None]  # the model coloured a patch there itself
    assert torch.equal(carry_hints(x, hint, followed, model, None), followed)
