"""Runs that survive: Ctrl-C and a scheduler's SIGTERM save and say how to resume, one writer per run
folder, a full disk and a diverged loss end in one line with the last good checkpoint kept."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

from pix2pix.cli import main
from pix2pix.io import RunWriteError
from pix2pix.run_folder import RunLocked, checkpoint_dir, load_training_state, lock_run
from pix2pix.training.loop import resume, train
from pix2pix.training.stopping import NonFiniteLoss

from .conftest import tiny_config

# Instance norm and no dropout, one process: a run stopped and resumed must end bit-identical.
EXACT = dict(norm="instance", dropout=False, val_every=0, sample_every=0, tensorboard=False, html=False, log_every=1)


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "pix2pix", "--no-progress", *args]


def start_training(cfg_file: Path, run: Path, *extra: str, launcher: list[str] | None = None) -> subprocess.Popen:
    """`pix2pix train` in a process group of its own (so the signal reaches it as a terminal's would)."""
    cmd = (launcher or cli())[:] + ["train", "--config", str(cfg_file), "--out", str(run), *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True, env=env
    )


def wait_for_step(run: Path, step: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    log = run / "log.jsonl"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"training ended early ({proc.returncode}): {proc.stderr.read()}")
        if log.is_file() and any(json.loads(line)["step"] >= step for line in log.read_text().splitlines() if line):
            return
        time.sleep(0.05)
    raise AssertionError(f"no step {step} in {log} within {timeout} s")


def same_weights(a: Path, b: Path) -> bool:
    for name in ("generator", "discriminator", "generator_ema"):
        wa, wb = (load_file(str(r / "checkpoints" / "last" / f"{name}.safetensors")) for r in (a, b))
        if not all(torch.equal(wa[k], wb[k]) for k in wa):
            return False
    return True


# SIGTERM in the default run, SIGINT (the same handler) with the slow tests: each trains three times.
@pytest.mark.parametrize("sig, code", [pytest.param(signal.SIGINT, 130, marks=pytest.mark.slow), (signal.SIGTERM, 143)])
def test_a_signal_saves_the_step_reached_and_resume_ends_as_an_uninterrupted_run(
    sig: int, code: int, tmp_path: Path, tiny_data: Path
) -> None:
    cfg = tiny_config(tiny_data, max_steps=100_000, save_every=100_000, ema_decay=0.9, **EXACT)
    cfg_file = tmp_path / "cfg.json"
    cfg.save(cfg_file)
    run = tmp_path / "stopped"
    proc = start_training(cfg_file, run)
    wait_for_step(run, 2, proc)
    os.killpg(proc.pid, sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    stopped_at = json.loads((run / "checkpoints" / "last" / "meta.json").read_text())["step"]
    assert stopped_at >= 2
    assert f"stopped at step {stopped_at}: resume with `pix2pix train --resume {run}`" in err
    assert "Traceback" not in err
    # Resumed a few steps further, it ends where a run that was never stopped ends.
    until = stopped_at + 2
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # as the stopped run: the thread count changes float sums
    subprocess.run(cli("train", "--resume", str(run), "--stop-at-step", str(until)), check=True, env=env)
    whole = ["train", "--config", str(cfg_file), "--out", str(tmp_path / "whole"), "--stop-at-step", str(until)]
    subprocess.run(cli(*whole), check=True, env=env)
    assert load_training_state(checkpoint_dir(run))["step"] == until
    assert same_weights(run, tmp_path / "whole")


def test_one_writer_per_run_folder_while_it_lives_and_again_after_kill_9(tmp_path: Path, tiny_data: Path) -> None:
    cfg = tiny_config(tiny_data, max_steps=100_000, save_every=1, **EXACT)
    cfg_file = tmp_path / "cfg.json"
    cfg.save(cfg_file)
    run = tmp_path / "run"
    proc = start_training(cfg_file, run)
    try:
        wait_for_step(run, 2, proc)
        with pytest.raises(RunLocked, match=rf"{run} is being written by another process \(PID {proc.pid}\)"):
            resume(run, stop_at_step=3, progress=False)
        r = CliRunner().invoke(main, ["train", "--resume", str(run)])
        assert r.exit_code == 1 and f"(PID {proc.pid})" in r.output and len(r.output.strip().splitlines()) == 1
        with lock_run(tmp_path / "other"):  # another folder is free
            pass
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=60)
    # kill -9 leaves no stale lock: the OS released it with the process.
    step = load_training_state(checkpoint_dir(run))["step"]
    resume(run, stop_at_step=step + 1, progress=False)
    assert load_training_state(checkpoint_dir(run))["step"] == step + 1


def test_a_full_disk_ends_in_one_line_and_keeps_the_last_good_checkpoint(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_data: Path
) -> None:
    import builtins

    import pix2pix.run_folder as run_folder

    staged: list[str] = []
    real_open = builtins.open

    def full_disk_open(path, mode="r", *args, **kwargs):  # noqa: ANN001, ANN202 - open's own signature
        if "w" in mode and ".tmp-" in str(path):  # a file of a checkpoint being staged
            if Path(path).parent.name not in staged:
                staged.append(Path(path).parent.name)
            if len(staged) > 1:  # the first checkpoint fits; the disk is full after that
                raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(run_folder, "open", full_disk_open, raising=False)
    run = tmp_path / "run"
    cfg = tiny_config(tiny_data, max_steps=6, save_every=2, **EXACT)
    with pytest.raises(RunWriteError) as caught:
        train(cfg, run, progress=False)
    message = str(caught.value)
    assert message.startswith(f"cannot write checkpoint {run / 'checkpoints' / 'last'}: ")
    assert "generator.safetensors: No space left on device;" in message
    assert message.endswith(f"the last good checkpoint: {run / 'checkpoints' / 'last'}")
    assert "\n" not in message
    # The previous checkpoint is whole and loadable; nothing half-written is left beside it.
    assert load_training_state(checkpoint_dir(run))["step"] == 2
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["last"]
    monkeypatch.undo()
    resume(run, progress=False)  # and the run goes on from it once there is room
    assert load_training_state(checkpoint_dir(run))["step"] == 6


def test_a_non_finite_loss_stops_the_run_naming_the_step_and_the_loss(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_data: Path
) -> None:
    from pix2pix.methods.pix2pix import Pix2PixMethod

    real = Pix2PixMethod.train_step

    def diverging(self, real_a, real_b, info):  # noqa: ANN001, ANN202
        losses = real(self, real_a, real_b, info)
        if info.step == 4:  # the fifth step's L1 is no longer a number
            losses["G_L1"] = torch.tensor(float("nan"))
        return losses

    monkeypatch.setattr(Pix2PixMethod, "train_step", diverging)
    run = tmp_path / "run"
    with pytest.raises(NonFiniteLoss, match=r"^step 5: loss G_L1 is nan: the run diverged and stops here; ") as err:
        train(tiny_config(tiny_data, max_steps=8, save_every=2, **EXACT), run, progress=False)
    assert f"the last finite checkpoint: {run / 'checkpoints' / 'last'}" in str(err.value)
    assert load_training_state(checkpoint_dir(run))["step"] == 4  # step 6's checkpoint was never written


@pytest.mark.slow  # three torchrun launches of two ranks each
def test_torchrun_stops_every_rank_at_one_step_and_resumes_bit_identical(tmp_path: Path, tiny_data: Path) -> None:
    cfg = tiny_config(tiny_data, max_steps=100_000, save_every=100_000, batch_size=4, **EXACT)
    cfg_file = tmp_path / "cfg.json"
    cfg.save(cfg_file)
    run = tmp_path / "ddp"
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "pix2pix"]
    proc = start_training(cfg_file, run, launcher=launcher + ["--no-progress"])
    wait_for_step(run, 2, proc, timeout=240)
    os.killpg(proc.pid, signal.SIGTERM)  # what a scheduler sends
    _, err = proc.communicate(timeout=240)
    stopped_at = json.loads((run / "checkpoints" / "last" / "meta.json").read_text())["step"]
    assert err.count(f"stopped at step {stopped_at}: resume with") == 2, err  # both ranks, the same step
    until = stopped_at + 2
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    resumed = subprocess.run(
        launcher + ["--no-progress", "train", "--resume", str(run), "--stop-at-step", str(until)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr
    whole = subprocess.run(
        launcher
        + [
            "--no-progress",
            "train",
            "--config",
            str(cfg_file),
            "--out",
            str(tmp_path / "whole"),
            "--stop-at-step",
            str(until),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert whole.returncode == 0, whole.stderr
    for name in ("generator", "discriminator"):
        a = load_file(str(run / "checkpoints" / "last" / f"{name}.safetensors"))
        b = load_file(str(tmp_path / "whole" / "checkpoints" / "last" / f"{name}.safetensors"))
        assert all(torch.equal(a[k], b[k]) for k in a), name


def test_what_writes_into_a_run_waits_for_its_writer_and_readers_never_do(tmp_path: Path, hints_run: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom pix2pix.run_folder import lock_run\n"
            "with lock_run(sys.argv[1]):\n    print('locked', flush=True)\n    time.sleep(120)",
            str(hints_run),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        runner = CliRunner()
        for args in (["evaluate", str(hints_run), "--no-curve"], ["export", str(hints_run)]):
            r = runner.invoke(main, ["--no-progress", *args])
            assert r.exit_code == 1 and f"is being written by another process (PID {holder.pid})" in r.output, args
            assert not (hints_run / "eval-test").exists() and not (hints_run / "export").exists()
        r = runner.invoke(
            main, ["--no-progress", "evaluate", str(hints_run), "--no-curve", "--out", str(tmp_path / "e")]
        )
        assert r.exit_code == 0, r.output  # a report written elsewhere only reads the run
        assert (tmp_path / "e" / "metrics.json").is_file()
    finally:
        holder.kill()
        holder.communicate()  # waits, and closes its pipe
