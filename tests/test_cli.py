"""The CLI end to end: data -> a few training steps -> translate -> evaluate, and user errors."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from pix2pix.cli import main


def run(*args: str) -> "object":
    return CliRunner().invoke(main, ["--no-progress", *args], catch_exceptions=False)


def test_end_to_end_data_train_translate_evaluate(tmp_path: Path, svg_dir: Path) -> None:
    data, run_dir = tmp_path / "data", tmp_path / "run"
    r = run("data", "openmoji", "--out", str(data), "--size", "32", "--svg-dir", str(svg_dir), "--workers", "1")
    assert r.exit_code == 0, r.output
    counts = json.loads((data / "dataset.json").read_text())["counts"]
    assert f"train {counts['train']}, val {counts['val']}, test {counts['test']}" in r.output
    assert "skipped 1 with blank line art (1F193)" in r.output  # a real OpenMoji emoji with no line art
    n_test = counts["test"]

    cfg = tmp_path / "tiny.yaml"
    cfg.write_text("model: {generator: unet_32, ngf: 8, ndf: 8}\ndata: {load_size: 32, crop_size: 32}\n")
    r = run(
        "train",
        "--config",
        str(cfg),
        "--data",
        str(data),
        "--out",
        str(run_dir),
        "--batch-size",
        "4",
        "--max-steps",
        "5",
        "--log-every",
        "1",
        "--lr",
        "1e-3",
        "--seed",
        "7",
    )
    assert r.exit_code == 0, r.output
    assert "step 5/5" in r.output
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["train"]["seed"] == 7 and saved["model"]["ngf"] == 8 and saved["train"]["batch_size"] == 4

    r = run("evaluate", str(run_dir), "--out", str(tmp_path / "report"))
    assert r.exit_code == 0, r.output
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert metrics["n_images"] == n_test and len(metrics["per_image"]) == n_test
    assert set(metrics["mean"]) == {"model", "copy_input", "untrained"}
    assert "copy input (baseline)" in r.output
    page = (tmp_path / "report" / "index.html").read_text()
    assert page.count("<img") == 3 * n_test and 'id="metrics"' in page
    for sub in ("inputs", "outputs", "targets"):
        assert len(list((tmp_path / "report" / sub).glob("*.png"))) == n_test

    r = run("translate", str(run_dir), str(tmp_path / "report" / "inputs"), "--out", str(tmp_path / "colour"))
    assert r.exit_code == 0, r.output
    outs = sorted((tmp_path / "colour").glob("*.png"))
    assert len(outs) == n_test
    with Image.open(outs[0]) as img:
        assert img.size == (32, 32)

    # Resuming a finished run from its folder alone is a no-op that still succeeds.
    r = run("train", "--resume", str(run_dir))
    assert r.exit_code == 0 and "step 5/5" in r.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--data", "{tmp}/nothing", "--out", "{tmp}/r"], "dataset folder not found"),
        (["train", "--data", "{tmp}", "--out", "{tmp}/r", "--generator", "unet_7"], "unknown generator 'unet_7'"),
        (["train", "--data", "{tmp}", "--out", "{tmp}/r", "--crop-size", "100"], "crop_size 100 does not fit"),
        (["translate", "{tmp}/no-run", "{tmp}/x.png", "--out", "{tmp}/o"], "run folder not found"),
        (["evaluate", "{tmp}"], "no checkpoint 'last'"),
        (["train", "--config", "{tmp}/missing.yaml", "--out", "{tmp}/r"], "config file not found"),
    ],
)
def test_user_errors_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, [a.format(tmp=tmp_path) for a in args])
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output
    assert result.output.strip().splitlines()[-1].startswith("Error:")


def test_module_entry_point_and_a_bad_image_without_traceback(tmp_path: Path) -> None:
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "zero.png").write_bytes(b"")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pix2pix",
            "--no-progress",
            "train",
            "--data",
            str(tmp_path),
            "--out",
            str(tmp_path / "r"),
            "--generator",
            "unet_32",
            "--crop-size",
            "32",
            "--load-size",
            "32",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == f"Error: {tmp_path / 'train' / 'zero.png'}: empty file (0 bytes)"
    assert not (tmp_path / "r" / "checkpoints").exists()
