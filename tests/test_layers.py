"""The import contract (pyproject.toml) holds, and it would catch an import that goes up a layer."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")

pytestmark = pytest.mark.skipif(not LINT.is_file(), reason="import-linter is not installed")


def lint(tmp_path: Path, edits: dict[str, str]) -> subprocess.CompletedProcess:
    """lint-imports on a copy of the package with `edits` (module path -> a line appended to it)."""
    src = tmp_path / "src"
    shutil.copytree(ROOT / "src" / "pix2pix", src / "pix2pix", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    for module, line in edits.items():
        path = src / module
        path.write_text(path.read_text() + f"\n{line}\n")
    env = {**os.environ, "PYTHONPATH": str(src)}
    return subprocess.run([str(LINT), "--no-cache"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


def test_the_package_keeps_its_layers(tmp_path: Path) -> None:
    result = lint(tmp_path, {})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


def test_an_upward_import_and_a_run_reader_importing_training_are_caught(tmp_path: Path) -> None:
    result = lint(
        tmp_path,
        {
            "pix2pix/models/layers.py": "from ..config import Config  # noqa",  # models sit below config
            "pix2pix/inference.py": "from .training import loop  # noqa",  # reading a run never trains
        },
    )
    assert result.returncode != 0
    out = result.stdout
    assert "pix2pix imports only go down BROKEN" in out and "reading a run never imports training BROKEN" in out
    assert "pix2pix.models.layers -> pix2pix.config" in out
    assert "pix2pix.inference -> pix2pix.training.loop" in out
