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

import contextlib
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from torch.optim.lr_scheduler import LambdaLR
from tqdm.auto import tqdm

from ..config import Config, apply_overrides
from ..data.layouts import dataset_for
from ..data.loader import iterate_batches
from ..data.transforms import normalize, random_crop_flip
from ..devices import resolve_device
from ..methods import Method, StepInfo, method_for
from ..optim import keep_bf16_copies
from ..precision import cpu_has_native_bf16, resolve_precision
from .checkpoint import (
    AUTO_CHECKPOINT,
    check_same_generator,
    checkpoint_dir,
    data_location,
    load_config,
    load_init_weights,
    load_training_state,
    load_weights,
    save_checkpoint,
    unwrap,
    weights_file,
)
from .cpu import choose_cpu_bf16, choose_kernels, keep_freed_memory
from .distributed import all_reduce_mean, barrier, broadcast_from_rank0, cleanup, init_distributed, rank, world_size
from .logging import JsonlLogger, Loggers, TrainLogger, read_jsonl
from .schedule import lr_lambda

log = logging.getLogger(__name__)


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
    elif config.train.init_from:  # record the checkpoint folder itself; fail before any data is read
        source = checkpoint_dir(config.train.init_from, AUTO_CHECKPOINT)
        check_same_generator(source, load_config(source).model, config.model)
        config = apply_overrides(config, {"init_from": str(source)})
    device, joined = init_distributed(resolve_device(config.train.device))
    try:
        return _train(config, run_dir, state, ckpt, device, stop_at_step=stop_at_step, progress=progress, loggers=loggers)
    finally:
        cleanup(joined)


def _train(
    config: Config, run_dir: Path, state: dict[str, Any] | None, ckpt: Path, device: torch.device, *,
    stop_at_step: int | None, progress: bool, loggers: list[TrainLogger] | None,
) -> dict[str, Any]:  # fmt: skip
    run = _Run(config, run_dir, device, progress=progress)  # data, the method's networks and optimizers, schedules
    start_step = run.resume(state, ckpt) if state is not None else run.start()
    end_step = run.total if stop_at_step is None else min(run.total, stop_at_step)
    run.keep_ema(state, ckpt)
    run.prepare_device(state)  # CPU memory, precision and kernels; DDP and torch.compile
    run.watch(loggers, end_step)  # validation data, sample images, what the user watches
    return run.loop(start_step, end_step)


class _Run:
    """One training run's state, set up in the order the stanzas of `_train` read (the order fixes
    what the seeded RNG draws, so resume stays exact), then `loop` runs the steps."""

    def __init__(self, config: Config, run_dir: Path, device: torch.device, *, progress: bool) -> None:
        mc, dc, tc = config.model, config.data, config.train
        self.config, self.run_dir, self.device = config, run_dir, device
        self.world, self.rank = world_size(), rank()
        self.main = self.rank == 0
        if tc.batch_size % (self.world * tc.grad_accum):
            raise ValueError(
                f"batch_size {tc.batch_size} does not split evenly over {self.world} ranks x {tc.grad_accum} micro-batches"
            )
        if mc.norm == "syncbatch" and self.world > 1 and device.type != "cuda":
            raise ValueError("norm 'syncbatch' needs CUDA devices (SyncBatchNorm has no CPU kernel); use norm 'instance'")
        self.local_batch = tc.batch_size // self.world
        self.progress = progress and self.main
        torch.manual_seed(tc.seed)

        # Data: decode once, crop and flip per batch.
        self.dataset = dataset_for(config, "train", load_size=dc.load_size, cache=dc.cache, progress=self.progress)
        self.steps_per_epoch, self.total = total_steps_for(config, len(self.dataset))

        # The method's networks and optimizers, and one lr schedule per optimizer (counted in optimizer steps).
        self.precision = resolve_precision(tc.amp, tc.channels_last, device)
        self.precision_how = f"amp {tc.amp}"  # how the precision was chosen: recorded in every checkpoint's meta
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed input sizes: pick the fastest conv kernels once
        self.method: Method = method_for(config)(config, device=device, precision=self.precision)
        constant_fraction = tc.n_epochs / max(tc.n_epochs + tc.n_epochs_decay, 1)
        self.schedulers = {name: LambdaLR(opt, lr_lambda(tc.lr_policy, self.total, constant_fraction))
                           for name, opt in self.method.optimizers.items()}  # fmt: skip
        self.data_at = data_location(dc.root, run_dir)
        self.best: float | None = None

    def start(self) -> int:
        """A new run: its folder and config.json (rank 0). Returns the first step."""
        if self.main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self.config.save(self.run_dir / "config.json")
        if self.config.train.init_from:  # every rank loads the same weights
            source = Path(self.config.train.init_from)
            loaded = load_init_weights(source, load_config(source).model, self.config.model, self.method.networks,
                                       set(self.method.generators.values()))  # fmt: skip
            log.info("starting from %s: %s", source, ", ".join(loaded))
        return 0

    def resume(self, state: dict[str, Any], ckpt: Path) -> int:
        """Weights, optimizers, schedules, the method's extra state and the RNG from a checkpoint.
        Returns the step to continue from."""
        for name, net in self.method.networks.items():
            load_weights(net, ckpt / weights_file(name))
        for name, opt in self.method.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
            self.schedulers[name].load_state_dict(state["schedulers"][name])
        self.method.load_extra_state(state.get("method", {}))
        torch.set_rng_state(state["rng_cpu"])
        if self.device.type == "cuda" and "rng_cuda" in state:
            torch.cuda.set_rng_state(state["rng_cuda"])
        self.best = state.get("best")
        step = int(state["step"])
        log.info("resuming %s at step %d of %d", self.run_dir, step, self.total)
        return step

    def keep_ema(self, state: dict[str, Any] | None, ckpt: Path) -> None:
        """An EMA of each generator where the config keeps one (loaded from the checkpoint on resume)."""
        tc = self.config.train
        nets = self.method.networks
        self.ema = {name: EMA(nets[name], tc.ema_decay) for name in self.method.generators.values()} if tc.ema_decay > 0 else {}
        for name, averaged in self.ema.items():
            if state is not None:
                load_weights(averaged.module, ckpt / weights_file(name, ema=True))

    def prepare_device(self, state: dict[str, Any] | None) -> None:
        """CPU: keep freed memory for the next step; on CPUs with native bf16, `amp auto` takes bf16
        where it measures faster; then pick each layer's faster kernel in the dtype the run computes
        in, and give bf16 layers weight copies. Then DDP and torch.compile wrap the networks."""
        tc, method = self.config.train, self.method
        if self.device.type == "cpu":
            keep_freed_memory()
            examples = method.example_inputs(self.local_batch // tc.grad_accum, self.config.data.crop_size)
            if tc.amp == "auto" and cpu_has_native_bf16():
                if state is not None and "cpu_amp" in state:  # a resumed run keeps the precision it chose
                    use_bf16, how = state["cpu_amp"] == "bf16", "as the run chose"
                else:  # rank 0 decides (timed once per machine, then cached), every rank takes its answer
                    name, x = next(iter(examples.items()))
                    use_bf16, how = broadcast_from_rank0(choose_cpu_bf16(method.networks[name], x) if self.main else None)
                if use_bf16:
                    self.precision = resolve_precision("bf16", tc.channels_last, self.device)
                    method.precision = self.precision
                self.precision_how = f"amp auto: {how}"
                log.info("amp auto on a CPU with native bf16: %s (%s)", self.precision.label, how)
            if tc.cpu_kernels == "timed" and not tc.compile:
                choose_kernels({name: (method.networks[name], x) for name, x in examples.items()}, self.precision.dtype)
            # In bf16, one process: the layers multiply bf16 copies of their weights that Adam updates
            # (optim.py), instead of casting every weight and gradient every step.
            copies = keep_bf16_copies(list(method.networks.values()), device=self.device, dtype=self.precision.dtype,
                                      world=self.world, grad_accum=tc.grad_accum, compiled=tc.compile)  # fmt: skip
            if copies:
                log.info("bf16 weight copies: %d layers multiply bf16 copies that Adam updates", copies)
        # Data parallelism: the networks in DDP; every rank starts from the same weights.
        method.distribute(world=self.world, compile=tc.compile)

    def watch(self, loggers: list[TrainLogger] | None, end_step: int) -> None:
        """Validation data, fixed sample images, and the loggers (rank 0)."""
        tc = self.config.train
        self.end_step = end_step
        self.val_ds = _val_dataset(self.config) if self.main and (tc.val_every or tc.sample_every) else None
        self.samples = None
        if self.val_ds is not None and tc.sample_every:
            # Fixed sample images spread over the whole val split (sorted names cluster similar images).
            picked = torch.linspace(0, len(self.val_ds) - 1, min(tc.n_samples, len(self.val_ds))).round().long()
            self.samples = (*self.val_ds.batch(picked), [self.val_ds.name(int(i)) for i in picked])
        self.logs = Loggers(
            [JsonlLogger(self.run_dir / "log.jsonl"), *_watchers(self.config, self.run_dir), *(loggers or [])]
            if self.main else []
        )  # fmt: skip
        # What validation judges: the EMA weights where kept, else the trained ones.
        self.eval_nets = {name: (self.ema[name].module if name in self.ema else unwrap(net))
                          for name, net in self.method.networks.items()}  # fmt: skip
        if self.main:
            log.info("training %s on %s x %d rank(s) for %d steps (%d per epoch), global batch %d", self.method.name,
                     self.precision.label, self.world, self.total, self.steps_per_epoch, tc.batch_size)  # fmt: skip

    def save(self, step: int) -> None:
        """checkpoints/last: weights, EMA, optimizers, schedules, RNG (rank 0 writes; the others hold the same)."""
        if not self.main:
            return
        method = self.method
        training_state = {
            "optimizers": {name: opt.state_dict() for name, opt in method.optimizers.items()},
            "schedulers": {name: sched.state_dict() for name, sched in self.schedulers.items()},
            "method": method.extra_state(),
            "step": step,
            "cpu_amp": "bf16" if self.precision.dtype == torch.bfloat16 and self.device.type == "cpu" else "off",
            "rng_cpu": torch.get_rng_state(),
            "best": self.best,
        }
        if self.device.type == "cuda":
            training_state["rng_cuda"] = torch.cuda.get_rng_state()
        meta = {"step": step, "epoch": step / self.steps_per_epoch, "total_steps": self.total, "data_root": self.data_at,
                "precision": self.precision.label, "precision_chosen": self.precision_how}  # fmt: skip
        save_checkpoint(
            self.run_dir / "checkpoints" / "last", config=self.config, networks=method.networks,
            ema={name: e.module for name, e in self.ema.items()}, training_state=training_state, meta=meta,
        )  # fmt: skip

    def validate(self, done: int) -> None:
        """Sample grid and val metrics when due; checkpoints/best when the selected metric improves."""
        tc = self.config.train
        if self.samples is not None and (done % tc.sample_every == 0 or done == self.end_step):
            self.logs.images(done, "val_samples", self.method.sample_grid(self.eval_nets, *self.samples))
        if self.val_ds is None or not tc.val_every or (done % tc.val_every and done != self.end_step):
            return
        metrics = self.method.validate(self.eval_nets, self.val_ds)
        self.logs.scalars(done, {f"val_{k}": round(v, 5) for k, v in metrics.items()})
        higher = tc.select_by.removeprefix("h10_") in ("psnr", "ssim")
        value = metrics.get(tc.select_by)
        if not tc.select_by or value is None:
            return
        if self.best is None or (value > self.best if higher else value < self.best):
            self.best = value
            generators = self.method.generators.values()
            save_checkpoint(
                self.run_dir / "checkpoints" / "best", config=self.config,
                networks={name: unwrap(net) for name, net in self.method.networks.items() if name in generators},
                ema={name: e.module for name, e in self.ema.items()},
                meta={"step": done, "select_by": tc.select_by, "value": self.best, "val": metrics,
                      "data_root": self.data_at, "precision": self.precision.label, "precision_chosen": self.precision_how},
            )  # fmt: skip

    def batch(self, step: int, a_u8: torch.Tensor, b_u8: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Augment (crops and flips drawn from (seed, step) for the global batch; the same for A and B
        of a pair, independent for unpaired images) and normalise on the device."""
        tc, dc = self.config.train, self.config.data
        g = torch.Generator().manual_seed(tc.seed * 7_919 + step)
        a_u8, b_u8 = random_crop_flip(a_u8, b_u8, crop_size=dc.crop_size, flip=dc.flip, generator=g,
                                      offset=self.rank * self.local_batch, global_n=tc.batch_size,
                                      joint=self.method.paired)  # fmt: skip
        real_a = self.precision.to_memory_format(normalize(a_u8.to(self.device, non_blocking=True)))  # (B, in_nc, S, S)
        real_b = self.precision.to_memory_format(normalize(b_u8.to(self.device, non_blocking=True)))  # (B, out_nc, S, S)
        return real_a, real_b

    def loop(self, start_step: int, end_step: int) -> dict[str, Any]:
        """The steps from `start_step` to `end_step`, then the last checkpoint; returns the summary."""
        tc, dc, method = self.config.train, self.config.data, self.method
        method.train()
        meter = _Meter(self, start_step)
        step = start_step
        try:
            for step, a_u8, b_u8 in iterate_batches(
                self.dataset, batch_size=tc.batch_size, seed=tc.seed, start_step=start_step, total_steps=end_step,
                num_workers=dc.num_workers, pin_memory=self.device.type == "cuda", rank=self.rank, world_size=self.world,
            ):  # fmt: skip
                real_a, real_b = self.batch(step, a_u8, b_u8)
                losses = method.train_step(real_a, real_b, StepInfo(step=step, offset=self.rank * self.local_batch,
                                                                    global_batch=tc.batch_size))  # fmt: skip
                for sched in self.schedulers.values():
                    sched.step()
                for name, averaged in self.ema.items():
                    averaged.update(unwrap(method.networks[name]), step)
                done = step + 1
                meter.add(losses, done)
                with meter.paused():  # validation and saving are not training time
                    if self.main:
                        self.validate(done)
                    if done % tc.save_every == 0 and done != end_step:
                        self.save(done)
            step = end_step
            self.save(step)
            barrier()  # the last checkpoint is on disk before any rank returns
        finally:
            meter.close()
            self.logs.close()
        return meter.summary(step)


class _Meter:
    """Loss averages, img/s and the progress bar: accumulated on the device, read back only every
    `log_every` steps; time spent validating and saving is kept out of img/s and the ETA."""

    SHOWN = ("G_L1", "G_SSIM", "G_cycle", "D")

    def __init__(self, run: _Run, start_step: int) -> None:
        self.run, self.start_step = run, start_step
        self.sums: dict[str, torch.Tensor] = {}
        self.count = 0
        self.t_log = self.t_start = time.perf_counter()
        self.bar = tqdm(total=run.total, initial=start_step, desc="train", unit="step", disable=not run.progress,
                        dynamic_ncols=True)  # fmt: skip

    def add(self, losses: dict[str, torch.Tensor], done: int) -> None:
        tc = self.run.config.train
        for k, v in losses.items():
            self.sums[k] = self.sums.get(k, 0) + v.detach()
        self.count += 1
        self.bar.update()
        if done % tc.log_every == 0 or done == self.run.end_step:
            now = time.perf_counter()
            values = {k: round(float(all_reduce_mean(v)) / self.count, 5) for k, v in self.sums.items()}
            values["lr"] = next(iter(self.run.method.optimizers.values())).param_groups[0]["lr"]
            values["img_per_s"] = round(self.count * tc.batch_size / max(now - self.t_log, 1e-9), 2)
            values["epoch"] = round(done / self.run.steps_per_epoch, 3)
            self.run.logs.scalars(done, values)
            self.bar.set_postfix({k: values[k] for k in self.SHOWN if k in values}, refresh=False)
            self.sums, self.count, self.t_log = {}, 0, now

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            pause = time.perf_counter() - started
            self.t_log += pause
            if pause > 0.01:
                self.bar.unpause()  # tqdm restarts its clock here, so the pause does not count as a step

    def close(self) -> None:
        self.bar.close()

    def summary(self, step: int) -> dict[str, Any]:
        seconds = time.perf_counter() - self.t_start
        trained = step - self.start_step
        return {
            "steps": step,
            "total_steps": self.run.total,
            "seconds": round(seconds, 2),
            "img_per_s": round(trained * self.run.config.train.batch_size / max(seconds, 1e-9), 2),
        }
