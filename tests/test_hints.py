"""Colour hints: simulation, encoding, user hint files, the pipeline, CLI, export and resume."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image, ImageDraw
from safetensors.torch import load_file

import pix2pix.hints as hints_module
import pix2pix.hints.fill as fill_module
from pix2pix.cli import main
from pix2pix.config import Config, apply_overrides
from pix2pix.data.paired import PairedDataset
from pix2pix.hints import (
    EVAL_DRAWS,
    FILLED,
    GAP,
    HintRecipe,
    as_hint_map,
    eval_hints,
    fill_regions,
    hint_worth,
    hints_from_points,
    load_hints_file,
    resize_hints,
    simulate_hints,
    square_boxes,
)
from pix2pix.images import from_uint8
from pix2pix.inference import Pix2Pix
from pix2pix.methods import get_method
from pix2pix.seeding import derive, hint_seeds, uniforms
from pix2pix.training.loop import resume, train

from .conftest import tiny_config


@pytest.fixture(scope="module")
def val_batch(tiny_data: Path) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    ds = PairedDataset(tiny_data, "train", load_size=32)
    a, b = ds.batch(torch.arange(len(ds)))
    return from_uint8(a), from_uint8(b), [ds.name(i) for i in range(len(ds))]


# --- simulation ------------------------------------------------------------------------------


def test_counts_follow_the_recipe() -> None:
    recipe = HintRecipe(p_none=0.125, p=0.125, max_count=32)
    u = uniforms(torch.arange(4000), 0, 2)
    counts = recipe.counts(u[:, 0], u[:, 1]).numpy()
    zero = (counts == 0).mean()
    assert abs(zero - 0.125) < 0.02  # no hints an eighth of the time
    nonzero = counts[counts > 0]
    assert abs(np.mean(nonzero) - 7.89) < 0.3  # 1 + geometric(1/8) capped at 32: mean 8 (1 - (7/8)^32) = 7.89
    assert max(counts) == 32 and min(nonzero) == 1
    assert HintRecipe(p_none=1.0).counts(u[:, 0], u[:, 1]).eq(0).all()
    assert HintRecipe(p_none=0.0, p=1.0).counts(u[:50, 0], u[:50, 1]).eq(1).all()


def test_uniforms_are_a_counter_based_hash_of_seed_stream_and_index() -> None:
    """seeding.uniforms: uniform in [0, 1), draw i independent of how many are drawn, streams apart,
    seeds apart, and hint_seeds is derive("hints", ...) made on the device."""
    seeds = torch.tensor([0, 1, 2**62 + 5, 123456789])
    u = uniforms(seeds, 1, 1000)
    assert u.dtype == torch.float64 and (u >= 0).all() and (u < 1).all()
    assert abs(float(u.mean()) - 0.5) < 0.02 and abs(float(u.var()) - 1 / 12) < 0.01
    assert torch.equal(uniforms(seeds, 1, 10), u[:, :10])  # draw i is the same whatever the count
    assert not torch.equal(uniforms(seeds, 2, 10), u[:, :10])  # another stream
    assert len(set(u[:, 0].tolist())) == 4  # another seed
    assert hint_seeds(7, 3, 5, 4).tolist() == [derive("hints", 7, 3, 5 + i) for i in range(4)]
    big = 2**62  # the formula wraps past 2**63 - 1 as derive's does
    assert hint_seeds(big, big, 0, 3).tolist() == [derive("hints", big, big, i) for i in range(3)]


def test_hints_sit_on_pixels_worth_a_hint_with_the_patch_mean_colour(val_batch) -> None:
    a, b, _ = val_batch
    recipe = HintRecipe(p_none=0.0, p=0.2, size_min=1, size_max=1)  # 1-px patches: colour = the pixel's
    hints = simulate_hints(b, a, [derive("hints", 3, 7, i) for i in range(len(a))], recipe=recipe)
    assert hints.shape == (len(a), 4, 32, 32)
    mask = hints[:, 3] > 0
    worth = hint_worth(a, b)
    assert mask.any(dim=(1, 2)).all()  # p_none 0: every image got at least one hint
    assert (mask <= worth).all()  # never on background or line
    colours = hints[:, :3].permute(0, 2, 3, 1)[mask]
    assert torch.allclose(colours, b.permute(0, 2, 3, 1)[mask], atol=1e-6)
    assert (hints[:, :3].permute(0, 2, 3, 1)[~mask] == 0).all()  # 0 where there is no hint


def test_a_wide_patch_holds_the_mean_of_its_target_patch() -> None:
    gen = torch.Generator().manual_seed(0)
    target = torch.rand(8, 3, 16, 16, generator=gen) * 2 - 1
    line = torch.ones(8, 3, 16, 16)  # no lines: anywhere is worth a hint
    recipe = HintRecipe(p_none=0.0, p=1.0, size_min=5, size_max=5)  # exactly one 5 x 5 patch per image
    hints = simulate_hints(target, line, list(range(8)), recipe=recipe)
    for i in range(8):
        mask = hints[i, 3] > 0
        rows, cols = mask.any(1).nonzero().flatten(), mask.any(0).nonzero().flatten()
        box = (slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1))
        assert int(mask.sum()) == len(rows) * len(cols) <= 25  # a square, clipped at the border
        want = target[i][:, box[0], box[1]].mean(dim=(1, 2))
        torch.testing.assert_close(hints[i, :3][:, box[0], box[1]], want[:, None, None].expand(3, len(rows), len(cols)))


def test_a_later_patch_covers_an_earlier_one_with_its_own_mean() -> None:
    # 32 patches of 5 x 5 px on a 12 x 12 image overlap, and many are clipped at the border. The
    # evaluation's hints nest, so hint n's pixels are where n hints differ from n - 1: they must lie
    # in one (clipped) square and hold the target's mean colour under that square, mask 1; and they
    # must include pixels that an earlier hint held (the later patch is painted over it).
    gen = torch.Generator().manual_seed(1)
    target = torch.rand(3, 3, 12, 12, generator=gen) * 2 - 1
    line = torch.ones(3, 3, 12, 12)
    maps = [simulate_hints(target, line, [11, 12, 13], count=n, size=5) for n in range(EVAL_DRAWS + 1)]
    squares = [
        tuple(int(v[0]) for v in square_boxes(np.array([cy]), np.array([cx]), 5, 12, 12))
        for cy in range(12)
        for cx in range(12)
    ]
    covered = 0
    for n in range(1, EVAL_DRAWS + 1):
        for i in range(3):
            changed = (maps[n][i] != maps[n - 1][i]).any(0)
            if not changed.any():  # the same square as an earlier hint that nothing covered since
                continue
            colour = maps[n][i, :3][:, changed]
            assert (colour == colour[:, :1]).all() and (maps[n][i, 3][changed] == 1).all()
            assert any(
                changed[y0:y1, x0:x1].sum() == changed.sum()
                and torch.allclose(target[i, :, y0:y1, x0:x1].mean(dim=(1, 2)), colour[:, 0], atol=1e-6)
                for y0, y1, x0, x1 in squares
            ), f"hint {n} of image {i} is not one square's mean"
            covered += int(((maps[n - 1][i, 3] > 0) & changed).sum())
    assert covered > 100  # later patches were painted over earlier ones


def test_simulation_is_a_function_of_the_seed(val_batch) -> None:
    a, b, _ = val_batch
    recipe = HintRecipe()
    seeds = [derive("hints", 0, 5, i) for i in range(len(a))]
    first = simulate_hints(b, a, seeds, recipe=recipe)
    assert torch.equal(first, simulate_hints(b, a, seeds, recipe=recipe))
    assert not torch.equal(
        first, simulate_hints(b, a, [derive("hints", 0, 6, i) for i in range(len(a))], recipe=recipe)
    )
    # A rank holding images 4..7 of the global batch draws exactly those images' hints.
    share = simulate_hints(b[4:8], a[4:8], [derive("hints", 0, 5, 4 + i) for i in range(4)], recipe=recipe)
    assert torch.equal(share, first[4:8])


def test_evaluation_hints_nest_and_ignore_the_run(val_batch) -> None:
    a, b, names = val_batch
    two, five = eval_hints(a, b, names, 2), eval_hints(a, b, names, 5)
    assert ((two[:, 3] > 0) <= (five[:, 3] > 0)).all()  # the hints of 2 are among the hints of 5
    assert (five[:, 3] > 0).flatten(1).sum(1).gt(0).all()
    assert torch.equal(eval_hints(a, b, names, 0), torch.zeros_like(two))
    with pytest.raises(ValueError, match=f"at most {EVAL_DRAWS}"):
        eval_hints(a, b, names, EVAL_DRAWS + 1)


def test_resize_keeps_small_dots_and_their_colour() -> None:
    big = torch.zeros(1, 4, 64, 64)
    big[0, :3, 10:12, 20:22] = torch.tensor([0.8, -0.6, 0.1])[:, None, None]
    big[0, 3, 10:12, 20:22] = 1
    small = resize_hints(big, (16, 16))  # a 2 x 2 dot covers 1/4 of one 4 x 4 cell
    assert small[0, 3].sum() == 1 and small[0, 3, 2, 5] == 1
    assert torch.allclose(small[0, :3, 2, 5], torch.tensor([0.8, -0.6, 0.1]), atol=1e-6)
    assert resize_hints(small, (32, 32))[0, 3].sum() == 4  # growing repeats pixels


# --- encoding and user hints -------------------------------------------------------------------


def test_a_hints_model_takes_input_nc_plus_4_channels(tiny_data: Path) -> None:
    cfg = tiny_config(tiny_data, hints=True)
    method = get_method("pix2pix")
    g = method.build_network(cfg.model, "generator")
    assert g.downs[0][0].in_channels == 3 + 4
    d = method.build_network(cfg.model, "discriminator")
    assert d.model[0].in_channels == 3 + 3  # the discriminator sees line art and image, not the hints
    assert method.generator_channels(cfg.model, "AtoB") == (3, 4, 3)


def test_points_and_an_rgba_image_give_the_same_map() -> None:
    points = [{"x": 5, "y": 6, "color": "#ff0000", "size": 3}, {"x": 20, "y": 2, "color": "#00f"}]
    from_points = hints_from_points(points, 32, 24)
    rgba = Image.new("RGBA", (32, 24), (0, 0, 0, 0))
    draw = ImageDraw.Draw(rgba)
    draw.rectangle((4, 5, 6, 7), fill=(255, 0, 0, 255))
    draw.rectangle((19, 1, 21, 3), fill=(0, 0, 255, 255))  # default size at 24 px: 3
    assert torch.equal(from_points, as_hint_map(rgba, 32, 24))
    assert from_points[3].sum() == 18 and from_points[0, 6, 5] == 1.0 and from_points[2, 2, 20] == 1.0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ('[{"x": 1, "y": 2, "color": "reddish"}]', "point 0: color 'reddish' is not a colour"),
        ('[{"x": 40, "y": 2, "color": "#ff0000"}]', "point 0: (40, 2) is outside the 32x32 image"),
        ('[{"x": 1, "y": -1, "color": "#ff0000"}]', "point 0: (1, -1) is outside"),
        ('[{"x": 1, "color": "#ff0000"}]', "point 0: missing y"),
        ('[{"x": "a", "y": 1, "color": "#ff0000"}]', "point 0: x must be a number, got 'a'"),
        ('[{"x": 1, "y": 1, "color": "#ff0000", "size": 0}]', "point 0: size must be a number of pixels >= 1, got 0"),
        ('{"x": 1}', "expected a list of points"),
    ],
)
def test_bad_points_files_name_the_file_and_the_value(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "points.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=str(path).replace(".", r"\.")) as info:
        load_hints_file(path, 32, 32)
    assert message in str(info.value)


def test_bad_hint_images_name_the_file(tmp_path: Path) -> None:
    Image.new("RGBA", (16, 16)).save(tmp_path / "small.png")
    with pytest.raises(ValueError, match=r"small.png: hints image is 16x16 but the image is 32x32"):
        load_hints_file(tmp_path / "small.png", 32, 32)
    Image.new("RGB", (32, 32)).save(tmp_path / "opaque.png")
    with pytest.raises(ValueError, match=r"opaque.png: hints image has no alpha channel"):
        load_hints_file(tmp_path / "opaque.png", 32, 32)
    (tmp_path / "junk.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"junk.png: not a readable image"):
        load_hints_file(tmp_path / "junk.png", 32, 32)
    with pytest.raises(FileNotFoundError, match="hints file not found"):
        load_hints_file(tmp_path / "none.png", 32, 32)


# --- a trained hints model ---------------------------------------------------------------------


def circle_and_red_hint(size: int = 128) -> tuple[Image.Image, Image.Image, list[dict]]:
    sketch = Image.new("RGB", (size, size), "white")
    ImageDraw.Draw(sketch).ellipse((size * 0.2, size * 0.2, size * 0.8, size * 0.8), outline="black", width=size // 20)
    c, half = size // 2, size // 26
    hints = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    ImageDraw.Draw(hints).rectangle((c - half, c - half, c + half, c + half), fill=(229, 57, 53, 255))
    return sketch, hints, [{"x": c, "y": c, "color": "#e53935", "size": 2 * half + 1}]


def redness(img: Image.Image, radius: int = 1) -> float:
    """R minus the larger of G and B, around the centre."""
    arr = np.asarray(img).astype(float)
    c = arr.shape[0] // 2
    patch = arr[c - radius : c + radius + 1, c - radius : c + radius + 1].reshape(-1, 3).mean(0)
    return float(patch[0] - max(patch[1], patch[2]))


def test_a_trained_hints_model_follows_a_hint_and_works_without(hints_run: Path) -> None:
    pipe = Pix2Pix.from_pretrained(hints_run)
    sketch, hints, points = circle_and_red_hint()
    plain = pipe(sketch, size=32)
    red = pipe(sketch, size=32, hints=hints)
    assert redness(plain) < 30 < 60 < redness(red)
    # No hints is the empty map; points and the RGBA image of the same hint agree.
    empty = torch.zeros(1, 4, 32, 32)
    x = from_uint8(torch.from_numpy(np.array(sketch.resize((32, 32), Image.BICUBIC))).permute(2, 0, 1))[None]
    torch.testing.assert_close(pipe.translate_tensor(x), pipe.translate_tensor(x, hints=empty))
    assert np.array_equal(np.asarray(pipe(sketch, size=32, hints=points)), np.asarray(red))


def test_cli_translate_with_a_hints_file_agrees_with_the_api(hints_run: Path, tmp_path: Path) -> None:
    sketch, hints, points = circle_and_red_hint()
    sketch.save(tmp_path / "sketch.png")
    hints.save(tmp_path / "hints.png")
    (tmp_path / "points.json").write_text(json.dumps(points))
    pipe = Pix2Pix.from_pretrained(hints_run)
    want = np.asarray(pipe(sketch, hints=hints))
    for name in ("hints.png", "points.json"):
        r = CliRunner().invoke(
            main,
            [
                "--no-progress",
                "translate",
                str(hints_run),
                str(tmp_path / "sketch.png"),
                "--hints",
                str(tmp_path / name),
                "--out",
                str(tmp_path / name[:-4]),
            ],
        )
        assert r.exit_code == 0, r.output
        assert np.array_equal(np.asarray(Image.open(tmp_path / name[:-4] / "sketch.png")), want)
    # A hints file for several inputs, and a bad file: one-line errors.
    shutil.copy(tmp_path / "sketch.png", tmp_path / "second.png")
    r = CliRunner().invoke(
        main,
        [
            "translate",
            str(hints_run),
            str(tmp_path / "sketch.png"),
            str(tmp_path / "second.png"),
            "--hints",
            str(tmp_path / "hints.png"),
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert r.exit_code != 0 and "belongs to one image, but 2 images were given" in r.output
    (tmp_path / "bad.json").write_text('[{"x": 500, "y": 1, "color": "#fff"}]')
    r = CliRunner().invoke(
        main,
        [
            "translate",
            str(hints_run),
            str(tmp_path / "sketch.png"),
            "--hints",
            str(tmp_path / "bad.json"),
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert r.exit_code != 0 and r.output.strip().splitlines()[-1].startswith(f"Error: {tmp_path / 'bad.json'}: point 0")
    assert "Traceback" not in r.output


def test_a_model_without_hints_refuses_them(tmp_path: Path, tiny_data: Path) -> None:
    run = tmp_path / "plain"
    train(
        tiny_config(tiny_data, max_steps=1, val_every=0, sample_every=0, tensorboard=False, html=False),
        run,
        progress=False,
    )
    pipe = Pix2Pix.from_pretrained(run)
    sketch, hints, points = circle_and_red_hint(32)
    with pytest.raises(ValueError, match="trained without hints"):
        pipe(sketch, hints=hints)
    sketch.save(tmp_path / "s.png")
    hints.save(tmp_path / "h.png")
    r = CliRunner().invoke(
        main,
        [
            "translate",
            str(run),
            str(tmp_path / "s.png"),
            "--hints",
            str(tmp_path / "h.png"),
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert r.exit_code != 0 and "trained without hints" in r.output


def test_export_takes_the_hint_channels_with_parity(hints_run: Path, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    out = tmp_path / "g.onnx"
    r = CliRunner().invoke(main, ["export", str(hints_run), "--out", str(out)])
    assert r.exit_code == 0, r.output
    side = json.loads(out.with_suffix(".onnx.json").read_text())
    assert side["input"]["channels"] == 7 and side["input"]["image_channels"] == 3
    assert side["hints"]["channels"] == [3, 4, 5, 6] and "mask" in side["hints"]["layout"]
    assert side["parity"]["max_abs_diff_vs_pytorch"] <= 1e-4
    import onnxruntime as ort

    pipe = Pix2Pix.from_pretrained(hints_run)
    sketch, hints, _ = circle_and_red_hint(32)
    x = from_uint8(torch.from_numpy(np.array(sketch)).permute(2, 0, 1))[None]
    h = as_hint_map(hints, 32, 32)[None]
    got = ort.InferenceSession(str(out)).run(None, {"input": torch.cat([x, h], 1).numpy()})[0]
    assert np.abs(got - pipe.translate_tensor(x, hints=h).numpy()).max() <= 1e-4
    r = CliRunner().invoke(main, ["export", str(hints_run), "--format", "torchscript", "--out", str(tmp_path / "g.pt")])
    assert r.exit_code == 0, r.output


def test_resume_with_hints_gives_the_same_weights(tmp_path: Path, tiny_data: Path) -> None:
    cfg = tiny_config(
        tiny_data,
        hints=True,
        max_steps=6,
        n_epochs=1,
        n_epochs_decay=2,
        val_every=0,
        sample_every=0,
        tensorboard=False,
        html=False,
    )
    train(cfg, tmp_path / "whole", progress=False)
    train(cfg, tmp_path / "cut", stop_at_step=3, progress=False)
    resume(tmp_path / "cut", progress=False)
    for name in ("generator", "discriminator"):
        a = load_file(str(tmp_path / "whole" / "checkpoints" / "last" / f"{name}.safetensors"))
        b = load_file(str(tmp_path / "cut" / "checkpoints" / "last" / f"{name}.safetensors"))
        for k in a:
            torch.testing.assert_close(a[k], b[k], atol=1e-6, rtol=0, msg=k)


def test_hints_change_training(tmp_path: Path, tiny_data: Path) -> None:
    """The simulated hints reach the generator: the same run with every image hinted ends elsewhere."""
    base = dict(hints=True, max_steps=2, val_every=0, sample_every=0, tensorboard=False, html=False)
    train(tiny_config(tiny_data, hint_p_none=1.0, **base), tmp_path / "none", progress=False)
    train(tiny_config(tiny_data, hint_p_none=0.0, **base), tmp_path / "many", progress=False)
    a = load_file(str(tmp_path / "none" / "checkpoints" / "last" / "generator.safetensors"))
    b = load_file(str(tmp_path / "many" / "checkpoints" / "last" / "generator.safetensors"))
    assert not torch.equal(a["downs.0.0.weight"], b["downs.0.0.weight"])


def test_end_to_end_train_with_hints_translate_evaluate(tmp_path: Path, shapes_data: Path) -> None:
    run = tmp_path / "run"
    r = CliRunner().invoke(
        main,
        [
            "--no-progress",
            "train",
            "--data",
            str(shapes_data),
            "--out",
            str(run),
            "--hints",
            "--generator",
            "unet_32",
            "--ngf",
            "8",
            "--ndf",
            "8",
            "--load-size",
            "32",
            "--crop-size",
            "32",
            "--batch-size",
            "4",
            "--max-steps",
            "3",
        ],
    )
    assert r.exit_code == 0, r.output
    sketch, hints, _ = circle_and_red_hint(32)
    sketch.save(tmp_path / "s.png")
    hints.save(tmp_path / "h.png")
    r = CliRunner().invoke(
        main,
        [
            "--no-progress",
            "translate",
            str(run),
            str(tmp_path / "s.png"),
            "--hints",
            str(tmp_path / "h.png"),
            "--out",
            str(tmp_path / "out"),
        ],
    )
    assert r.exit_code == 0 and (tmp_path / "out" / "s.png").is_file(), r.output
    r = CliRunner().invoke(main, ["--no-progress", "evaluate", str(run), "--hints", "5", "--out", str(tmp_path / "ev")])
    assert r.exit_code == 0, r.output
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert {"model", "model_h5", "copy_input", "untrained"} == set(metrics["mean"])
    assert metrics["hint_curve"]["counts"] == [0, 1, 2, 5, 10, 20]
    assert metrics["hint_curve"]["mean"]["5"] == pytest.approx(metrics["mean"]["model_h5"], abs=1e-6)
    assert metrics["hint_curve"]["mean"]["0"] == pytest.approx(
        {k: metrics["mean"]["model"][k] for k in ("l1", "psnr", "ssim")}
    )
    page = (tmp_path / "ev" / "index.html").read_text()
    assert 'id="curve"' in page and page.count("<svg") == 3 and "trained model, 5 hints" in page
    assert len(list((tmp_path / "ev" / "hints_h5").glob("*.png"))) == 4
    assert "hints per image" in r.output and "trained model, 5 hints" in r.output


# --- hint fill (model.hint_fill): each hint spread over its region of the line art ------------


def boxes_and_dots() -> tuple[torch.Tensor, torch.Tensor]:
    """Two 32 px line-art images: a closed box (rows/cols 8..23, 2 px black outline) with a red dot
    inside and a blue dot on the background; and a wide box holding a red dot at its left end and a
    blue one at its right. Returns line art (2, 3, 32, 32) and hints (2, 4, 32, 32) in [-1, 1]."""
    art = torch.ones(2, 3, 32, 32)
    art[0, :, 8:24, 8:24] = -1
    art[0, :, 10:22, 10:22] = 1
    art[1, :, 8:24, 2:30] = -1
    art[1, :, 10:22, 4:28] = 1
    hints = torch.zeros(2, 4, 32, 32)
    red, blue = torch.tensor([0.8, -0.6, -0.6]), torch.tensor([-0.6, -0.6, 0.8])
    for i, y, x, colour in ((0, 15, 15, red), (0, 3, 3, blue), (1, 15, 5, red), (1, 15, 26, blue)):
        hints[i, :3, y, x] = colour
        hints[i, 3, y, x] = 1
    return art, hints


def test_fill_paints_a_closed_region_in_its_hint_colour_and_nothing_else() -> None:
    art, hints = boxes_and_dots()
    filled = fill_regions(hints, art)
    inside = torch.zeros(32, 32, dtype=torch.bool)
    inside[10:22, 10:22] = True
    inside[15, 15] = False  # the hint itself
    assert (filled[0, 3][inside] == FILLED).all() and filled[0, 3, 15, 15] == 1
    torch.testing.assert_close(filled[0, :3][:, inside], hints[0, :3, 15, 15][:, None].expand(3, int(inside.sum())))
    # The background touches the border: its hint stays a dot; lines stay empty.
    outside = ~inside
    outside[15, 15] = False
    assert torch.equal(filled[0][:, outside], hints[0][:, outside])
    # Two hints in one region: each pixel takes the nearer one's colour.
    assert (
        filled[1, 0, 15, 8] > 0.5
        and filled[1, 2, 15, 8] < 0
        and filled[1, 2, 15, 23] > 0.5
        and filled[1, 0, 15, 23] < 0
    )
    # Filling twice changes nothing; an image without hints stays empty; shapes must match.
    assert torch.equal(fill_regions(filled, art), filled)
    assert torch.equal(fill_regions(torch.zeros(1, 4, 32, 32), art[:1]), torch.zeros(1, 4, 32, 32))
    with pytest.raises(ValueError, match="does not match line art"):
        fill_regions(hints, art[:, :, :16])


def test_blend_fill_weighs_the_regions_hints_by_inverse_square_distance() -> None:
    art, hints = boxes_and_dots()
    filled = fill_regions(hints, art, blend=True)
    # One hint in a region: the whole region takes its colour, as the nearest-hint fill gives (the
    # blue dot on the background lies across a line and weighs nothing).
    torch.testing.assert_close(filled[0], fill_regions(hints[:1], art[:1])[0])
    # Two hints in one region: each pixel takes both colours weighted by 1 / squared distance.
    red, blue = hints[1, :3, 15, 5], hints[1, :3, 15, 26]
    for y, x in ((15, 8), (15, 15), (12, 20), (20, 27)):
        w_red, w_blue = 1 / ((y - 15) ** 2 + (x - 5) ** 2), 1 / ((y - 15) ** 2 + (x - 26) ** 2)
        torch.testing.assert_close(filled[1, :3, y, x], (w_red * red + w_blue * blue) / (w_red + w_blue))
        assert filled[1, 3, y, x] == FILLED
    # Red fades into blue along the row, with no hard edge: every step is small and in one direction.
    row = filled[1, 0, 15, 6:26]
    steps = row[1:] - row[:-1]
    assert (steps < 0).all() and steps.abs().max() < 0.25 and row[0] > 0.7 and row[-1] < -0.5
    # The lines, the background and the hints themselves stay as they were; filling twice changes nothing.
    painted = filled[:, 3] == FILLED
    assert torch.equal(filled.permute(1, 0, 2, 3)[:, ~painted], hints.permute(1, 0, 2, 3)[:, ~painted])
    assert torch.equal(painted, fill_regions(hints, art)[:, 3] == FILLED)
    assert torch.equal(fill_regions(filled, art, blend=True), filled)


@pytest.mark.parametrize("blend", [False, True], ids=["nearest", "blend"])
def test_fill_on_a_grid_of_cells_matches_the_per_pixel_fill_on_large_images(
    monkeypatch: pytest.MonkeyPatch, blend: bool
) -> None:
    """Above EXACT px a side the colour field is computed per grid cell (stride 8 at 256 px), so its
    cost and memory stay those of a FIELD x FIELD image: the same pixels are painted as with a field
    per pixel, in nearly the same colours (they differ only where two hints meet)."""
    art = torch.ones(1, 3, 256, 256)
    art[0, :, 16:240, 16:240] = -1
    art[0, :, 20:236, 20:236] = 1
    hints = torch.zeros(1, 4, 256, 256)
    for y, x, colour in ((30, 30, (0.9, -0.5, 0.1)), (200, 60, (-0.7, 0.6, 0.2)), (120, 220, (0.1, 0.1, -0.9))):
        hints[0, :3, y - 2 : y + 3, x - 2 : x + 3] = torch.tensor(colour)[:, None, None]
        hints[0, 3, y - 2 : y + 3, x - 2 : x + 3] = 1
    assert [hints_module.field_stride(n, n) for n in (64, 65, 128, 256)] == [1, 2, 4, 8]
    grid = fill_regions(hints, art, blend=blend)
    monkeypatch.setattr(fill_module, "EXACT", 256)
    exact = fill_regions(hints, art, blend=blend)
    assert torch.equal(grid[0, 3], exact[0, 3])
    diff = (grid[0, :3] - exact[0, :3]).abs()
    assert float(diff.mean()) < 0.01 and float(diff.max()) <= (0.08 if blend else 2.0)  # 8 px cells: 0.067
    if not blend:  # nearest: only pixels near the edge between two hints' cells may change
        assert float((diff.amax(0) > 1e-4).float().mean()) < 0.02


def test_hint_fill_needs_hints() -> None:
    with pytest.raises(ValueError, match="hint_fill spreads hints over regions: it needs hints"):
        apply_overrides(Config(), {"hint_fill": True})
    assert apply_overrides(Config(), {"hints": True, "hint_fill": True}).model.hint_fill
    with pytest.raises(ValueError, match="hint_blend is a way to fill regions: it needs hint_fill"):
        apply_overrides(Config(), {"hints": True, "hint_blend": True})


@pytest.fixture(scope="module")
def fill_runs(tmp_path_factory: pytest.TempPathFactory, shapes_data: Path) -> dict[str, Path]:
    """Three 2-step runs from one seed: dots only, the nearest-hint fill, the blended fill."""
    root = tmp_path_factory.mktemp("fill_runs")
    base = dict(
        hints=True,
        hint_p_none=0.0,
        max_steps=2,
        load_size=32,
        val_every=0,
        sample_every=0,
        tensorboard=False,
        html=False,
    )
    fills = {"dots": {}, "nearest": {"hint_fill": True}, "blend": {"hint_fill": True, "hint_blend": True}}
    for name, extra in fills.items():
        train(tiny_config(shapes_data, **extra, **base), root / name, progress=False)
    return {name: root / name for name in fills}


@pytest.mark.parametrize("blend", [False, True], ids=["nearest", "blend"])
def test_a_hint_fill_model_fills_in_training_inference_and_export(
    tmp_path: Path, fill_runs: dict[str, Path], blend: bool
) -> None:
    """The fill reaches the training step (same seed, other weights than without it, and than with
    the other fill), every inference path (translate_tensor = the generator on the filled map), and
    the exported file (parity on filled maps; the sidecar says how to fill)."""
    run, other = (fill_runs["blend"], fill_runs["nearest"]) if blend else (fill_runs["nearest"], fill_runs["blend"])
    a, b, c = (
        load_file(str(r / "checkpoints" / "last" / "generator.safetensors")) for r in (fill_runs["dots"], run, other)
    )
    assert not torch.equal(a["downs.0.0.weight"], b["downs.0.0.weight"])
    assert not torch.equal(c["downs.0.0.weight"], b["downs.0.0.weight"])

    pipe = Pix2Pix.from_pretrained(run)
    assert pipe.config.model.hint_fill and pipe.config.model.hint_blend == blend
    art, hints = boxes_and_dots()
    art, hints = art[1:], hints[1:]  # the box with two hints: the fills differ there
    fill = lambda h, x: fill_regions(h, x, blend=blend)  # noqa: E731
    assert not torch.equal(fill(hints, art), fill_regions(hints, art, blend=not blend))
    with torch.no_grad():
        want = pipe.generator(torch.cat([art, fill(hints, art)], 1))
        unfilled = pipe.generator(torch.cat([art, hints], 1))
    got = pipe.translate_tensor(art, hints=hints)
    torch.testing.assert_close(got, want)
    assert (got - unfilled).abs().max() > 1e-3
    # The API with an RGBA hints image fills the same way.
    sketch = Image.fromarray(((art[0].permute(1, 2, 0) + 1) * 127.5).round().byte().numpy())
    dots = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    dots.putpixel((15, 15), (229, 51, 51, 255))
    out = np.asarray(pipe(sketch, hints=dots)).astype(float)
    x = from_uint8(torch.from_numpy(np.array(sketch)).permute(2, 0, 1))[None]
    ref = pipe.translate_tensor(x, hints=fill(as_hint_map(dots, 32, 32)[None], x))
    assert np.abs(out - ((ref[0].permute(1, 2, 0).numpy() + 1) * 127.5)).max() <= 1.0

    pytest.importorskip("onnxruntime")
    r = CliRunner().invoke(main, ["export", str(run), "--out", str(tmp_path / "g.onnx")])
    assert r.exit_code == 0, r.output
    side = json.loads((tmp_path / "g.onnx.json").read_text())
    assert ("squared distance" if blend else "source at the least round(d2)") in side["hints"]["fill"]
    assert side["parity"]["max_abs_diff_vs_pytorch"] <= 1e-4
    import onnxruntime as ort

    onnx_out = ort.InferenceSession(str(tmp_path / "g.onnx")).run(
        None, {"input": torch.cat([art, fill(hints, art)], 1).numpy()}
    )[0]
    assert np.abs(onnx_out - got.numpy()).max() <= 1e-4


def box_with_gap(gap: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A 1 px outline (a box, 48 px page) with a `gap` px opening in its top side, and a red hint inside."""
    art = torch.ones(1, 3, 48, 48)
    art[0, :, 10, 10:38] = art[0, :, 37, 10:38] = -1
    art[0, :, 10:38, 10] = art[0, :, 10:38, 37] = -1
    if gap:
        art[0, :, 10, 24 : 24 + gap] = 1
    hints = torch.zeros(1, 4, 48, 48)
    hints[0, :3, 30, 20] = torch.tensor([0.9, -0.8, -0.8])
    hints[0, 3, 30, 20] = 1
    return art, hints


@pytest.mark.parametrize("gap", [0, 1, 2, 3, 4])
def test_open_fill_closes_gaps_up_to_two_pixels_and_never_paints_the_page(gap: int) -> None:
    art, hints = box_with_gap(gap)
    inside = torch.zeros(48, 48, dtype=torch.bool)
    inside[11:37, 11:37] = True
    inside[30, 20] = False  # the hint itself
    page = art[0, 0] > 0
    page[10:38, 10:38] = False
    for mode in ("closed", "open"):
        filled = fill_regions(hints, art, blend=True, mode=mode)
        painted = filled[0, 3] == FILLED
        assert not (painted & page).any(), (mode, gap)  # the page stays as it is
        assert not painted[art[0, 0] < 0].any()  # so do the strokes
        holds = gap == 0 or (mode == "open" and gap <= GAP)
        if holds:  # the whole inside, in the hint's colour
            assert painted[inside].all(), (mode, gap)
            torch.testing.assert_close(
                filled[0, :3][:, inside], hints[0, :3, 30, 20][:, None].expand(3, int(inside.sum()))
            )
        else:  # the inside joined the page through the opening: the hint stays a dot
            assert not painted.any(), (mode, gap)


def test_open_fill_paints_a_region_at_the_border_that_is_not_the_page() -> None:
    """A flag's stripe reaches the picture's edge without an outline: "closed" leaves it (it touches the
    border), "open" paints it; the largest region at the border (the page) stays unpainted in both."""
    art = torch.ones(1, 3, 40, 40)
    art[0, :, :, 12] = -1  # a stroke from top to bottom: a 12 px strip on the left, the page on the right
    hints = torch.zeros(1, 4, 40, 40)
    hints[0, :3, 20, 5] = torch.tensor([-0.8, 0.9, -0.8])  # green in the strip
    hints[0, :3, 20, 30] = torch.tensor([0.9, -0.8, -0.8])  # red on the page
    hints[0, 3, 20, 5] = hints[0, 3, 20, 30] = 1
    closed = fill_regions(hints, art, mode="closed")
    opened = fill_regions(hints, art, mode="open")
    assert not (closed[0, 3] == FILLED).any()
    strip = opened[0, 3] == FILLED
    assert strip[:, :12].sum() == 40 * 12 - 1 and not strip[:, 12:].any()
    assert (opened[0, 1, :, :12] > 0.8).all()  # green up to the stroke
    with pytest.raises(ValueError, match="unknown hint_regions 'holes'; valid: closed, open"):
        fill_regions(hints, art, mode="holes")


def test_colour_jitter_recolours_a_share_of_targets_and_keeps_greys() -> None:
    """hints.jitter_colours: a hue rotation about the grey axis with a saturation change, one draw
    per image from its seed; white paper, black ink and greys stay as they are; share 0 is identity."""
    from pix2pix.hints import jitter_colours

    img = torch.full((1, 3, 8, 8), 1.0)  # white paper
    img[:, :, :2] = -1.0  # black ink
    img[:, :, 2:4] = 0.2  # a grey
    img[:, 0, 4:], img[:, 1, 4:], img[:, 2, 4:] = 0.8, -0.6, -0.6  # a red
    batch = img.repeat(6, 1, 1, 1)
    seeds = list(range(100, 106))
    assert jitter_colours(batch, seeds, 0.0) is batch
    out = jitter_colours(batch, seeds, 1.0)
    torch.testing.assert_close(out[:, :, :4], batch[:, :, :4], atol=1e-6, rtol=0)  # greys fixed
    red = out[:, :, 4:].mean(dim=(2, 3))  # (6, 3): every image's red moved somewhere else
    assert ((red - torch.tensor([0.8, -0.6, -0.6])).abs().max(dim=1).values > 0.05).all()
    assert len({tuple(np.round(r.numpy(), 3)) for r in red}) == 6  # one draw per image
    torch.testing.assert_close(jitter_colours(batch, seeds, 1.0), out, atol=0, rtol=0)  # the seed decides
    # A share: about that many images change, the rest are left exactly as they were.
    seeds = list(range(400))
    half = jitter_colours(img.repeat(400, 1, 1, 1), seeds, 0.5)
    changed = (half - img).abs().flatten(1).amax(dim=1) > 1e-6
    assert 150 < int(changed.sum()) < 250


def test_jitter_and_hint_selection_need_a_hints_model(tmp_path: Path) -> None:
    from pix2pix.config import Config, apply_overrides

    with pytest.raises(ValueError, match=r"hint_jitter changes the colours hints are drawn from: it needs hints"):
        apply_overrides(Config(), {"hint_jitter": 0.5})
    with pytest.raises(ValueError, match=r"select_by 'h10_ssim' scores with 10 hints: it needs a hints model"):
        apply_overrides(Config(), {"select_by": "h10_ssim"})
    with pytest.raises(ValueError, match=r"hint_jitter must be a share in \[0, 1\], got 1.5"):
        apply_overrides(Config(), {"hints": True, "hint_jitter": 1.5})
    with pytest.raises(ValueError, match=r"hint_strokes and hint_blobs shape simulated hints: they need hints"):
        apply_overrides(Config(), {"hint_blobs": 0.5})
    with pytest.raises(ValueError, match=r"hint_strokes must be a share in \[0, 1\], got -0.1"):
        apply_overrides(Config(), {"hints": True, "hint_strokes": -0.1})
    with pytest.raises(ValueError, match=r"hint_strokes 0.75 \+ hint_blobs 0.5 is more than every hint"):
        apply_overrides(Config(), {"hints": True, "hint_strokes": 0.75, "hint_blobs": 0.5})


def test_best_checkpoint_by_hinted_val_ssim(shapes_data: Path, tmp_path: Path) -> None:
    """select_by h10_ssim keeps checkpoints/best by val SSIM with 10 simulated hints; jitter, strokes and blobs
    train."""
    from pix2pix.run_folder import read_meta
    from pix2pix.training.loop import train

    from .conftest import tiny_config

    cfg = tiny_config(
        shapes_data,
        hints=True,
        hint_jitter=0.5,
        hint_strokes=0.5,
        hint_blobs=0.25,
        select_by="h10_ssim",
        max_steps=4,
        val_every=2,
        sample_every=0,
        tensorboard=False,
        html=False,
    )
    train(cfg, tmp_path / "run", progress=False)
    meta = read_meta(tmp_path / "run" / "checkpoints" / "best")
    assert meta["select_by"] == "h10_ssim" and meta["value"] == meta["val"]["h10_ssim"]
    assert {"ssim", "h10_ssim", "h10_psnr", "h10_l1"} <= set(meta["val"])
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    scores = [e["val_h10_ssim"] for e in log if "val_h10_ssim" in e]
    assert len(scores) == 2 and meta["value"] == pytest.approx(max(scores), abs=1e-5)


def test_simulated_strokes_are_seeded_nest_and_keep_to_one_colour_area() -> None:
    """Strokes (evaluate --hint-shape strokes): rows of squares through the dots' centres, the same for a name
    in every run, the first N of a larger count, each inside one colour area of the target, in its colour."""
    size = 64
    target = torch.full((2, 3, size, size), -1.0)
    target[:, 0, :, : size // 2] = 0.8  # left half red-ish, right half green-ish: two colour areas
    target[:, 1, :, size // 2 :] = 0.6
    line = torch.ones(2, 3, size, size)
    names = ["a.png", "b.png"]
    strokes = eval_hints(line, target, names, 10, shape="strokes")
    assert torch.equal(strokes, eval_hints(line, target, names, 10, shape="strokes"))
    fewer = eval_hints(line, target, names, 4, shape="strokes")
    assert bool(((fewer[:, 3] > 0) <= (strokes[:, 3] > 0)).all())
    dots = eval_hints(line, target, names, 10)
    assert (strokes[:, 3] > 0).sum() > 2 * (dots[:, 3] > 0).sum()  # longer than dots through the same centres
    hinted = strokes[:, 3] > 0
    # Every hinted pixel holds the target's own colour there: no stroke crosses from one half into the other.
    torch.testing.assert_close(strokes[:, :3].permute(0, 2, 3, 1)[hinted], target.permute(0, 2, 3, 1)[hinted])
    with pytest.raises(ValueError, match="unknown hint shape 'blobs'; valid: dots, strokes"):
        eval_hints(line, target, names, 2, shape="blobs")


def _two_areas(size: int, b: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """A target of two flat colour areas (left red-ish, right green-ish) and blank line art."""
    target = torch.full((b, 3, size, size), -1.0)
    target[:, 0, :, : size // 2] = 0.8
    target[:, 1, :, size // 2 :] = 0.6
    return target, torch.ones(b, 3, size, size)


def _spread(mask: torch.Tensor) -> float:
    """The ratio of the hinted pixels' two principal spreads (large: a line; near 1: a round shape)."""
    yx = mask.nonzero().double()
    eig = torch.linalg.eigvalsh(torch.cov(yx.T))
    return float(eig[1] / eig[0])


def test_training_hints_take_strokes_and_blobs_through_the_dots_centres() -> None:
    """hint_strokes / hint_blobs: a share of the recipe's hints grows from a square into a row (a stroke) or a
    cross (a blob) of squares of its side, through the same centres, counts and sides as the dots: seeded,
    kept inside one colour area and in its colour, and a stroke is long and thin where a blob is round."""
    size = 64
    target, line = _two_areas(size, 4)
    seeds = torch.tensor([3, 4, 5, 6])
    dots = HintRecipe(p_none=0.0, p=0.25, size_min=3, size_max=3)
    strokes, blobs = (
        HintRecipe(p_none=0.0, p=0.25, size_min=3, size_max=3, strokes=1.0),
        HintRecipe(p_none=0.0, p=0.25, size_min=3, size_max=3, blobs=1.0),
    )
    maps = {r: simulate_hints(target, line, seeds, recipe=r) for r in (dots, strokes, blobs)}
    assert torch.equal(maps[strokes], simulate_hints(target, line, seeds, recipe=strokes))
    assert not torch.equal(maps[strokes], simulate_hints(target, line, seeds + 1, recipe=strokes))
    for r in (strokes, blobs):
        hinted = maps[r][:, 3] > 0
        assert bool(((maps[dots][:, 3] > 0) <= hinted).all())  # every dot is the middle of its shape
        assert hinted.sum() > 2.5 * (maps[dots][:, 3] > 0).sum()
        torch.testing.assert_close(maps[r][:, :3].permute(0, 2, 3, 1)[hinted], target.permute(0, 2, 3, 1)[hinted])
    # One hint alone in one colour: a stroke spreads along its angle, a blob about as much every way.
    one = {"p_none": 0.0, "p": 1.0, "max_count": 1, "size_min": 3, "size_max": 3}
    flat = torch.full((1, 3, size, size), 0.5)
    stroke = simulate_hints(flat, line[:1], [11], recipe=HintRecipe(**one, strokes=1.0))[0, 3] > 0
    blob = simulate_hints(flat, line[:1], [11], recipe=HintRecipe(**one, blobs=1.0))[0, 3] > 0
    assert _spread(stroke) > 8 and _spread(blob) < 2
    assert 36 <= int(blob.sum()) <= 45 and 36 <= int(stroke.sum()) <= 45  # five 3 px squares, little overlap


def test_the_recipe_shares_hints_among_shapes_and_a_stroke_is_one_fill_source() -> None:
    u = (torch.arange(10_000, dtype=torch.float64) + 0.5) / 10_000
    shapes = HintRecipe(strokes=0.5, blobs=0.25).shapes(u)
    assert [int((shapes == i).sum()) for i in range(3)] == [2_500, 5_000, 2_500]
    assert HintRecipe().group == 1 and HintRecipe(blobs=0.1).group == 5
    from pix2pix.hints.simulation import patch_sources, simulate_patches

    size = 32
    target, line = _two_areas(size, 1)
    regions = torch.ones(1, size, size, dtype=torch.int32)
    worth = torch.ones(1, size, size, dtype=torch.bool)
    recipe = HintRecipe(p_none=0.0, p=1.0, max_count=2, size_min=3, size_max=3, strokes=1.0)
    patches = simulate_patches(target, worth, torch.tensor([2]), recipe=recipe)
    sources = patch_sources(patches, regions, recipe.group)
    assert sources.label.shape == (1, 2)  # one source per hint, not per square
    torch.testing.assert_close(sources.mass, patches.inside.sum(2).reshape(1, 2, 5).sum(2).double().to(sources.mass))
    torch.testing.assert_close(sources.yx, patches.centre.reshape(1, 2, 5, 2)[:, :, 2].to(sources.yx))
