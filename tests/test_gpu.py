"""The CUDA paths on a real GPU: AMP, channels_last, torch.compile, fp16 loss scaling, the CLI end to
end, and NCCL. Left out of the default run (marker `gpu`); run them with `pytest -m gpu` where
torch sees a CUDA device."""

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from safetensors.torch import load_file

from pix2pix.cli import main
from pix2pix.inference import Pix2Pix
from pix2pix.precision import resolve_precision
from pix2pix.training.loop import resume, train

from .conftest import assert_adam_close, tiny_config

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

# Runs compared weight for weight: no dropout (its masks come from the device's RNG) and no logs.
COMPARED = dict(dropout=False, max_steps=3, lr=1e-3, val_every=0, sample_every=0, tensorboard=False, html=False)


@pytest.fixture
def strict_fp32() -> Iterator[None]:
    """cuDNN convolutions in IEEE float32, not TF32 (PyTorch's default for convolutions), so a GPU
    run can be held against a CPU one at float precision. Newer torch sets this per backend
    (`cudnn.conv.fp32_precision`); older torch through `cudnn.allow_tf32`."""
    conv = getattr(torch.backends.cudnn, "conv", None)
    if conv is not None and hasattr(conv, "fp32_precision"):
        before = conv.fp32_precision
        conv.fp32_precision = "ieee"
        try:
            yield
        finally:
            conv.fp32_precision = before
        return
    before_flag = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32 = before_flag


def weights(run: Path, name: str = "generator") -> dict[str, torch.Tensor]:
    return load_file(str(run / "checkpoints" / "last" / f"{name}.safetensors"))


def test_cuda_auto_precision_is_bf16_channels_last_and_trains(tmp_path: Path, tiny_data: Path) -> None:
    precision = resolve_precision("auto", "auto", torch.device("cuda"))
    assert precision.dtype == torch.bfloat16 and precision.channels_last
    run = tmp_path / "run"
    train(tiny_config(tiny_data, device="cuda", amp="auto", max_steps=3), run, progress=False)
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert all(np.isfinite(row["G_L1"]) for row in log if "G_L1" in row)
    pipe = Pix2Pix.from_pretrained(run, device="cuda")
    out = pipe(torch.zeros(1, 3, 32, 32, device="cuda"))
    assert out.device.type == "cuda" and torch.isfinite(out).all()


def test_cuda_float32_training_matches_the_cpu(tmp_path: Path, tiny_data: Path, strict_fp32: None) -> None:
    """The same seed, data and steps on the GPU (float32, NCHW) and the CPU end at the same weights."""
    for device in ("cpu", "cuda"):
        train(
            tiny_config(tiny_data, device=device, amp="off", channels_last="off", **COMPARED),
            tmp_path / device,
            progress=False,
        )
    for name in ("generator", "discriminator"):
        assert_adam_close(weights(tmp_path / "cpu", name), weights(tmp_path / "cuda", name), lr=COMPARED["lr"])


def test_cuda_compile_and_channels_last_train_like_eager(tmp_path: Path, tiny_data: Path, strict_fp32: None) -> None:
    base = tiny_config(tiny_data, device="cuda", amp="off", channels_last="off", **COMPARED)
    train(base, tmp_path / "eager", progress=False)
    fast = tiny_config(tiny_data, device="cuda", amp="off", channels_last="on", compile=True, **COMPARED)
    train(fast, tmp_path / "fast", progress=False)
    for name in ("generator", "discriminator"):
        assert_adam_close(weights(tmp_path / "eager", name), weights(tmp_path / "fast", name), lr=COMPARED["lr"])


def test_cuda_fp16_with_loss_scaling_trains_and_resumes(tmp_path: Path, tiny_data: Path) -> None:
    cfg = tiny_config(tiny_data, device="cuda", amp="fp16", max_steps=6, save_every=3)
    precision = resolve_precision("fp16", "auto", torch.device("cuda"))
    assert precision.dtype == torch.float16 and precision.scaler is not None
    run = tmp_path / "run"
    train(cfg, run, stop_at_step=3, progress=False)
    summary = resume(run, progress=False)
    assert summary["steps"] == 6
    for tensor in weights(run).values():
        assert torch.isfinite(tensor).all()


def test_cuda_cli_hints_train_translate_evaluate(tmp_path: Path, tiny_data: Path) -> None:
    """The CLI on the GPU: a hints model trains, colours with a points file like the CPU does, and is scored."""
    run_dir = tmp_path / "run"
    cli = CliRunner()
    r = cli.invoke(
        main,
        [
            "--no-progress",
            "train",
            "--data",
            str(tiny_data),
            "--out",
            str(run_dir),
            "--device",
            "cuda",
            "--generator",
            "unet_32",
            "--ngf",
            "8",
            "--ndf",
            "8",
            "--load-size",
            "36",
            "--crop-size",
            "32",
            "--batch-size",
            "4",
            "--max-steps",
            "4",
            "--hints",
            "--hint-fill",
            "--val-every",
            "2",
            "--select-by",
            "ssim",
        ],
        catch_exceptions=False,
    )
    assert r.exit_code == 0, r.output
    assert json.loads((run_dir / "config.json").read_text())["model"]["hints"] is True
    sketch = next((tiny_data / "test").glob("*.png"))
    with Image.open(sketch) as pair:
        pair.crop((0, 0, 32, 32)).save(tmp_path / "sketch.png")
    (tmp_path / "dots.json").write_text(json.dumps([{"x": 16, "y": 16, "color": "#d02020", "size": 3}]))
    outs = {}
    for device in ("cpu", "cuda"):
        r = cli.invoke(
            main,
            [
                "--no-progress",
                "translate",
                str(run_dir),
                str(tmp_path / "sketch.png"),
                "--device",
                device,
                "--hints",
                str(tmp_path / "dots.json"),
                "--out",
                str(tmp_path / device),
            ],
            catch_exceptions=False,
        )
        assert r.exit_code == 0, r.output
        with Image.open(tmp_path / device / "sketch.png") as img:
            outs[device] = np.asarray(img.convert("RGB"), dtype=int)
    assert outs["cuda"].shape == (32, 32, 3)
    assert np.abs(outs["cuda"] - outs["cpu"]).max() <= 3  # TF32 / cuDNN against oneDNN: float noise only
    r = cli.invoke(
        main,
        ["--no-progress", "evaluate", str(run_dir), "--hints", "10", "--out", str(tmp_path / "report")],
        catch_exceptions=False,
    )
    assert r.exit_code == 0, r.output
    mean = json.loads((tmp_path / "report" / "metrics.json").read_text())["mean"]
    assert {"model", "model_h10", "copy_input"} <= set(mean)


@pytest.mark.skipif(
    torch.cuda.device_count() < 2, reason="NCCL data parallelism needs two GPUs (NCCL refuses two ranks on one)"
)
def test_nccl_two_ranks_match_one_process(tmp_path: Path, tiny_data: Path, strict_fp32: None) -> None:
    exact = dict(norm="instance", batch_size=4, amp="off", channels_last="off", **COMPARED)
    train(tiny_config(tiny_data, device="cuda", **exact), tmp_path / "one", progress=False)
    cfg = tmp_path / "cfg.json"
    tiny_config(tiny_data, device="cuda", **exact).save(cfg)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "pix2pix",
        "--no-progress",
        "train",
        "--config",
        str(cfg),
        "--out",
        str(tmp_path / "two"),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_adam_close(weights(tmp_path / "one"), weights(tmp_path / "two"), lr=COMPARED["lr"])
