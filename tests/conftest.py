"""Shared fixtures: a handful of real OpenMoji SVGs rendered small, and a tiny model config."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from pix2pix.config import Config, apply_overrides
from pix2pix.data.datasets.openmoji import base_key, build_openmoji, openmoji_svg_dir, split_of

torch.set_num_threads(2)


@pytest.fixture(scope="session", autouse=True)
def kernel_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """CPU kernel choices (training/cpu.py) cached per test session, never in the user's cache."""
    import os

    folder = tmp_path_factory.mktemp("cache")
    os.environ["PIX2PIX_CACHE_DIR"] = str(folder)  # torchrun subprocesses inherit it
    return folder


# Per split, how many real OpenMoji SVGs the tiny dataset takes (chosen by the builder's own hash).
TINY_COUNTS = {"train": 12, "val": 3, "test": 4}
TINY_SIZE = 32


def pick_svgs(counts: dict[str, int], with_variant: bool = True) -> list[Path]:
    """Real SVGs covering every split; one base emoji comes with a skin-tone variant."""
    chosen: list[Path] = []
    left = dict(counts)
    for path in sorted(openmoji_svg_dir().glob("*.svg")):
        stem = path.stem
        if base_key(stem) != stem.upper():
            continue
        split = split_of(stem)
        if left[split] > 0 and len(stem) >= 5:
            chosen.append(path)
            left[split] -= 1
        if not any(left.values()):
            break
    if with_variant:
        chosen += [openmoji_svg_dir() / "1F44D.svg", openmoji_svg_dir() / "1F44D-1F3FD.svg"]
    return chosen


@pytest.fixture(scope="session")
def svg_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("svgs")
    for p in pick_svgs(TINY_COUNTS):
        shutil.copy(p, folder / p.name)
    return folder


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory, svg_dir: Path) -> Path:
    """An aligned OpenMoji dataset of ~20 pairs at 32 px, built by the real builder."""
    out = tmp_path_factory.mktemp("openmoji")
    build_openmoji(out, size=TINY_SIZE, svg_dir=svg_dir, workers=1, progress=False)
    return out


def tiny_config(root: Path | str, **overrides: object) -> Config:
    base = {
        "root": str(root),
        "generator": "unet_32",
        "ngf": 8,
        "ndf": 8,
        "load_size": 36,
        "crop_size": 32,
        "batch_size": 4,
        "max_steps": 6,
        "n_epochs": 1,
        "n_epochs_decay": 1,
        "log_every": 2,
        "save_every": 100,
        # Tests compare runs weight for weight: float32, not `amp auto`'s timed choice of bf16 on CPUs
        # with native bf16 (tests/test_fast_paths.py covers that choice and its resume).
        "amp": "off",
    }
    base.update(overrides)
    return apply_overrides(Config(), base)


@pytest.fixture
def tiny_cfg(tiny_data: Path) -> Config:
    return tiny_config(tiny_data)


def assert_adam_close(a: dict, b: dict, *, lr: float) -> None:
    """Two runs' weights agree as far as Adam lets float noise agree.

    Adam divides each gradient by its running RMS, so on an element whose gradient is near zero,
    float-order noise between two equal computations (another kernel, another batch split) can flip
    the sign of that element's update and move it by up to 2 lr per step. So the largest difference
    says nothing; what must hold is that such elements are rare (at most 0.1% of all elements differ
    by more than lr/100) and each tensor agrees on average to float precision. A real difference
    (other data, another update) moves most elements by ~lr and fails both.
    """
    assert a.keys() == b.keys()
    far, total = 0, 0
    for k in a:
        diff = (a[k].float() - b[k].float()).abs()
        assert diff.mean() <= lr / 1000, (k, diff.max().item(), diff.mean().item())
        far += int((diff > lr / 100).sum())
        total += diff.numel()
    assert far <= 1e-3 * total, f"{far} of {total} elements differ by more than lr/100"


def make_shapes(root: Path, n_train: int, *, size: int = 32, seed: int = 0) -> Path:
    """Aligned pairs of one outlined ellipse or rectangle: line art | the same shape filled with a
    random colour. The colour cannot be guessed from the outline, so a hints model must learn to
    take it from its hints: a fast, honest check that hints steer the output."""
    import numpy as np
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    for split, count in (("train", n_train), ("val", 4), ("test", 4)):
        (root / split).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            colour = tuple(int(c) for c in rng.integers(0, 256, 3))
            x0, y0 = (int(v) for v in rng.integers(1, size // 3, 2))
            x1, y1 = (int(v) for v in rng.integers(2 * size // 3, size - 1, 2))
            shape = "ellipse" if rng.random() < 0.5 else "rectangle"
            line, full = Image.new("RGB", (size, size), "white"), Image.new("RGB", (size, size), "white")
            for img, fill in ((line, None), (full, colour)):
                getattr(ImageDraw.Draw(img), shape)((x0, y0, x1, y1), outline="black", width=2, fill=fill)
            pair = Image.new("RGB", (2 * size, size))
            pair.paste(line, (0, 0))
            pair.paste(full, (size, 0))
            pair.save(root / split / f"{i:03d}.png")
    return root


@pytest.fixture(scope="session")
def shapes_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_shapes(tmp_path_factory.mktemp("shapes"), 64)


@pytest.fixture(scope="session")
def hints_run(tmp_path_factory: pytest.TempPathFactory, shapes_data: Path) -> Path:
    """A tiny hints model trained until it paints a region in the colour of a hint dropped in it
    (600 steps, about 15 s on 2 CPU cores; 300 were enough for some seeds, not all)."""
    from pix2pix.training.loop import train

    run = tmp_path_factory.mktemp("hints") / "run"
    cfg = tiny_config(
        shapes_data,
        hints=True,
        max_steps=600,
        lr=2e-3,
        load_size=32,
        dropout=False,
        val_every=0,
        sample_every=0,
        tensorboard=False,
        html=False,
        log_every=50,
    )
    train(cfg, run, progress=False)
    return run
