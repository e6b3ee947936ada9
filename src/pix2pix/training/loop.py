"""The training run: one generic loop around a model family's step (methods/).

Everything around the step is here, written once for every family: data order, augmentation,
precision, DDP, learning-rate schedules, EMA, checkpoints with exact resume, logging, validation,
best-checkpoint selection and the live page. What is trained, and how one step goes, is the
method's (methods/pix2pix.py, methods/cyclegan.py).

Everything random (weights, data order, crops, flips, hints, dropout) comes from `seed` and the
step number, and the RNG state is saved in every checkpoint, so on CPU a run interrupted and
resumed ends with the same weights as one that was not.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from torch.optim.lr_scheduler import LambdaLR
from tqdm.auto import tqdm

from ..config import Config
from ..data.loader import iterate_batches
from ..data.paired import dataset_for
from ..data.transforms import normalize, random_crop_flip
from ..methods import Method, StepInfo, method_for
from .checkpoint import (
    checkpoint_dir,
    data_location,
    load_config,
    load_training_state,
    load_weights,
    save_checkpoint,
    unwrap,
    weights_file,
)
from .cpu import choose_kernels, keep_freed_memory
from .distributed import all_reduce_mean, barrier, broadcast_from_rank0, cleanup, init_distributed, rank, world_size
from .logging import JsonlLogger, Loggers, TrainLogger, read_jsonl
from .optim import keep_bf16_copies
from .precision import calibrate_cpu_bf16, cpu_has_native_bf16, resolve_precision
from .schedule import lr_lambda

log = logging.getLogger(__name__)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for, but no CUDA device is available")
    return torch.device(name)


class EMA:
    """Exponential moving average of a module's weights; buffers (BatchNorm statistics) are copied.

    Averaging smooths the step-to-step oscillation of GAN training, which shows as speckle noise
    in a single snapshot's outputs (StyleGAN and EDM sample from EMA weights for this reason).
    """

    def __init__(self, module: nn.Module, decay: float) -> None:
        import copy

        self.decay = decay
        self.module = copy.deepcopy(module).eval()
        self.module.requires_grad_(False)

    @torch.no_grad()
    def update(self, module: nn.Module, step: int) -> None:
        # Warm-up: early on the average forgets fast, so the random init does not linger in it.
        decay = min(self.decay, (1 + step) / (10 + step))
        ema_params = list(self.module.parameters())
        torch._foreach_lerp_(ema_params, [p.detach() for p in module.parameters()], 1.0 - decay)
        for b_ema, b in zip(self.module.buffers(), module.buffers()):
            b_ema.copy_(b)


def _val_dataset(config: Config) -> Any:
    """The val split at the test-time size, or None (with a warning) where there is none."""
    try:
        return dataset_for(config, "val", load_size=config.data.crop_size)
    except FileNotFoundError:
        log.warning("no val split in %s: training without validation or sample grids", config.data.root)
        return None


def _watchers(config: Config, run_dir: Path) -> list[TrainLogger]:
    """TensorBoard and the live HTML page, where asked for and installed."""
    from .watch import HtmlLogger, TensorBoardLogger

    out: list[TrainLogger] = []
    if config.train.tensorboard:
        try:
            out.append(TensorBoardLogger(run_dir / "tensorboard"))
        except ImportError as err:
            log.warning("%s; training without it", err)
    if config.train.html:
        history = read_jsonl(run_dir / "log.jsonl") if (run_dir / "log.jsonl").is_file() else []
        out.append(HtmlLogger(run_dir / "live", title=f"pix2pix: {run_dir.name}", history=history))
    return out


def total_steps_for(config: Config, n_train: int) -> tuple[int, int]:
    """(steps per epoch, total optimizer steps) for a training split of `n_train` pairs.

    The batch is global, so these are the same on every rank and for any number of ranks.
    """
    bs = config.train.batch_size
    steps_per_epoch = n_train // bs
    if steps_per_epoch == 0:
        raise ValueError(f"batch_size {bs} is larger than the {n_train} training images")
    tc = config.train
    total = tc.max_steps or (tc.n_epochs + tc.n_epochs_decay) * steps_per_epoch
    return steps_per_epoch, total


def train(
    config: Config,
    run_dir: str | Path,
    *,
    resume: bool = False,
    stop_at_step: int | None = None,
    progress: bool = True,
    loggers: list[TrainLogger] | None = None,
) -> dict[str, Any]:
    """Train (or resume) a run in `run_dir`; return a summary {'steps', 'seconds', 'img_per_s'}.

    `stop_at_step` ends the run early with a checkpoint, as an interruption would.
    """
    run_dir = Path(run_dir)
    state: dict[str, Any] | None = None
    ckpt = run_dir / "checkpoints" / "last"
    if resume:
        ckpt = checkpoint_dir(run_dir, "last")
        config = load_config(run_dir)
        state = load_training_state(ckpt)
    elif (run_dir / "checkpoints").exists():
        raise ValueError(f"{run_dir} already holds a run: resume it with --resume or choose a new folder")
    device, joined = init_distributed(resolve_device(config.train.device))
    try:
        return _train(config, run_dir, state, ckpt, device, stop_at_step=stop_at_step, progress=progress, loggers=loggers)
    finally:
        cleanup(joined)


def _train(
    config: Config, run_dir: Path, state: dict[str, Any] | None, ckpt: Path, device: torch.device, *,
    stop_at_step: int | None,
    progress: bool, loggers: list[TrainLogger] | None,
) -> dict[str, Any]:  # fmt: skip
    mc, dc, tc = config.model, config.data, config.train
    world, rk = world_size(), rank()
    main = rk == 0
    if tc.batch_size % (world * tc.grad_accum):
        raise ValueError(
            f"batch_size {tc.batch_size} does not split evenly over {world} ranks x {tc.grad_accum} micro-batches"
        )
    if mc.norm == "syncbatch" and world > 1 and device.type != "cuda":
        raise ValueError("norm 'syncbatch' needs CUDA devices (SyncBatchNorm has no CPU kernel); use norm 'instance'")
    local_batch = tc.batch_size // world
    progress = progress and main
    torch.manual_seed(tc.seed)

    # Data: decode once, crop and flip per batch.
    dataset = dataset_for(config, "train", load_size=dc.load_size, cache=dc.cache, progress=progress)
    steps_per_epoch, total = total_steps_for(config, len(dataset))

    # The method's networks and optimizers, and one lr schedule per optimizer (counted in optimizer steps).
    precision = resolve_precision(tc.amp, tc.channels_last, device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input sizes: pick the fastest conv kernels once
    method: Method = method_for(config)(config, device=device, precision=precision)
    constant_fraction = tc.n_epochs / max(tc.n_epochs + tc.n_epochs_decay, 1)
    schedulers = {name: LambdaLR(opt, lr_lambda(tc.lr_policy, total, constant_fraction))
                  for name, opt in method.optimizers.items()}  # fmt: skip
    start_step = 0
    if state is not None:
        for name, net in method.networks.items():
            load_weights(net, ckpt / weights_file(name))
        for name, opt in method.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
            schedulers[name].load_state_dict(state["schedulers"][name])
        method.load_extra_state(state.get("method", {}))
        torch.set_rng_state(state["rng_cpu"])
        if device.type == "cuda" and "rng_cuda" in state:
            torch.cuda.set_rng_state(state["rng_cuda"])
        start_step = int(state["step"])
        log.info("resuming %s at step %d of %d", run_dir, start_step, total)
    elif main:
        run_dir.mkdir(parents=True, exist_ok=True)
        config.save(run_dir / "config.json")
    end_step = total if stop_at_step is None else min(total, stop_at_step)
    data_at = data_location(dc.root, run_dir)
    ema = {name: EMA(method.networks[name], tc.ema_decay) for name in method.generators.values()} if tc.ema_decay > 0 else {}
    for name, averaged in ema.items():
        if state is not None:
            load_weights(averaged.module, ckpt / weights_file(name, ema=True))

    # CPU: keep freed memory for the next step; on CPUs with native bf16, `amp auto` takes bf16 where
    # it measures faster; then pick each layer's faster kernel in the dtype the run computes in.
    if device.type == "cpu":
        keep_freed_memory()
        examples = method.example_inputs(local_batch // tc.grad_accum, dc.crop_size)  # zeros of each generator's input
        if tc.amp == "auto" and cpu_has_native_bf16():
            if state is not None and "cpu_amp" in state:  # a resumed run keeps the precision it chose
                use_bf16, how = state["cpu_amp"] == "bf16", "as the run chose"
            else:
                name, x = next(iter(examples.items()))
                use_bf16 = broadcast_from_rank0(calibrate_cpu_bf16(method.networks[name], x) if main else None)
                how = "measured"  # rank 0 measures, every rank takes its answer
            if use_bf16:
                precision = resolve_precision("bf16", tc.channels_last, device)
                method.precision = precision
            log.info("amp auto on a CPU with native bf16: %s (%s)", precision.label, how)
        if tc.cpu_kernels == "timed" and not tc.compile:
            choose_kernels({name: (method.networks[name], x) for name, x in examples.items()}, precision.dtype)
        # In bf16, one process: the layers multiply bf16 copies of their weights that Adam updates
        # (training/optim.py), instead of casting every weight and gradient every step.
        copies = keep_bf16_copies(list(method.networks.values()), device=device, dtype=precision.dtype, world=world,
                                  grad_accum=tc.grad_accum, compiled=tc.compile)  # fmt: skip
        if copies:
            log.info("bf16 weight copies: %d layers multiply bf16 copies that Adam updates", copies)

    # Data parallelism: the networks in DDP; every rank starts from the same weights.
    method.distribute(world=world, compile=tc.compile)

    def save(step: int) -> None:
        if not main:  # rank 0 writes; the others hold the same state
            return
        training_state = {
            "optimizers": {name: opt.state_dict() for name, opt in method.optimizers.items()},
            "schedulers": {name: sched.state_dict() for name, sched in schedulers.items()},
            "method": method.extra_state(),
            "step": step,
            "cpu_amp": "bf16" if precision.dtype == torch.bfloat16 and device.type == "cpu" else "off",
            "rng_cpu": torch.get_rng_state(),
            "best": best,
        }
        if device.type == "cuda":
            training_state["rng_cuda"] = torch.cuda.get_rng_state()
        meta = {"step": step, "epoch": step / steps_per_epoch, "total_steps": total, "data_root": data_at}
        save_checkpoint(
            run_dir / "checkpoints" / "last", config=config, networks=method.networks,
            ema={name: e.module for name, e in ema.items()}, training_state=training_state, meta=meta,
        )  # fmt: skip

    # Validation data, fixed sample images, and what the user watches.
    val_ds = _val_dataset(config) if main and (tc.val_every or tc.sample_every) else None
    samples = None
    if val_ds is not None and tc.sample_every:
        # Fixed sample images spread over the whole val split (sorted names cluster similar images).
        picked = torch.linspace(0, len(val_ds) - 1, min(tc.n_samples, len(val_ds))).round().long()
        samples = (*val_ds.batch(picked), [val_ds.name(int(i)) for i in picked])
    better = (lambda new, old: new > old) if tc.select_by in ("psnr", "ssim") else (lambda new, old: new < old)
    best = state.get("best") if state is not None else None
    watchers = [JsonlLogger(run_dir / "log.jsonl"), *_watchers(config, run_dir), *(loggers or [])] if main else []
    logs = Loggers(watchers)
    # What validation judges: the EMA weights where kept, else the trained ones.
    eval_nets = {name: (ema[name].module if name in ema else unwrap(net)) for name, net in method.networks.items()}
    if main:
        log.info("training %s on %s x %d rank(s) for %d steps (%d per epoch), global batch %d", method.name,
                 precision.label, world, total, steps_per_epoch, tc.batch_size)  # fmt: skip

    def evaluate_now(done: int) -> None:
        nonlocal best
        if samples is not None and (done % tc.sample_every == 0 or done == end_step):
            logs.images(done, "val_samples", method.sample_grid(eval_nets, *samples))
        if val_ds is None or not tc.val_every or (done % tc.val_every and done != end_step):
            return
        metrics = method.validate(eval_nets, val_ds)
        logs.scalars(done, {f"val_{k}": round(v, 5) for k, v in metrics.items()})
        if tc.select_by and tc.select_by in metrics and (best is None or better(metrics[tc.select_by], best)):
            best = metrics[tc.select_by]
            save_checkpoint(
                run_dir / "checkpoints" / "best", config=config,
                networks={name: unwrap(net) for name, net in method.networks.items() if name in method.generators.values()},
                ema={name: e.module for name, e in ema.items()},
                meta={"step": done, "select_by": tc.select_by, "value": best, "val": metrics, "data_root": data_at},
            )  # fmt: skip

    method.train()
    sums: dict[str, torch.Tensor] = {}
    count, t_log, t_start = 0, time.perf_counter(), time.perf_counter()
    bar = tqdm(total=total, initial=start_step, desc="train", unit="step", disable=not progress, dynamic_ncols=True)
    step = start_step
    try:
        for step, a_u8, b_u8 in iterate_batches(
            dataset, batch_size=tc.batch_size, seed=tc.seed, start_step=start_step, total_steps=end_step,
            num_workers=dc.num_workers, pin_memory=device.type == "cuda", rank=rk, world_size=world,
        ):  # fmt: skip
            # Augment: crops and flips drawn from (seed, step) for the global batch; the same for A
            # and B of a pair, independent for unpaired images.
            g = torch.Generator().manual_seed(tc.seed * 7_919 + step)
            a_u8, b_u8 = random_crop_flip(a_u8, b_u8, crop_size=dc.crop_size, flip=dc.flip, generator=g,
                                          offset=rk * local_batch, global_n=tc.batch_size,
                                          joint=method.paired)  # fmt: skip
            real_a = precision.to_memory_format(normalize(a_u8.to(device, non_blocking=True)))  # (B, in_nc, S, S)
            real_b = precision.to_memory_format(normalize(b_u8.to(device, non_blocking=True)))  # (B, out_nc, S, S)
            losses = method.train_step(real_a, real_b, StepInfo(step=step, offset=rk * local_batch,
                                                                global_batch=tc.batch_size))  # fmt: skip
            for sched in schedulers.values():
                sched.step()
            for name, averaged in ema.items():
                averaged.update(unwrap(method.networks[name]), step)

            # Accumulate on the device; read back only every log_every steps.
            for k, v in losses.items():
                sums[k] = sums.get(k, 0) + v.detach()
            count += 1
            done = step + 1
            bar.update()
            if done % tc.log_every == 0 or done == end_step:
                now = time.perf_counter()
                values = {k: round(float(all_reduce_mean(v)) / count, 5) for k, v in sums.items()}
                values["lr"] = next(iter(method.optimizers.values())).param_groups[0]["lr"]
                values["img_per_s"] = round(count * tc.batch_size / max(now - t_log, 1e-9), 2)
                values["epoch"] = round(done / steps_per_epoch, 3)
                logs.scalars(done, values)
                shown = ("G_L1", "G_SSIM", "G_cycle", "D")
                bar.set_postfix({k: values[k] for k in shown if k in values}, refresh=False)
                sums, count, t_log = {}, 0, now
            paused = time.perf_counter()
            if main:
                evaluate_now(done)
            if done % tc.save_every == 0 and done != end_step:
                save(done)
            # Validation and saving are not training time: keep them out of img/s and the ETA.
            pause = time.perf_counter() - paused
            t_log += pause
            if pause > 0.01:
                bar.unpause()  # tqdm restarts its clock here, so the pause does not count as a step
        step = end_step
        save(step)
        barrier()  # the last checkpoint is on disk before any rank returns
    finally:
        bar.close()
        logs.close()
    seconds = time.perf_counter() - t_start
    trained = step - start_step
    return {
        "steps": step,
        "total_steps": total,
        "seconds": round(seconds, 2),
        "img_per_s": round(trained * tc.batch_size / max(seconds, 1e-9), 2),
    }
