"""Watching a run: JSONL, TensorBoard, the live page, validation, best checkpoint, plots."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from pix2pix.cli import main
from pix2pix.training.logging import read_jsonl
from pix2pix.training.loop import train

from .conftest import tiny_config


@pytest.fixture(scope="module")
def watched_run(tmp_path_factory: pytest.TempPathFactory, tiny_data: Path) -> Path:
    run = tmp_path_factory.mktemp("watched") / "run"
    cfg = tiny_config(
        tiny_data, max_steps=6, val_every=2, sample_every=3, n_samples=2, select_by="ssim", ema_decay=0.9, lr=1e-3
    )
    train(cfg, run, progress=False)
    return run


def test_jsonl_has_losses_and_validation(watched_run: Path) -> None:
    records = read_jsonl(watched_run / "log.jsonl")
    val = [r for r in records if "val_ssim" in r]
    assert [r["step"] for r in val] == [2, 4, 6]
    assert all(0 < r["val_ssim"] <= 1 and r["val_l1"] > 0 and r["val_psnr"] > 0 for r in val)
    losses = [r for r in records if "G_L1" in r]
    assert {"G_GAN", "G_L1", "D_real", "D_fake", "lr", "img_per_s"} <= set(losses[-1])


def test_tensorboard_events_hold_scalars_and_images(watched_run: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(watched_run / "tensorboard"))
    acc.Reload()
    tags = acc.Tags()
    assert {"loss/G_GAN", "loss/G_L1", "loss/D_real", "loss/D_fake", "perf/lr", "perf/img_per_s", "val/ssim"} <= set(
        tags["scalars"]
    )
    assert "val_samples" in tags["images"]
    assert [e.step for e in acc.Scalars("val/ssim")] == [2, 4, 6]
    img = acc.Images("val_samples")[-1]
    assert (img.width, img.height) == (3 * 32, 2 * 32)  # input | output | target, 2 rows


def test_live_page_shows_samples_scalars_and_curves(watched_run: Path) -> None:
    live = watched_run / "live"
    page = (live / "index.html").read_text()
    assert 'http-equiv="refresh"' in page and ">6<" in page
    assert 'src="samples.png"' in page and 'src="losses.png"' in page and "val_ssim" in page
    with Image.open(live / "samples.png") as img:
        assert img.size == (96, 64)
    with Image.open(live / "losses.png") as img:
        assert img.width > 300
    assert sorted(p.name for p in live.glob("samples_*.png")) == ["samples_00000003.png", "samples_00000006.png"]


def test_best_checkpoint_is_the_best_validation(watched_run: Path) -> None:
    meta = json.loads((watched_run / "checkpoints" / "best" / "meta.json").read_text())
    val = [r for r in read_jsonl(watched_run / "log.jsonl") if "val_ssim" in r]
    best = max(val, key=lambda r: r["val_ssim"])
    assert meta["select_by"] == "ssim" and meta["step"] == best["step"]
    assert meta["value"] == pytest.approx(best["val_ssim"], abs=1e-5)
    assert (watched_run / "checkpoints" / "best" / "generator_ema.safetensors").is_file()


def test_plot_command(watched_run: Path, tmp_path: Path) -> None:
    r = CliRunner().invoke(main, ["plot", str(watched_run), "--out", str(tmp_path / "curves.png")])
    assert r.exit_code == 0, r.output
    with Image.open(tmp_path / "curves.png") as img:
        assert img.format == "PNG" and img.height > 300
    r = CliRunner().invoke(main, ["plot", str(tmp_path)])
    assert r.exit_code != 0 and "no log.jsonl" in r.output


def test_plot_a_run_in_progress_with_a_half_written_line(tmp_path: Path) -> None:
    (tmp_path / "log.jsonl").write_text('{"step": 1, "G_L1": 0.5}\n{"step": 2, "G_L1": 0.4}\n{"step": 3, "G_')
    assert [r["step"] for r in read_jsonl(tmp_path / "log.jsonl")] == [1, 2]
    r = CliRunner().invoke(main, ["plot", str(tmp_path)])
    assert r.exit_code == 0 and (tmp_path / "losses.png").is_file()


def test_evaluate_best_checkpoint_and_compare(watched_run: Path, tmp_path: Path, tiny_data: Path) -> None:
    other = tmp_path / "other"
    train(
        tiny_config(tiny_data, max_steps=2, val_every=0, sample_every=0, tensorboard=False, html=False),
        other,
        progress=False,
    )
    out = tmp_path / "cmp"
    r = CliRunner().invoke(
        main,
        [
            "--no-progress",
            "evaluate",
            str(watched_run),
            "--checkpoint",
            "best",
            "--compare",
            str(other),
            "--out",
            str(out),
        ],
    )
    assert r.exit_code == 0, r.output
    assert "run B (other)" in r.output
    a, b = json.loads((out / "metrics.json").read_text()), json.loads((out / "metrics_b.json").read_text())
    assert a["checkpoint"] == "best" and [x["name"] for x in a["per_image"]] == [x["name"] for x in b["per_image"]]
    page = (out / "index.html").read_text()
    assert page.count("outputs_b/") == a["n_images"] and 'data-entry="model_b"' in page
