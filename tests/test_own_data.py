"""A user's own data: line art from colour art, pairs from folders, splits, EXIF, portable runs, the public API."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image, ImageDraw

from pix2pix.cli import data as data_cli
from pix2pix.cli import main
from pix2pix.data.paired import PairedDataset
from pix2pix.data.sketch import canny, strokes, xdog
from pix2pix.data.splits import split_of_name
from pix2pix.images import load_image
from pix2pix.training.loop import train

from .conftest import tiny_config


def illustration(size: tuple[int, int] = (90, 60), seed: int = 0, mode: str = "RGB") -> Image.Image:
    """A flat-coloured drawing with dark outlines, as an illustration is."""
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", size, (250, 248, 240))
    d = ImageDraw.Draw(img)
    for _ in range(3):
        x0, y0 = int(rng.integers(0, size[0] // 2)), int(rng.integers(0, size[1] // 2))
        fill = tuple(int(c) for c in rng.integers(30, 230, 3))
        d.ellipse((x0, y0, x0 + size[0] // 2, y0 + size[1] // 2), fill=fill, outline=(20, 20, 20), width=2)
    return img.convert(mode)


@pytest.fixture(scope="module")
def colour_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("colour")
    (src / "sub").mkdir()
    for i in range(20):
        illustration(seed=i).save(src / f"art{i:02d}.png")
    illustration(seed=99, mode="RGBA").save(src / "sub" / "transparent.png")  # another mode, in a subfolder
    illustration(size=(40, 100), seed=7).save(src / "sub" / "tall.jpg")
    return src


def test_xdog_draws_outlines_not_fills() -> None:
    img = illustration(size=(128, 128))
    line = np.asarray(xdog(img).convert("L"), dtype=float)
    assert line.min() < 60 and np.median(line) > 240  # dark lines, mostly white paper
    assert 0.01 < (line < 128).mean() < 0.25
    # A flat fill stays white inside: the centre of a solid square carries no line.
    square = Image.new("RGB", (64, 64), "white")
    ImageDraw.Draw(square).rectangle((16, 16, 48, 48), fill=(20, 40, 200))
    out = np.asarray(xdog(square).convert("L"))
    assert out[32, 32] > 240 and out[16:49, 14:19].min() < 100
    edges = np.asarray(canny(square).convert("L"))
    assert edges[32, 32] == 255 and (edges < 128).sum() > 50


def test_data_sketch_writes_pairs_splits_and_a_preview(colour_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "pairs"
    r = CliRunner().invoke(
        main,
        [
            "--no-progress",
            "data",
            "sketch",
            str(colour_folder),
            "--out",
            str(out),
            "--size",
            "64",
            "--preview",
            "6",
            "--val",
            "0.2",
            "--test",
            "0.2",
        ],
    )
    assert r.exit_code == 0, r.output
    pairs = sorted(out.rglob("*.png"))
    pairs = [p for p in pairs if p.name != "preview.png"]
    assert len(pairs) == 22 and {p.relative_to(out).parts[0] for p in pairs} == {"train", "val", "test"}
    assert (out / "train" / "sub").is_dir() or (out / "val" / "sub").is_dir() or (out / "test" / "sub").is_dir()
    with Image.open(pairs[0]) as pair:
        assert pair.size == (128, 64)
        line, colour = np.asarray(pair.crop((0, 0, 64, 64))), np.asarray(pair.crop((64, 0, 128, 64)))
    assert np.ptp(line.astype(int), axis=2).max() == 0  # line art is grey
    assert np.ptp(colour.astype(int), axis=2).max() > 50  # the colour side keeps its colours
    with Image.open(out / "preview.png") as sheet:
        assert sheet.width > 4 * 2 * 100
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["method"] == "xdog" and meta["fit"] == "pad" and sum(meta["counts"].values()) == 22
    # Splits come from a stable hash of each name: the same every time.
    for p in pairs:
        rel = p.relative_to(out)
        assert rel.parts[0] == split_of_name(Path(*rel.parts[1:]).with_suffix("").as_posix(), {"val": 0.2, "test": 0.2})
    # The tall JPEG was padded on white to a square, not stretched.
    tall = next(out.rglob("tall.png"))
    with Image.open(tall) as pair:
        colour = np.asarray(pair.crop((64, 0, 128, 64)))
    assert colour[32, 2].tolist() == [255, 255, 255] and colour[32, 32].tolist() != [255, 255, 255]
    # And training runs on the result.
    r = CliRunner().invoke(
        main,
        [
            "--no-progress",
            "train",
            "--data",
            str(out),
            "--out",
            str(tmp_path / "run"),
            "--generator",
            "unet_64",
            "--ngf",
            "8",
            "--ndf",
            "8",
            "--load-size",
            "64",
            "--crop-size",
            "64",
            "--batch-size",
            "4",
            "--max-steps",
            "2",
        ],
    )
    assert r.exit_code == 0, r.output


def test_data_sketch_canny_and_bad_input(colour_folder: Path, tmp_path: Path) -> None:
    r = CliRunner().invoke(
        main,
        [
            "--no-progress",
            "data",
            "sketch",
            str(colour_folder / "art00.png"),
            "--out",
            str(tmp_path / "one"),
            "--method",
            "canny",
            "--size",
            "32",
            "--fit",
            "crop",
        ],
    )
    assert r.exit_code == 0, r.output
    assert len(list((tmp_path / "one").rglob("art00.png"))) == 1
    (tmp_path / "empty").mkdir()
    r = CliRunner().invoke(main, ["data", "sketch", str(tmp_path / "empty"), "--out", str(tmp_path / "o")])
    assert r.exit_code != 0 and "no images in" in r.output
    r = CliRunner().invoke(main, ["data", "sketch", str(colour_folder), "--out", str(tmp_path / "o"), "--tau", "1.5"])
    assert r.exit_code != 0 and "xdog tau must be in (0, 1], got 1.5" in r.output


def test_combine_pairs_by_relative_path_and_names_the_unmatched(tmp_path: Path) -> None:
    for sub, colour in (("A", (0, 0, 0)), ("B", (250, 0, 0))):
        (tmp_path / sub / "x").mkdir(parents=True)
        Image.new("RGB", (20, 10), colour).save(tmp_path / sub / "x" / "one.png")
        Image.new("RGB", (20, 10), colour).save(tmp_path / sub / "two.jpg")
    Image.new("RGB", (20, 10)).save(tmp_path / "A" / "lonely.png")
    r = CliRunner().invoke(
        main, ["data", "combine", str(tmp_path / "A"), str(tmp_path / "B"), "--out", str(tmp_path / "o")]
    )
    assert r.exit_code != 0 and "lonely.png" in r.output and "--allow-unmatched" in r.output
    assert not (tmp_path / "o").exists()
    r = CliRunner().invoke(
        main,
        [
            "--no-progress",
            "data",
            "combine",
            str(tmp_path / "A"),
            str(tmp_path / "B"),
            "--out",
            str(tmp_path / "o"),
            "--allow-unmatched",
        ],
    )
    assert r.exit_code == 0 and "combined 2 pairs" in r.output and "lonely.png" in r.output, r.output
    with Image.open(tmp_path / "o" / "x" / "one.png") as pair:
        assert pair.size == (40, 10) and pair.getpixel((0, 0)) == (0, 0, 0) and pair.getpixel((39, 0)) == (250, 0, 0)
    Image.new("RGB", (30, 10)).save(tmp_path / "B" / "lonely.png")
    r = CliRunner().invoke(
        main, ["data", "combine", str(tmp_path / "A"), str(tmp_path / "B"), "--out", str(tmp_path / "p")]
    )
    assert r.exit_code != 0 and "is 20x10 but" in r.output and "--size" in r.output
    r = CliRunner().invoke(
        main,
        [
            "--no-progress",
            "data",
            "combine",
            str(tmp_path / "A"),
            str(tmp_path / "B"),
            "--out",
            str(tmp_path / "p"),
            "--size",
            "16",
        ],
    )
    assert r.exit_code == 0 and "combined 3 pairs" in r.output
    # Then split, in place: every pair lands in a split by its name's hash, the same as sketch's.
    r = CliRunner().invoke(main, ["data", "split", str(tmp_path / "p"), "--val", "0.3", "--test", "0.3"])
    assert r.exit_code == 0, r.output
    files = sorted(p.relative_to(tmp_path / "p") for p in (tmp_path / "p").rglob("*.png"))
    assert len(files) == 3 and all(f.parts[0] in ("train", "val", "test") for f in files)
    assert not (tmp_path / "p" / "x").exists()  # emptied folders go
    r = CliRunner().invoke(main, ["data", "split", str(tmp_path / "p")])
    assert r.exit_code != 0 and "no images to split" in r.output


# --- EXIF orientation -----------------------------------------------------------------------


def exif_rotated(img: Image.Image, path: Path, orientation: int = 6) -> None:
    """Save `img` as a camera would: pixels stored sideways, with the tag that turns them upright."""
    stored = img.transpose(Image.Transpose.ROTATE_90)  # orientation 6 says: rotate 90 deg clockwise to view
    exif = Image.Exif()
    exif[0x0112] = orientation
    stored.save(path, exif=exif, quality=100, subsampling=0)


def test_exif_orientation_is_honoured_where_images_are_read(tmp_path: Path) -> None:
    upright = Image.new("RGB", (32, 48), (255, 255, 255))
    ImageDraw.Draw(upright).rectangle((0, 0, 31, 11), fill=(200, 0, 0))  # a red band at the top
    for sub in ("A", "B"):
        (tmp_path / "train" / sub).mkdir(parents=True)
    exif_rotated(upright, tmp_path / "train" / "A" / "photo.jpg")  # A straight from the camera
    upright.save(tmp_path / "train" / "B" / "photo.png")  # B exported upright, no tag
    img = load_image(tmp_path / "train" / "A" / "photo.jpg")
    assert img.size == (32, 48) and img.getpixel((16, 2))[0] > 150 and img.getpixel((16, 40))[1] > 200
    ds = PairedDataset(tmp_path, "train", mode="folders", load_size=16)
    a, b = ds[0]
    assert (a.float() - b.float()).abs().mean() < 10  # A and B line up
    # The service turns an uploaded camera JPEG upright too.
    pytest.importorskip("fastapi")
    from pix2pix.serve.app import ServeSettings, decode_upload

    served = decode_upload((tmp_path / "train" / "A" / "photo.jpg").read_bytes(), ServeSettings())
    assert served.size == (32, 48) and served.getpixel((16, 2))[0] > 150


def test_translate_reads_exif_upright(tmp_path: Path, tiny_data: Path) -> None:
    from pix2pix.inference import Pix2Pix, translate_paths

    run = tmp_path / "run"
    train(
        tiny_config(tiny_data, max_steps=1, val_every=0, sample_every=0, tensorboard=False, html=False),
        run,
        progress=False,
    )
    exif_rotated(Image.new("RGB", (32, 48), (255, 255, 255)), tmp_path / "camera.jpg")
    [out] = translate_paths(Pix2Pix.from_pretrained(run), [tmp_path / "camera.jpg"], tmp_path / "out").written
    with Image.open(out) as img:
        assert img.size == (32, 48)


# --- portable run folders -------------------------------------------------------------------


def test_a_copied_run_exports_translates_and_evaluates_from_elsewhere(
    tmp_path: Path, tiny_data: Path, monkeypatch
) -> None:
    pytest.importorskip("onnxruntime")
    # Train from a working folder with a relative dataset path, as a user does.
    work = tmp_path / "work"
    shutil.copytree(tiny_data, work / "data")
    monkeypatch.chdir(work)
    train(
        tiny_config("data", max_steps=2, val_every=2, select_by="ssim", sample_every=0, tensorboard=False, html=False),
        Path("run"),
        progress=False,
    )
    meta = json.loads((work / "run" / "checkpoints" / "last" / "meta.json").read_text())
    assert meta["data_root"]["as_given"] == "data" and meta["data_root"]["from_run"] == "../data"
    # Run and data copied together to another machine: found beside the run from any folder.
    moved = tmp_path / "elsewhere"
    shutil.copytree(work, moved)
    shutil.rmtree(work)
    other = tmp_path / "other"
    other.mkdir()
    monkeypatch.chdir(other)
    r = CliRunner().invoke(main, ["--no-progress", "evaluate", str(moved / "run"), "--out", "ev"])
    assert r.exit_code == 0, r.output
    # The run alone, without its data: export checks parity on drawings; translate works; evaluate takes --data.
    alone = tmp_path / "alone"
    shutil.copytree(moved / "run", alone)
    shutil.move(str(moved / "data"), tmp_path / "data-here")
    r = CliRunner().invoke(main, ["export", str(alone), "--out", "g.onnx"])
    assert r.exit_code == 0 and "drawings made here" in r.output, r.output
    r = CliRunner().invoke(main, ["export", str(alone / "checkpoints" / "best"), "--out", "best.onnx"])
    assert r.exit_code == 0, r.output  # a checkpoint folder works as a run folder
    Image.new("RGB", (32, 32), "white").save("sketch.png")
    for folder in (alone, alone / "checkpoints" / "best"):
        r = CliRunner().invoke(main, ["--no-progress", "translate", str(folder), "sketch.png", "--out", "t"])
        assert r.exit_code == 0, r.output
    r = CliRunner().invoke(
        main,
        [
            "--no-progress",
            "evaluate",
            str(alone / "checkpoints" / "best"),
            "--data",
            str(tmp_path / "data-here"),
            "--out",
            "ev2",
        ],
    )
    assert r.exit_code == 0 and json.loads(Path("ev2/metrics.json").read_text())["n_images"] > 0, r.output
    r = CliRunner().invoke(main, ["--no-progress", "evaluate", str(alone), "--out", "ev3"])
    assert r.exit_code != 0 and "dataset folder not found: data" in r.output


def test_the_public_api_is_reexported() -> None:
    import pix2pix

    for name in (
        "Pix2Pix",
        "Config",
        "train",
        "evaluate",
        "export_run",
        "create_app",
        "HintRecipe",
        "build_openmoji",
        "make_sketch_dataset",
        "download_dataset",
        "PairedDataset",
        "UnpairedDataset",
    ):
        assert name in pix2pix.__all__ and getattr(pix2pix, name) is not None
    from pix2pix import Pix2Pix
    from pix2pix.inference import Pix2Pix as Same

    assert Pix2Pix is Same
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        pix2pix.nothing  # noqa: B018


def test_solid_ink_stays_solid_and_colours_do_not_turn_to_ink() -> None:
    img = Image.new("RGB", (128, 128), "white")
    d = ImageDraw.Draw(img)
    d.rectangle((10, 10, 40, 118), fill=(10, 10, 10))  # a thick black stroke, 31 px wide
    d.rectangle((70, 10, 118, 118), fill=(0, 0, 255))  # saturated blue: dark in luminance, but a colour
    line = np.asarray(xdog(img).convert("L"), dtype=int)
    assert line[64, 25] < 40  # the stroke's middle is ink, not a hollow double outline
    assert line[64, 94] > 240  # the blue fill stays white inside: a region to colour
    assert line[64, 70] < 128  # with its outline
    hollow = np.asarray(xdog(img, ink=0).convert("L"), dtype=int)
    assert hollow[64, 25] > 240  # edges only: what the filter alone draws


def test_line_width_follows_the_picture_size() -> None:
    """The same picture at 128 and 512 px: its lines cover about the same share of the picture."""
    big = illustration(size=(512, 512), seed=3)
    shares = []
    for size in (128, 512):
        pic = big.resize((size, size), Image.LANCZOS)
        line = np.asarray(xdog(pic, scale=size / 256).convert("L"), dtype=float)
        shares.append(float((line < 128).mean()))
    assert 0.6 < shares[0] / shares[1] < 1.6, shares
    fixed = float((np.asarray(xdog(big).convert("L"), dtype=float) < 128).mean())  # sigma for 256 px at 512 px
    assert fixed < shares[1] * 0.8  # unscaled, lines at 512 px are thinner relative to the picture


def cloaked_figure(size: int = 128) -> Image.Image:
    """A painted figure's kind of picture: a large dark cloak (value 0.1, below xdog's ink) with a lighter
    shaded band inside it, a head, a fine dark speckled texture on its right half, on white."""
    rng = np.random.default_rng(0)
    img = Image.new("RGB", (size, size), "white")
    d = ImageDraw.Draw(img)
    s = size / 128
    d.polygon([(64 * s, 20 * s), (110 * s, 118 * s), (18 * s, 118 * s)], fill=(25, 20, 30))  # the cloak
    d.rectangle((50 * s, 80 * s, 60 * s, 110 * s), fill=(60, 50, 70))  # a fold, a little lighter
    d.ellipse((52 * s, 6 * s, 76 * s, 30 * s), fill=(230, 190, 160), outline=(20, 20, 20), width=max(1, round(s)))
    a = np.asarray(img).astype(int)
    cloak = a.max(2) < 40
    noise = rng.integers(-12, 13, a.shape[:2])
    right = np.zeros_like(cloak)
    right[:, int(70 * s) :] = True
    a[cloak & right] = np.clip(a[cloak & right] + noise[cloak & right, None], 0, 255)  # fine texture
    return Image.fromarray(a.astype(np.uint8))


def test_strokes_outline_a_dark_area_instead_of_filling_it() -> None:
    """Issue 40, item 1: `strokes` draws the cloak's outline and leaves its inside white (paper a hint can be
    put on and the fill can reach), where `xdog` with solid ink draws a silhouette; the speckle of the
    cloak's textured half does not come out as ink; the fold inside is outlined."""
    pic = cloaked_figure()
    line = np.asarray(strokes(pic, scale=0.5).convert("L"), dtype=int)
    ink = np.asarray(xdog(pic, scale=0.5).convert("L"), dtype=int)
    inside = (slice(95, 105), slice(35, 45))  # the cloak's plain inside, away from its edges and the fold
    textured = (slice(95, 110), slice(80, 95))
    assert ink[inside].max() < 60  # the silhouette today
    assert line[inside].min() > 230 and (line[textured] > 200).mean() > 0.9  # paper, plain and textured
    assert line[114:120, 30:100].min() < 80 and line[60, 35:50].min() < 80  # the outline: bottom, left side
    assert line[95, 45:50].min() < 200  # the fold's edge
    light = np.asarray(pic.convert("L"), dtype=int)
    assert (line < 128).mean() < 0.1 and (light < 128).mean() > 0.25  # a quarter of it dark, a tenth drawn


def test_strokes_keep_their_width_across_sizes_and_the_cli_records_them(tmp_path: Path) -> None:
    shares = []
    for size in (128, 256):
        line = np.asarray(strokes(cloaked_figure(size), scale=size / 256).convert("L"), dtype=float)
        shares.append(float((line < 128).mean()))
    assert 0.6 < shares[0] / shares[1] < 1.6, shares
    src = tmp_path / "src"
    src.mkdir()
    for i in range(3):
        cloaked_figure().save(src / f"c{i}.png")
    r = CliRunner().invoke(main, ["data", "sketch", str(src), "--out", str(tmp_path / "out"), "--method", "strokes"])
    assert r.exit_code == 0, r.output
    meta = json.loads((tmp_path / "out" / "dataset.json").read_text())
    assert meta["method"] == "strokes" and meta["ink"] == 0 and meta["strokes"]["sigma_at_size"] == 1.6
    r = CliRunner().invoke(
        main, ["data", "sketch", str(src), "--out", str(tmp_path / "bad"), "--method", "strokes", "--stroke-sigma", "0"]
    )
    assert r.exit_code != 0 and "strokes sigma must be > 0, got 0.0" in r.output


def test_an_unreadable_file_leaves_no_output_and_is_named(colour_folder: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(colour_folder, src)
    (src / "sub" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    out = tmp_path / "pairs"
    r = CliRunner().invoke(main, ["--no-progress", "data", "sketch", str(src), "--out", str(out), "--size", "32"])
    assert r.exit_code != 0
    assert str(src / "sub" / "broken.png") in r.output and "Traceback" not in r.output
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]  # no staging folder left behind


@pytest.mark.parametrize(
    ("size", "expect"),
    [
        (128, "--config own_art_128 --data D --out runs/mine"),
        (512, "--config own_art_128 --data D --out runs/mine"),
        (64, "--load-size 72 --crop-size 64"),
        (40, "--load-size 36 --crop-size 32 --generator unet_32"),
    ],
)
def test_the_printed_train_command_fits_the_size(size: int, expect: str) -> None:
    from pix2pix.cli import own_art_command
    from pix2pix.config import build_config, read_config_file

    cmd = own_art_command(Path("D"), size)
    assert expect in cmd
    # It builds a valid config: the crop fits the generator.
    args = cmd.split()
    overrides = {
        args[i][2:].replace("-", "_"): args[i + 1]
        for i in range(2, len(args), 2)
        if args[i] not in ("--config", "--data", "--out")
    }
    overrides = {k: int(v) if v.isdigit() else v for k, v in overrides.items()}
    build_config(read_config_file("own_art_128"), overrides)


def test_own_art_end_to_end_as_the_readme_shows_it(colour_folder: Path, tmp_path: Path, monkeypatch) -> None:
    """`data sketch` a folder, run the train command it prints (shortened), translate with a points file."""
    monkeypatch.chdir(tmp_path)  # a user's own folder, outside the checkout: the printed command works there
    monkeypatch.setattr(data_cli, "CHECKOUT", tmp_path / "checkout")  # whether or not `make demo` ran here
    data = tmp_path / "mine"
    r = CliRunner().invoke(
        main,
        [
            "--no-progress",
            "data",
            "sketch",
            str(colour_folder),
            "--out",
            str(data),
            "--size",
            "128",
            "--val",
            "0.2",
            "--test",
            "0.2",
        ],
    )
    assert r.exit_code == 0, r.output
    sketched = r.output
    # 22 pictures: a val and test split too small to judge, said with the counts (issue 42, item 2).
    assert "warning: val " in sketched and "judge a model by chance" in sketched and "(train " in sketched
    assert "about 7 minutes" in sketched  # the config file's own figure
    printed = next(line for line in r.output.splitlines() if line.startswith("train on it"))
    cmd = printed.split(": ", 1)[1].split()
    assert cmd[:2] == ["pix2pix", "train"]
    args = [str(tmp_path / "run") if a == "runs/mine" else a for a in cmd[2:]]
    short = [
        "--max-steps",
        "2",
        "--ngf",
        "8",
        "--ndf",
        "8",
        "--val-every",
        "0",
        "--sample-every",
        "0",
        "--select-by",
        "",
        "--amp",
        "off",
        "--batch-size",
        "4",
    ]
    r = CliRunner().invoke(main, ["--no-progress", "train", *args, *short], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["model"]["hints"] and saved["model"]["hint_regions"] == "open" and saved["data"]["crop_size"] == 128
    drawing = tmp_path / "drawing.png"
    with Image.open(next((data / "test").rglob("*.png"))) as pair:
        pair.crop((0, 0, 128, 128)).resize((200, 200)).save(drawing)  # a user's drawing at its own size
    (tmp_path / "dots.json").write_text(json.dumps([{"x": 100, "y": 100, "color": "#ff0000"}]))
    r = CliRunner().invoke(
        main,
        [
            "--no-progress",
            "translate",
            str(tmp_path / "run"),
            str(drawing),
            "--out",
            str(tmp_path / "out"),
            "--hints",
            str(tmp_path / "dots.json"),
        ],
    )
    assert r.exit_code == 0, r.output
    with Image.open(tmp_path / "out" / "drawing.png") as out:
        assert out.size == (200, 200)
    # The second command it prints starts from the main job's model (here: the run just trained).
    fine = next(line for line in sketched.splitlines() if line.startswith("or, better")).split(": ", 1)[1].split()
    assert fine[-4:] == ["--init-from", "demo/run", "--lr", "2e-4"]
    args = [{"runs/mine": str(tmp_path / "run2"), "demo/run": str(tmp_path / "run")}.get(a, a) for a in fine[2:]]
    r = CliRunner().invoke(main, ["--no-progress", "train", *args, *short], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    saved = json.loads((tmp_path / "run2" / "config.json").read_text())
    assert (
        saved["train"]["init_from"] == str(tmp_path / "run" / "checkpoints" / "last") and saved["train"]["lr"] == 2e-4
    )
    assert "make broad-base trains a base that does better still: --init-from demo/broad)" in sketched
    # After `make broad-base` (here: a run folder at demo/broad), the second command starts from it instead.
    shutil.copytree(tmp_path / "run", tmp_path / "checkout" / "demo" / "broad")
    r = CliRunner().invoke(main, ["--no-progress", "data", "sketch", str(colour_folder), "--out", str(tmp_path / "m2")])
    assert r.exit_code == 0, r.output
    fine = next(line for line in r.output.splitlines() if line.startswith("or, better")).split()
    assert "broader base" in r.output and "better still" not in r.output
    assert fine[-4:] == ["--init-from", str(tmp_path / "checkout" / "demo" / "broad"), "--lr", "2e-4"]


def test_hints_land_in_a_dark_area_of_strokes_line_art() -> None:
    """Issue 40, item 2: with `strokes` line art a dark cloak's inside is paper, so simulated hints are
    placed on it and carry its dark colour (with `xdog`'s silhouette almost none can be: it is line)."""
    import torch

    from pix2pix.hints import hint_worth, simulate_hints
    from pix2pix.images import from_uint8, pil_to_uint8

    pic = cloaked_figure()
    target = from_uint8(pil_to_uint8(pic))[None]
    cloak = torch.from_numpy(np.asarray(pic).max(2) < 80)
    for method, want in ((strokes, True), (xdog, False)):
        line = from_uint8(pil_to_uint8(method(pic, scale=0.5).convert("RGB")))[None]
        worth = hint_worth(line, target)[0]
        share = (worth & cloak).sum() / cloak.sum()
        assert (share > 0.8) if want else (share < 0.15), (method.__name__, float(share))
        if want:
            hints = simulate_hints(target, line, [7], count=20, worth=worth[None])
            mask = hints[0, 3] == 1
            assert (mask & cloak).sum() > 0.3 * mask.sum()  # the cloak is much of the drawn area
            dark = hints[0, :3][:, mask & cloak]
            assert dark.max() < -0.5  # the hints carry the cloak's own dark colour
