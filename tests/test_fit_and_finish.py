"""Issue 28, as a user meets it: the API takes paths and hints files, errors say exactly what is
wrong and what exists, `translate --skip-bad`, devices, the dataset catalogue and `data cityscapes`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image, ImageDraw
from safetensors.torch import load_file, save_file

from pix2pix.cli import main


def circle(path: Path, size: int = 64) -> Image.Image:
    img = Image.new("RGB", (size, size), "white")
    ImageDraw.Draw(img).ellipse((size * 0.2, size * 0.2, size * 0.8, size * 0.8), outline="black", width=3)
    img.save(path)
    return img


POINTS = [{"x": 32, "y": 32, "color": "#e53935", "size": 5}]


def test_the_api_takes_paths_and_a_points_file(hints_run: Path, tmp_path: Path) -> None:
    """`Pix2Pix.from_pretrained(run)("sketch.png", hints="dots.json")`, as the README shows it."""
    from pix2pix import Pix2Pix

    img = circle(tmp_path / "sketch.png")
    (tmp_path / "dots.json").write_text(json.dumps(POINTS))
    pipe = Pix2Pix.from_pretrained(hints_run)
    by_path = pipe(str(tmp_path / "sketch.png"), hints=str(tmp_path / "dots.json"))
    assert isinstance(by_path, Image.Image) and by_path.size == (64, 64)
    expected = np.asarray(pipe(img, hints=POINTS))
    assert np.array_equal(np.asarray(by_path), expected)
    assert np.array_equal(np.asarray(pipe(tmp_path / "sketch.png", hints=tmp_path / "dots.json")), expected)
    assert not np.array_equal(np.asarray(pipe(tmp_path / "sketch.png")), expected)  # the hints change it
    with pytest.raises(ValueError) as err:
        pipe(img, hints=42)
    assert str(err.value) == "hints: expected an RGBA image, a list of points, a hints file's path or a tensor, got int"
    with pytest.raises(ValueError) as err:
        pipe(3.5)
    assert (
        str(err.value) == "cannot translate a float: expected an image file's path, a PIL image, an array or a tensor"
    )


def test_the_default_checkpoint_is_best_where_the_run_kept_one(hints_run: Path, tmp_path: Path) -> None:
    from pix2pix import Pix2Pix

    run = tmp_path / "run"
    shutil.copytree(hints_run, run)
    best = run / "checkpoints" / "best"
    shutil.copytree(run / "checkpoints" / "last", best)
    for f in best.glob("generator*.safetensors"):  # a best checkpoint whose generator differs from last's
        weights = load_file(str(f))
        save_file({k: v * 0.5 if v.is_floating_point() else v for k, v in weights.items()}, str(f))
    img = circle(tmp_path / "s.png")
    auto = np.asarray(Pix2Pix.from_pretrained(run)(img))
    assert np.array_equal(auto, np.asarray(Pix2Pix.from_pretrained(run, checkpoint="best")(img)))
    assert not np.array_equal(auto, np.asarray(Pix2Pix.from_pretrained(run, checkpoint="last")(img)))
    shutil.rmtree(best)  # no best: auto is last
    assert np.array_equal(
        np.asarray(Pix2Pix.from_pretrained(run)(img)), np.asarray(Pix2Pix.from_pretrained(run, checkpoint="last")(img))
    )


def test_cli_errors_keep_their_quotes_and_name_what_exists(hints_run: Path, tmp_path: Path) -> None:
    circle(tmp_path / "s.png")
    base = ["--no-progress", "translate", str(hints_run), str(tmp_path / "s.png"), "--out", str(tmp_path / "o")]
    r = CliRunner().invoke(main, [*base, "--checkpoint", "bset"])
    assert (
        r.exit_code == 1
        and r.output.strip().splitlines()[-1] == f"Error: {hints_run}: no checkpoint 'bset'; it has: last"
    )
    r = CliRunner().invoke(main, [*base, "--device", "gpu"])
    assert r.output.strip().splitlines()[-1] == "Error: unknown device 'gpu'; valid: auto, cpu, cuda, mps (or cuda:N)"
    (tmp_path / "bad.json").write_text('[{"x": 3, "y": 4, "color": "red-ish"}]')
    r = CliRunner().invoke(main, [*base, "--hints", str(tmp_path / "bad.json")])
    assert r.exit_code == 1 and "color 'red-ish' is not a colour (use #rrggbb)" in r.output


def test_translate_skip_bad_goes_past_unreadable_files_and_lists_them(hints_run: Path, tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    circle(src / "a.png")
    circle(src / "c.png")
    (src / "b.png").write_bytes(b"this is not a png")
    args = ["--no-progress", "translate", str(hints_run), str(src), "--out", str(tmp_path / "out")]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 1 and r.output.strip().splitlines()[-1] == f"Error: {src / 'b.png'}: not a readable image"
    r = CliRunner().invoke(main, [*args, "--skip-bad"])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "c.png"]
    assert r.output.splitlines() == [
        f"translated 2 image(s) into {tmp_path / 'out'}",
        "skipped 1 file(s) that could not be read:",
        f"  {src / 'b.png'}: {src / 'b.png'}: not a readable image",
    ]


def test_device_auto_takes_cuda_then_mps_then_cpu(monkeypatch) -> None:
    import pix2pix.devices as devices

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert devices.resolve_device("auto") == torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(devices, "mps_available", lambda: True)
    assert devices.resolve_device("auto") == torch.device("mps")
    monkeypatch.setattr(devices, "mps_available", lambda: False)
    assert devices.resolve_device("auto") == torch.device("cpu")
    assert devices.resolve_device(torch.device("cpu")) == torch.device("cpu")
    with pytest.raises(ValueError) as err:
        devices.resolve_device("mps")
    assert str(err.value).startswith("device 'mps': Apple's Metal (MPS) is not available here")


def test_a_device_this_torch_cannot_use_is_one_line_with_the_fix(hints_run: Path, tmp_path: Path, monkeypatch) -> None:
    import pix2pix.devices as devices

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.version, "cuda", None)  # a CPU-only build, as the Makefile's pin installs
    expected = (
        f"device 'cuda': this PyTorch ({torch.__version__}) is a CPU-only build; to use a GPU, install a CUDA build "
        "of torch (in this checkout: `rm -rf .venv && make TORCH=torch install`; elsewhere on Linux: `pip uninstall -y "
        "torch && pip install torch`, or the command PyTorch's install page gives for your CUDA version), or use "
        "--device cpu"
    )
    with pytest.raises(ValueError) as err:
        devices.resolve_device("cuda")
    assert str(err.value) == expected
    circle(tmp_path / "s.png")
    r = CliRunner().invoke(
        main,
        [
            "--no-progress",
            "translate",
            str(hints_run),
            str(tmp_path / "s.png"),
            "--out",
            str(tmp_path / "o"),
            "--device",
            "cuda",
        ],
    )
    assert r.exit_code == 1 and r.output.strip().splitlines() == [f"Error: {expected}"]
    monkeypatch.setattr(torch.version, "cuda", "12.8")  # a CUDA build on a machine without a usable GPU
    with pytest.raises(ValueError, match=r"sees no GPU; check the NVIDIA driver \(nvidia-smi\)"):
        devices.resolve_device("cuda:0")


def test_the_catalogue_lists_the_mini_sets_counts_and_the_reference_names() -> None:
    from pix2pix.data.download import CATALOGUE, entry_for

    r = CliRunner().invoke(main, ["data", "download", "--list"])
    assert r.exit_code == 0
    for name in ("mini", "mini_pix2pix", "mini_colorization"):
        assert f"\n{name} " in r.output
    # One line a set (issue 42), then how to see one set's details.
    assert len(r.output.splitlines()) == len(CATALOGUE) + 2 and "--list NAME" in r.output
    assert all(len(line) < 160 for line in r.output.splitlines())

    def details(name: str) -> str:
        r = CliRunner().invoke(main, ["data", "download", "--list", name])
        assert r.exit_code == 0, r.output
        return r.output

    assert "train 400, val 100, test 106" in details("facades")  # per split
    assert "trainA 1,067, trainB 1,334, testA 120, testB 140" in details("horse2zebra")
    assert "datasets/download_pix2pix_dataset.sh facades" in details("facades")
    assert "datasets/download_cyclegan_dataset.sh maps" in details("maps_unpaired")
    # The reference's CycleGAN `maps` and `facades` are the unpaired archives: found by those names too.
    assert entry_for("cyclegan/maps").name == "maps_unpaired" and entry_for("cyclegan/maps").kind == "unpaired"
    assert entry_for("pix2pix/maps") is CATALOGUE["maps"] and CATALOGUE["maps"].kind == "paired"
    assert CATALOGUE["mini_colorization"].dataset_mode == "none (not pairs)"
    assert "pix2pix data cityscapes" in CATALOGUE["cityscapes"].pointer
    with pytest.raises(ValueError, match=r"unknown dataset 'facade'; valid: facades, "):
        entry_for("facade")


def cityscapes_tree(root: Path) -> tuple[Path, Path]:
    """leftImg8bit/ and gtFine/ as the two Cityscapes archives unzip, with three cities' worth of tiny images."""
    rng = np.random.default_rng(0)
    palette = np.array([[128, 64, 128], [70, 70, 70], [107, 142, 35]], dtype=np.uint8)
    for split, city, names in (
        ("train", "aachen", ["aachen_000000_000019", "aachen_000001_000019"]),
        ("train", "bochum", ["bochum_000000_000313"]),
        ("val", "lindau", ["lindau_000000_000019"]),
    ):
        for name in names:
            photo = root / "leftImg8bit" / split / city / f"{name}_leftImg8bit.png"
            labels = root / "gtFine" / split / city
            photo.parent.mkdir(parents=True, exist_ok=True)
            labels.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (48, 96, 3), dtype=np.uint8)).save(photo)
            Image.fromarray(palette[rng.integers(0, 3, (48, 96))]).save(labels / f"{name}_gtFine_color.png")
            Image.fromarray(rng.integers(0, 30, (48, 96), dtype=np.uint8)).save(labels / f"{name}_gtFine_labelIds.png")
    return root / "leftImg8bit", root / "gtFine"


def test_data_cityscapes_pairs_photos_with_label_colours_by_name(tmp_path: Path) -> None:
    photos, labels = cityscapes_tree(tmp_path / "raw")
    out = tmp_path / "cityscapes"
    r = CliRunner().invoke(
        main,
        [
            "--no-progress",
            "data",
            "cityscapes",
            "--left-img8bit",
            str(photos),
            "--gt-fine",
            str(labels),
            "--out",
            str(out),
            "--size",
            "32",
        ],
    )
    assert r.exit_code == 0, r.output
    assert r.output.splitlines()[0] == f"Cityscapes 32px -> {out}: train 3, val 1 pairs (A photo | B labels)"
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == [
        "train/aachen_000000_000019.png",
        "train/aachen_000001_000019.png",
        "train/bochum_000000_000313.png",
        "val/lindau_000000_000019.png",
    ]
    name = "aachen_000001_000019"
    pair = np.asarray(Image.open(out / "train" / f"{name}.png"))
    assert pair.shape == (32, 64, 3)
    photo = Image.open(photos / "train" / "aachen" / f"{name}_leftImg8bit.png").resize((32, 32), Image.BICUBIC)
    label = Image.open(labels / "train" / "aachen" / f"{name}_gtFine_color.png").resize((32, 32), Image.NEAREST)
    assert np.array_equal(pair[:, :32], np.asarray(photo)) and np.array_equal(pair[:, 32:], np.asarray(label))
    palette = {(128, 64, 128), (70, 70, 70), (107, 142, 35)}
    assert {tuple(c) for c in pair[:, 32:].reshape(-1, 3)} <= palette  # nearest: label colours stay the palette's
    # A photo without its label file is an error naming it, and writes nothing.
    (labels / "val" / "lindau" / "lindau_000000_000019_gtFine_color.png").unlink()
    r = CliRunner().invoke(
        main,
        [
            "--no-progress",
            "data",
            "cityscapes",
            "--left-img8bit",
            str(photos),
            "--gt-fine",
            str(labels),
            "--out",
            str(tmp_path / "again"),
        ],
    )
    lonely = photos / "val" / "lindau" / "lindau_000000_000019_leftImg8bit.png"
    assert r.exit_code == 1 and f"Error: no partner for {lonely} (a photo NAME_leftImg8bit.png pairs with" in r.output
    assert not (tmp_path / "again").exists() or not any((tmp_path / "again").iterdir())
