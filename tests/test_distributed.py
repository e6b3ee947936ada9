"""torchrun on CPU (gloo): two ranks train like one process, resume, and only rank 0 writes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from pix2pix.config import Config
from pix2pix.training.loop import train

from .conftest import assert_adam_close, tiny_config

# Instance norm and no dropout: the only per-rank randomness (dropout masks) and per-rank batch
# statistics are what makes N ranks differ from one process; without them they must agree.
EXACT = dict(
    norm="instance",
    dropout=False,
    batch_size=4,
    max_steps=4,
    lr=1e-3,
    val_every=0,
    sample_every=0,
    tensorboard=False,
    html=False,
    ema_decay=0.9,
)


def torchrun(
    args: list[str], nproc: int = 2, env: dict | None = None, timeout: int = 300
) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        "-m",
        "pix2pix",
        "--no-progress",
        *args,
    ]
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=full_env)


def config_file(tmp_path: Path, cfg: Config) -> Path:
    path = tmp_path / "cfg.json"
    cfg.save(path)
    return path


def weights(run: Path, name: str = "generator") -> dict[str, torch.Tensor]:
    return load_file(str(run / "checkpoints" / "last" / f"{name}.safetensors"))


def assert_close_weights(a: dict, b: dict) -> None:
    # Ranks see half the batch each, so the convolution kernels may differ (models/kernels.py
    # picks GEMM or oneDNN by the weight-to-input ratio) and float noise differs with them.
    assert_adam_close(a, b, lr=EXACT["lr"])


@pytest.fixture(scope="module")
def one_process(tmp_path_factory: pytest.TempPathFactory, tiny_data: Path) -> Path:
    run = tmp_path_factory.mktemp("single") / "run"
    train(tiny_config(tiny_data, **EXACT), run, progress=False)
    return run


def test_two_ranks_match_one_process(tmp_path: Path, tiny_data: Path, one_process: Path) -> None:
    cfg = config_file(tmp_path, tiny_config(tiny_data, **EXACT))
    proc = torchrun(["train", "--config", str(cfg), "--out", str(tmp_path / "ddp")])
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ("generator", "discriminator", "generator_ema"):
        assert_close_weights(weights(one_process, name), weights(tmp_path / "ddp", name))
    saved = json.loads((tmp_path / "ddp" / "config.json").read_text())
    assert saved["train"]["batch_size"] == 4  # the global batch, as given


def test_grad_accumulation_matches_the_full_batch(tmp_path: Path, tiny_data: Path, one_process: Path) -> None:
    train(tiny_config(tiny_data, grad_accum=2, **EXACT), tmp_path / "accum", progress=False)
    # Two half-batch means summed differ from one mean in the last float bits; Adam's first steps
    # (update ~ lr * g / |g|) turn that into up to ~2e-5 on weights whose gradient is almost zero,
    # and the gap does not grow with more steps. 5e-5 is 5% of one lr-sized step.
    assert_close_weights(weights(one_process), weights(tmp_path / "accum"))


def test_killed_two_rank_run_resumes_to_the_same_weights(tmp_path: Path, tiny_data: Path, one_process: Path) -> None:
    cfg = config_file(tmp_path, tiny_config(tiny_data, **EXACT))
    run = tmp_path / "ddp"
    first = torchrun(["train", "--config", str(cfg), "--out", str(run), "--stop-at-step", "2"])
    assert first.returncode == 0, first.stderr[-3000:]
    assert json.loads((run / "checkpoints" / "last" / "meta.json").read_text())["step"] == 2
    second = torchrun(["train", "--resume", str(run)])
    assert second.returncode == 0, second.stderr[-3000:]
    assert json.loads((run / "checkpoints" / "last" / "meta.json").read_text())["step"] == 4
    assert_close_weights(weights(one_process), weights(run))


def test_only_rank_0_writes_files(tmp_path: Path, tiny_data: Path) -> None:
    cfg = config_file(
        tmp_path,
        tiny_config(tiny_data, **{**EXACT, "val_every": 2, "sample_every": 2, "tensorboard": True, "html": True}),
    )
    run = tmp_path / "ddp"
    audit = tmp_path / "audit"
    audit.mkdir()
    hook = tmp_path / "hook"
    hook.mkdir()
    # sitecustomize in every rank records each file it opens for writing under the run folder.
    (hook / "sitecustomize.py").write_text(
        "import os, sys\n"
        f"RUN = {str(run)!r}\n"
        f"AUDIT = {str(audit)!r}\n"
        "def _record(path):\n"
        "    with open(os.path.join(AUDIT, 'rank' + os.environ.get('RANK', '?')), 'a') as f:\n"
        "        f.write(path + '\\n')\n"
        "def _hook(event, args):\n"
        "    if event == 'open' and isinstance(args[0], str) and args[0].startswith(RUN):\n"
        "        mode = args[1] if isinstance(args[1], str) else ''\n"
        "        flags = args[2] if len(args) > 2 and isinstance(args[2], int) else 0\n"
        "        if any(c in mode for c in 'wax+') or flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):\n"
        "            _record(args[0])\n"
        "    elif event in ('os.mkdir', 'os.rename', 'os.replace', 'os.remove', 'shutil.rmtree'):\n"
        "        for a in args:\n"
        "            if isinstance(a, str) and a.startswith(RUN):\n"
        "                _record(a)\n"
        "if 'RANK' in os.environ:\n"
        "    sys.addaudithook(_hook)\n"
    )
    env = {"PYTHONPATH": f"{hook}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = torchrun(["train", "--config", str(cfg), "--out", str(run)], env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    written = (audit / "rank0").read_text().splitlines()
    assert any(p.endswith("log.jsonl") for p in written) and any("checkpoints" in p for p in written)
    assert not (audit / "rank1").exists()
    # One log, not two: each step's losses appear once.
    steps = [json.loads(line)["step"] for line in (run / "log.jsonl").read_text().splitlines()]
    assert steps.count(2) == 2  # one loss record and one validation record at step 2


def test_uneven_split_names_both_numbers(tmp_path: Path, tiny_data: Path) -> None:
    cfg = config_file(tmp_path, tiny_config(tiny_data, **{**EXACT, "batch_size": 3}))
    proc = torchrun(["train", "--config", str(cfg), "--out", str(tmp_path / "r")])
    assert proc.returncode != 0
    # Each rank ends with the one-line error (torchrun's launcher adds its own report after it).
    assert "Error: batch_size 3 does not split evenly over 2 ranks x 1 micro-batches" in proc.stderr


def test_syncbatch_on_cpu_ranks_is_refused_clearly(tmp_path: Path, tiny_data: Path) -> None:
    cfg = config_file(tmp_path, tiny_config(tiny_data, **{**EXACT, "norm": "syncbatch"}))
    proc = torchrun(["train", "--config", str(cfg), "--out", str(tmp_path / "r")])
    assert proc.returncode != 0 and "norm 'syncbatch' needs CUDA devices" in proc.stderr
