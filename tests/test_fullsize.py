"""Full-size output (fullsize.py): line art of any size comes back at its size with its own strokes,
colours stay inside the strokes, hints in the input's coordinates, one path for CLI, API and server."""

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image, ImageDraw

from pix2pix.cli import main
from pix2pix.fullsize import check_pixels, compose, is_line_art, to_size, working_size
from pix2pix.inference import Pix2Pix

from .test_hints import circle_and_red_hint, redness

RED, BLUE = (220, 40, 40), (40, 90, 220)


def scene(h: int, w: int) -> tuple[Image.Image, Image.Image]:
    """Line art (two closed ellipses, black on white) and its colouring (red and blue inside)."""
    line, colour = Image.new("RGB", (w, h), "white"), Image.new("RGB", (w, h), "white")
    for box, fill in (((0.08, 0.1, 0.45, 0.9), RED), ((0.55, 0.15, 0.92, 0.75), BLUE)):
        xy = [box[0] * w, box[1] * h, box[2] * w, box[3] * h]
        ImageDraw.Draw(line).ellipse(xy, outline="black", width=5)
        ImageDraw.Draw(colour).ellipse(xy, fill=fill, outline="black", width=5)
    return line, colour


def as_tensor(img: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.array(img)).permute(2, 0, 1).float()[None] / 127.5 - 1


def as_array(t: torch.Tensor) -> np.ndarray:
    return ((t[0].permute(1, 2, 0) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy().astype(int)


def test_working_size_keeps_the_aspect_ratio_with_the_longer_side_at_the_training_size() -> None:
    assert working_size(700, 1000, 64) == (45, 64)
    assert working_size(1000, 700, 64) == (64, 45)
    assert working_size(64, 64, 64) == (64, 64)
    assert working_size(32, 32, 64) == (64, 64)
    assert working_size(3, 2000, 64) == (1, 64)


def test_an_input_over_the_pixel_limit_is_one_error_naming_its_size() -> None:
    with pytest.raises(ValueError, match=r"sketch.png: 5000x4000 is larger than the 4096x4096 pixels"):
        check_pixels(4000, 5000, "sketch.png")
    check_pixels(2000, 2000)


def test_compose_keeps_the_input_strokes_and_colours_do_not_cross_them() -> None:
    line, colour = scene(350, 500)
    x, target = as_tensor(line), as_tensor(colour)
    low = to_size(target, working_size(350, 500, 64))  # what a perfect 64 px generator would give: (45, 64)
    out = as_array(compose(x, low))
    want, ink = as_array(target), np.asarray(line.convert("L")) < 60
    assert out.shape == (350, 500, 3)
    assert np.abs(out[ink] - want[ink]).max() <= 2  # every stroke as drawn: as sharp as the input
    # Just outside the red ellipse's stroke (a band a working-size cell wide) stays white: no spill.
    mask = Image.new("L", (500, 350), 0)
    ImageDraw.Draw(mask).ellipse([0.08 * 500 - 12, 0.1 * 350 - 12, 0.45 * 500 + 12, 0.9 * 350 + 12], fill=255)
    ImageDraw.Draw(mask).ellipse([0.08 * 500, 0.1 * 350, 0.45 * 500, 0.9 * 350], fill=0)
    band = np.asarray(mask) > 0
    assert (out[band].min(1) >= 235).mean() > 0.99, "red spilled over the stroke"
    # Inside, the fill colour; and the whole picture is far closer than plain upsampling.
    l1 = np.abs(out - want).mean() / 255
    bicubic = np.abs(as_array(to_size(low, (350, 500))) - want).mean() / 255
    assert l1 < bicubic / 5, (l1, bicubic)


def test_anything_but_line_art_is_upsampled_plainly() -> None:
    photo = torch.rand(1, 3, 90, 120) * 2 - 1
    low = torch.rand(1, 3, 23, 30) * 2 - 1
    assert not is_line_art(photo[0])
    torch.testing.assert_close(compose(photo, low), to_size(low, (90, 120)))
    line, _ = scene(90, 120)
    assert is_line_art(as_tensor(line)[0])


def test_a_non_square_drawing_comes_back_at_its_size_with_its_strokes(hints_run: Path) -> None:
    pipe = Pix2Pix.from_pretrained(hints_run)  # trained at 32 px
    line, _ = scene(210, 300)
    out = np.asarray(pipe(line), dtype=int)
    assert out.shape == (210, 300, 3)
    ink = np.asarray(line.convert("L")) < 60
    assert out[ink].max() <= 10  # the strokes are the input's black, not a blurred 32 px stroke
    native = np.asarray(pipe(line, scale="native"), dtype=int)
    bicubic = np.asarray(pipe(line, scale="bicubic"), dtype=int)
    assert native.shape == bicubic.shape == (210, 300, 3)
    assert not np.array_equal(out, bicubic)


def test_hints_in_the_input_coordinates_colour_their_region_at_every_size(hints_run: Path) -> None:
    pipe = Pix2Pix.from_pretrained(hints_run)
    for size in (128, 256):
        sketch, hints, points = circle_and_red_hint(size)
        red = pipe(sketch, hints=points)
        assert red.size == (size, size)
        assert redness(red) > 60 > 30 > redness(pipe(sketch))  # the hint paints its region, at the input's size
        assert np.array_equal(np.asarray(pipe(sketch, hints=hints)), np.asarray(red))  # RGBA and points agree


def test_cli_api_and_server_give_the_same_pixels(hints_run: Path, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from pix2pix.serve.app import create_app

    sketch, hints, points = circle_and_red_hint(160)
    sketch = sketch.crop((0, 20, 160, 130))  # non-square: 160 x 110
    hints = hints.crop((0, 20, 160, 130))
    sketch.save(tmp_path / "sketch.png")
    hints.save(tmp_path / "hints.png")
    want = np.asarray(Pix2Pix.from_pretrained(hints_run)(sketch, hints=hints))
    assert want.shape == (110, 160, 3)
    r = CliRunner().invoke(
        main,
        [
            "--no-progress",
            "translate",
            str(hints_run),
            str(tmp_path / "sketch.png"),
            "--hints",
            str(tmp_path / "hints.png"),
            "--out",
            str(tmp_path / "cli"),
        ],
    )
    assert r.exit_code == 0, r.output
    assert np.array_equal(np.asarray(Image.open(tmp_path / "cli" / "sketch.png")), want)
    with TestClient(create_app(hints_run)) as client:
        files = {
            "image": ("s.png", (tmp_path / "sketch.png").read_bytes(), "image/png"),
            "hints": ("h.png", (tmp_path / "hints.png").read_bytes(), "image/png"),
        }
        served = client.post("/v1/translate", files=files)
    assert served.status_code == 200, served.text
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(served.content))), want)


def test_evaluate_at_another_size_scores_against_targets_at_that_size(hints_run: Path, tmp_path: Path) -> None:
    r = CliRunner().invoke(
        main,
        ["--no-progress", "evaluate", str(hints_run), "--size", "64", "--no-curve", "--out", str(tmp_path / "at64")],
    )
    assert r.exit_code == 0, r.output
    assert "at 64px, scale auto" in r.output
    at64 = json.loads((tmp_path / "at64" / "metrics.json").read_text())
    assert at64["size"] == 64 and at64["scale"] == "auto"
    with Image.open(next((tmp_path / "at64" / "outputs").glob("*.png"))) as img:
        assert img.size == (64, 64)
    r = CliRunner().invoke(
        main, ["--no-progress", "evaluate", str(hints_run), "--no-curve", "--out", str(tmp_path / "at32")]
    )
    at32 = json.loads((tmp_path / "at32" / "metrics.json").read_text())
    assert at32["size"] == 32 and at32["scale"] == "native"
    assert at32["mean"]["copy_input"] != at64["mean"]["copy_input"]  # the baseline is scored at that size too
