"""Shared fixtures: a handful of real OpenMoji SVGs rendered small, and a tiny model config."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from pix2pix.config import Config, apply_overrides
from pix2pix.data.datasets.openmoji import base_key, build_openmoji, openmoji_svg_dir, split_of

torch.set_num_threads(2)

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
    }
    base.update(overrides)
    return apply_overrides(Config(), base)


@pytest.fixture
def tiny_cfg(tiny_data: Path) -> Config:
    return tiny_config(tiny_data)


def assert_adam_close(a: dict, b: dict, *, lr: float) -> None:
    """Two runs' weights agree as far as Adam lets float noise agree.

    Adam divides each gradient by its running RMS, so on an element whose gradient is near zero,
    float-order noise between two equal computations (another kernel, another batch split) moves
    that weight by up to lr per step. Single elements may differ by a fraction of lr; the bulk must
    agree to float precision, while a real difference (other data, other update) moves most
    elements by ~lr.
    """
    assert a.keys() == b.keys()
    for k in a:
        diff = (a[k].float() - b[k].float()).abs()
        assert diff.max() <= 0.2 * lr and diff.mean() <= lr / 1000, (k, diff.max().item(), diff.mean().item())
