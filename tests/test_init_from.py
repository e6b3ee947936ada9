"""`train --init-from RUN`: a new run that starts from a trained run's weights (issue 27)."""

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

from pix2pix.cli import main
from pix2pix.training.loop import train

from .conftest import tiny_config


def params(folder: Path, name: str = "generator") -> dict[str, torch.Tensor]:
    """A network's parameters (not BatchNorm's running statistics, which training moves at any lr)."""
    state = load_file(str(folder / f"{name}.safetensors"))
    return {k: v for k, v in state.items() if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))}


def max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)


@pytest.fixture(scope="module")
def source_run(tmp_path_factory: pytest.TempPathFactory, tiny_data: Path) -> Path:
    run = tmp_path_factory.mktemp("source") / "run"
    train(tiny_config(tiny_data, lr=5e-3, max_steps=8, val_every=0), run, progress=False)
    return run


def test_a_new_run_starts_from_the_source_weights_and_records_it(
    tmp_path: Path, tiny_data: Path, source_run: Path
) -> None:
    # One step at a learning rate so small that Adam moves no weight by more than 1e-9: the new run's
    # weights are the source's, not a fresh initialisation (which differs from them by far more).
    cfg = tiny_config(tiny_data, lr=1e-9, max_steps=1, val_every=0, seed=3, init_from=str(source_run))
    train(cfg, tmp_path / "tuned", progress=False)
    tuned = tmp_path / "tuned" / "checkpoints" / "last"
    src = source_run / "checkpoints" / "last"
    for name in ("generator", "discriminator"):
        assert max_diff(params(tuned, name), params(src, name)) < 1e-6, name
    train(tiny_config(tiny_data, lr=1e-9, max_steps=1, val_every=0, seed=3), tmp_path / "fresh", progress=False)
    assert max_diff(params(tmp_path / "fresh" / "checkpoints" / "last"), params(src)) > 1e-2
    # The run records where it started: the checkpoint folder itself (no `best` here, so `last`).
    saved = json.loads((tmp_path / "tuned" / "config.json").read_text())
    assert saved["train"]["init_from"] == str(src)
    # Fresh optimizer and schedule: the new run counts its own steps.
    state = torch.load(tuned / "training_state.pt", weights_only=True)
    assert state["step"] == 1


def test_a_different_generator_is_one_line_naming_both(tmp_path: Path, tiny_data: Path, source_run: Path) -> None:
    result = CliRunner().invoke(
        main,
        [
            "--no-progress",
            "train",
            "--data",
            str(tiny_data),
            "--out",
            str(tmp_path / "r"),
            "--generator",
            "unet_32",
            "--ngf",
            "16",
            "--ndf",
            "8",
            "--load-size",
            "36",
            "--crop-size",
            "32",
            "--max-steps",
            "1",
            "--init-from",
            str(source_run),
        ],
    )
    assert result.exit_code != 0
    last = result.output.strip().splitlines()
    assert len(last) == 1, result.output
    assert last[0] == (
        f"Error: cannot start from {source_run / 'checkpoints' / 'last'}: its generator is pix2pix unet_32 (ngf 8, "
        "batch "
        "norm, 3->3), this run's is pix2pix unet_32 (ngf 16, batch norm, 3->3) (they differ in ngf)"
    )
    assert not (tmp_path / "r").exists()  # nothing written before the check


def test_cli_init_from_a_named_checkpoint(tmp_path: Path, tiny_data: Path, source_run: Path) -> None:
    args = [
        "--no-progress",
        "train",
        "--data",
        str(tiny_data),
        "--out",
        str(tmp_path / "r"),
        "--generator",
        "unet_32",
        "--ngf",
        "8",
        "--ndf",
        "16",
        "--load-size",
        "36",
        "--crop-size",
        "32",
        "--batch-size",
        "4",
        "--max-steps",
        "2",
        "--amp",
        "off",
        "--val-every",
        "0",
        "--init-from",
        str(source_run),
    ]
    result = CliRunner().invoke(main, [*args, "--checkpoint", "bset"])
    assert result.exit_code != 0
    assert f"Error: {source_run}: no checkpoint 'bset'; it has: last" in result.output
    result = CliRunner().invoke(main, [*args, "--checkpoint", "last"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    # A discriminator of another width starts fresh; the generator still comes from the source.
    tuned = tmp_path / "r" / "checkpoints" / "last"
    assert json.loads((tmp_path / "r" / "config.json").read_text())["train"]["init_from"].endswith("last")
    assert params(tuned, "discriminator")["model.0.weight"].shape[0] == 16
