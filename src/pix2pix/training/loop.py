"""The training run: `training_loop`, one function read top to bottom, around a model family's step.

Everything around the step is here, written once for every family: data order, augmentation,
precision, DDP, learning-rate schedules, EMA, checkpoints with exact resume, logging, validation
and best-checkpoint selection. What is trained, and how one step goes, is the method's
(methods/pix2pix.py, methods/cyclegan.py); CPU speed is behind `cpu.convert` and `cpu.tune`.

Everything random (weights, data order, crops, flips, hints, dropout) comes from `seed` and the
step number (seeding.py), and the RNG state is saved in every checkpoint, so on CPU a run
interrupted and resumed ends with the same weights as one that was not. The stanzas run in the
order they are written: that order fixes what the seeded RNG draws.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from torch.optim.lr_scheduler import LambdaLR

from .. import cpu, seeding
from ..config import Config, apply_overrides
from ..data.layouts import dataset_for
from ..data.loader import StepBatches, iterate_batches
from ..data.transforms import random_crop_flip
from ..devices import resolve_device, to_device
from ..distributed import barrier, cleanup, init_distributed, rank, world_size
from ..hints import Regions, label_images
from ..images import from_uint8
from ..io import RunWriteError
from ..methods import Method, StepInfo, method_for
from ..metrics.image import higher_is_better
from ..precision import Precision, resolve_precision
from ..run_folder import (
    AUTO_CHECKPOINT,
    check_same_generator,
    checkpoint_dir,
    checkpoint_path,
    data_location,
    last_good,
    load_config,
    load_init_weights,
    load_training_state,
    load_weights,
    lock_run,
    save_checkpoint,
    unwrap,
    weights_file,
)
from .ema import EMA
from .logging import JsonlLogger, Loggers, TrainLogger, read_jsonl
from .meter import Meter, Span
from .schedule import lr_lambda
from .stopping import GracefulStop, NonFiniteLoss, TrainingStopped, first_nonfinite

log = logging.getLogger(__name__)


def train(config: Config, run_dir: str | Path, **kwargs: Any) -> dict[str, Any]:
    """Train a new run in `run_dir` (it must hold none); return {'steps', 'seconds', 'img_per_s'}.

    `stop_at_step` ends the run early with a checkpoint, as an interruption would; `progress`
    shows a progress bar; `loggers` are watched beside the run's own (log.jsonl, TensorBoard, page).
    """
    run_dir = Path(run_dir)
    if checkpoint_path(run_dir, "last").parent.exists():
        raise ValueError(f"{run_dir} already holds a run: resume it with --resume or choose a new folder")
    if config.train.init_from:  # record the checkpoint folder itself; fail before any data is read
        source = checkpoint_dir(config.train.init_from, AUTO_CHECKPOINT)
        check_same_generator(source, load_config(source).model, config.model)
        config = apply_overrides(config, {"init_from": str(source)})
    return _launch(config, run_dir, resume_from=None, **kwargs)


def resume(run_dir: str | Path, **kwargs: Any) -> dict[str, Any]:
    """Continue the run in `run_dir` from its last checkpoint, with the run's own config."""
    run_dir = Path(run_dir)
    return _launch(load_config(run_dir), run_dir, resume_from=checkpoint_dir(run_dir, "last"), **kwargs)


def _launch(config: Config, run_dir: Path, **kwargs: Any) -> dict[str, Any]:
    """The loop on this process's device, inside the process group where torchrun started us, with the
    run folder locked (rank 0 writes it: one writer per run) and Ctrl-C or SIGTERM stopping it gracefully."""
    device, joined = init_distributed(resolve_device(config.train.device))
    try:
        with lock_run(run_dir) if rank() == 0 else contextlib.nullcontext(), GracefulStop() as stop:
            return training_loop(config, run_dir, device=device, stop=stop, **kwargs)
    except RunWriteError:
        raise
    except OSError as err:  # a log, sample grid or page the run could not write: one line, not a traceback
        if not err.filename or run_dir.resolve() not in Path(err.filename).resolve().parents:
            raise
        raise RunWriteError(
            f"cannot write {err.filename}: {err.strerror or err}; the last good checkpoint: {last_good(run_dir)}"
        ) from None
    finally:
        cleanup(joined)


def training_loop(
    config: Config,
    run_dir: Path,
    *,
    device: torch.device,
    resume_from: Path | None,
    stop: GracefulStop | None = None,
    stop_at_step: int | None = None,
    progress: bool = True,
    loggers: list[TrainLogger] | None = None,
) -> dict[str, Any]:
    """Train `config` in `run_dir` from scratch, or from the checkpoint folder `resume_from`; return the
    meter's summary. A signal caught by `stop`, and `stop_at_step`, end early with a checkpoint."""
    tc = config.train
    world, main = world_size(), rank() == 0
    local_batch = _local_batch(config, world, device)
    seeding.seed_everything(tc.seed)

    # Data: decode once (a hints model's regions labelled once too), on the GPU if it fits; crop and flip per batch.
    dataset, regions = _training_data(config, device, progress=progress and main)
    steps_per_epoch, total = total_steps_for(config, len(dataset))

    # Networks and optimizers (the method's, built from the seeded RNG), and one lr schedule per optimizer.
    method = method_for(config)(config, device=device, precision=resolve_precision(tc.amp, tc.channels_last, device))
    if device.type == "cpu":  # GEMM layers and channels_last where they pay (the same weights)
        method.networks = {name: cpu.convert(net) for name, net in method.networks.items()}
    schedulers = _schedulers(method, tc, total)

    # Resume or start; then an EMA of each generator where the config keeps one.
    state = load_training_state(resume_from) if resume_from is not None else None
    if state is None:
        start_step, best = _start(config, run_dir, method, main), None
    else:
        start_step, best = _resume(state, resume_from, method, schedulers, device), state.get("best")
        log.info("resuming %s at step %d of %d", run_dir, start_step, total)
    span = Span(start_step, total if stop_at_step is None else min(total, stop_at_step), total, steps_per_epoch)
    ema = _keep_ema(method, tc.ema_decay, resume_from)

    # Speed: the device's settings (on CPU: allocator, precision and kernels by timing); then DDP and compile.
    method.precision, how = _tune(method, config, local_batch, world=world, main=main, state=state)
    method.distribute(world=world, compile=tc.compile)
    if main:
        log.info("training %s on %s x %d rank(s), %d steps", method.name, method.precision.label, world, total)
    meta = _meta(config, run_dir, total, method.precision.label, how)

    # What the user watches: validation data, fixed sample images, the loggers (rank 0), the meter.
    val = _Validation.open(config, method, ema, run_dir, meta) if main else None
    logs = Loggers(_loggers(config, run_dir, method, loggers) if main else [])
    meter = Meter(span, tc.batch_size, tc.log_every, shown=method.shown_losses, logs=logs, progress=progress and main)

    # Train: a step, the schedules, the EMA, the meter; validation and checkpoints when due.
    method.train()
    step, offset = span.start, rank() * local_batch
    save = functools.partial(_save_last, run_dir, config, method, ema, schedulers, meta=meta, main=main)
    try:
        for step, a, b, step_regions, rows in _batches(dataset, config, span, world, device, regions):
            real_a, real_b, cut = _augment(
                a, b, step_regions, rows, step=step, offset=offset, config=config, method=method
            )
            info = StepInfo(step=step, offset=offset, global_batch=tc.batch_size, regions=cut)
            losses = method.train_step(real_a, real_b, info)
            _advance(schedulers, ema, method, step)
            done = step + 1
            meter.add(losses, done, lr=next(iter(method.optimizers.values())).param_groups[0]["lr"])
            if device.type != "cuda" or done % tc.log_every == 0 or done % tc.save_every == 0:  # no sync per step
                _check_finite(losses, done, run_dir)  # before this step's checkpoint is written
            with meter.paused():  # validation and saving are not training time
                best = val.run(done, span.end, logs, best) if val is not None else best
                signum = stop.requested(device) if stop is not None else None
                if (done % tc.save_every == 0 or signum) and done != span.end:
                    save(done, best, steps_per_epoch)
            if signum and done != span.end:
                raise TrainingStopped(f"stopped at step {done}: resume with `pix2pix train --resume {run_dir}`", signum)
        step = span.end
        save(step, best, steps_per_epoch)
        barrier()  # the last checkpoint is on disk before any rank returns
    finally:
        meter.close()
        logs.close()
    return meter.summary(step)


def _training_data(config: Config, device: torch.device, *, progress: bool) -> tuple[Any, Regions | None]:
    """The training set, decoded once, with its hint regions (`_hint_regions`), where `_place_data` puts them."""
    dc = config.data
    dataset = dataset_for(config, "train", load_size=dc.load_size, cache=dc.cache, progress=progress)
    return dataset, _place_data(dataset, _hint_regions(dataset, config, progress=progress), dc.data_on_device, device)


def _hint_regions(dataset: Any, config: Config, *, progress: bool) -> Regions | None:
    """A hints model on cached paired data: every image's hint regions, labelled once (hints.label_images),
    else None, and a step labels its own crops."""
    mc = config.model
    if not (mc.hints and dataset.cached and dataset.paired):
        return None
    a_u8, b_u8 = dataset.decoded  # the cache itself: label_images reads it a chunk at a time, copying nothing
    return label_images(a_u8, b_u8, mc.hint_regions if mc.hint_fill else "closed", progress=progress)


def _place_data(dataset: Any, regions: Regions | None, where: str, device: torch.device) -> Regions | None:
    """On a GPU, the cached dataset (and its regions) on the device when `where` allows and it fits in a
    quarter of the free memory, else in pinned host memory, so a step's batch waits on nothing."""
    if device.type != "cuda" or not (dataset.cached and dataset.paired):
        return regions
    size = dataset.nbytes + (sum(t.nbytes for t in regions) if regions is not None else 0)
    on_device = where == "yes" or (where == "auto" and size < torch.cuda.mem_get_info(device)[0] // 4)
    target = device if on_device else None
    dataset.place(target)
    log.info("training data (%.0f MB) %s", size / 2**20, "on the GPU" if on_device else "in pinned host memory")
    if regions is None:
        return None
    return Regions(*(t.to(device) if on_device else t.pin_memory() for t in regions))


def _batches(
    dataset: Any, config: Config, span: Span, world: int, device: torch.device, regions: Regions | None
) -> Iterator[tuple[int, torch.Tensor, torch.Tensor, Regions | None, list[int] | None]]:
    """This rank's share of the batches of steps span.start .. span.end (data/loader.py): (step, A, B, hint
    regions, rows). A cached paired dataset yields its whole cache (and `regions`) with the batch's rows, for
    the crop to read straight from; otherwise A and B are the batch itself, and rows and regions None."""
    dc, tc = config.data, config.train
    order = {"batch_size": tc.batch_size, "seed": tc.seed, "rank": rank(), "world_size": world}
    if dataset.cached and dataset.paired:
        a, b = dataset.decoded
        rows = StepBatches(len(dataset), start_step=span.start, total_steps=span.end, **order)
        for step, mine in enumerate(rows, start=span.start):
            yield step, a, b, regions, mine
        return
    batches = iterate_batches(
        dataset,
        start_step=span.start,
        total_steps=span.end,
        num_workers=dc.num_workers,
        pin_memory=device.type == "cuda",
        **order,
    )
    for step, a, b in batches:
        yield step, a, b, None, None


def _advance(schedulers: dict[str, LambdaLR], ema: dict[str, EMA], method: Method, step: int) -> None:
    """After a step: each learning-rate schedule, then each EMA."""
    for sched in schedulers.values():
        sched.step()
    for name, averaged in ema.items():
        averaged.update(unwrap(method.networks[name]), step)


def _meta(config: Config, run_dir: Path, total: int, precision: str, how: str) -> dict[str, Any]:
    """What every checkpoint's meta.json records beside its step: where the data was, the precision."""
    data_root = data_location(config.data.root, run_dir)
    return {"total_steps": total, "data_root": data_root, "precision": precision, "precision_chosen": how}


def _check_finite(losses: dict[str, torch.Tensor], step: int, run_dir: Path) -> None:
    """NonFiniteLoss naming the step and the loss, where one is NaN or infinite."""
    bad = first_nonfinite(losses)
    if bad is not None:
        raise NonFiniteLoss(
            f"step {step}: loss {bad[0]} is {bad[1]}: the run diverged and stops here; the last finite "
            f"checkpoint: {last_good(run_dir)} (resume it with a lower --lr, or start again)"
        )


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


def _local_batch(config: Config, world: int, device: torch.device) -> int:
    """This rank's share of the global batch; errors where the config cannot run on these ranks."""
    tc = config.train
    if tc.batch_size % (world * tc.grad_accum):
        raise ValueError(
            f"batch_size {tc.batch_size} does not split evenly over {world} ranks x {tc.grad_accum} micro-batches"
        )
    if config.model.norm == "syncbatch" and world > 1 and device.type != "cuda":
        raise ValueError("norm 'syncbatch' needs CUDA devices (SyncBatchNorm has no CPU kernel); use norm 'instance'")
    return tc.batch_size // world


def _schedulers(method: Method, tc: Any, total: int) -> dict[str, LambdaLR]:
    """One learning-rate schedule per optimizer, counted in optimizer steps."""
    constant_fraction = tc.n_epochs / max(tc.n_epochs + tc.n_epochs_decay, 1)
    factor = lr_lambda(tc.lr_policy, total, constant_fraction)
    return {name: LambdaLR(opt, factor) for name, opt in method.optimizers.items()}


def _keep_ema(method: Method, decay: float, ckpt: Path | None) -> dict[str, EMA]:
    """An EMA of each generator where `decay` > 0, loaded from checkpoint `ckpt` when resuming."""
    ema = {name: EMA(method.networks[name], decay) for name in method.generators.values()} if decay else {}
    for name, averaged in ema.items():
        if ckpt is not None:
            load_weights(averaged.module, ckpt / weights_file(name, ema=True))
    return ema


def _tune(
    method: Method, config: Config, local_batch: int, *, world: int, main: bool, state: dict[str, Any] | None
) -> tuple[Precision, str]:
    """The precision to train in and how it was chosen: on CPU, `cpu.tune` on a training batch of each
    generator's input shape (it also picks kernels by timing); elsewhere as the config says."""
    tc = config.train
    if method.device.type != "cpu":
        return method.precision, f"amp {tc.amp}"
    examples = method.example_inputs(local_batch // tc.grad_accum, config.data.crop_size)
    return cpu.tune(
        method.networks,
        method.optimizers,
        examples,
        precision=method.precision,
        amp=tc.amp,
        channels_last=tc.channels_last,
        cpu_kernels=tc.cpu_kernels,
        grad_accum=tc.grad_accum,
        compiled=tc.compile,
        world=world,
        main=main,
        saved_amp=state.get("cpu_amp") if state else None,
    )


def _start(config: Config, run_dir: Path, method: Method, main: bool) -> int:
    """A new run: its folder and config.json (rank 0), and --init-from's weights. Returns step 0."""
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        config.save(run_dir / "config.json")
    if config.train.init_from:  # every rank loads the same weights
        source = Path(config.train.init_from)
        loaded = load_init_weights(
            source, load_config(source).model, config.model, method.networks, set(method.generators.values())
        )
        log.info("starting from %s: %s", source, ", ".join(loaded))
    return 0


def _resume(
    state: dict[str, Any], ckpt: Path, method: Method, schedulers: dict[str, LambdaLR], device: torch.device
) -> int:
    """Weights, optimizers, schedules, the method's extra state and the RNG from a checkpoint.
    Returns the step to continue from."""
    for name, net in method.networks.items():
        load_weights(net, ckpt / weights_file(name))
    for name, opt in method.optimizers.items():
        opt.load_state_dict(state["optimizers"][name])
        schedulers[name].load_state_dict(state["schedulers"][name])
    method.load_extra_state(state.get("method", {}))
    torch.set_rng_state(state["rng_cpu"])
    if device.type == "cuda" and "rng_cuda" in state:
        torch.cuda.set_rng_state(state["rng_cuda"])
    return int(state["step"])


def _augment(
    a: torch.Tensor,
    b: torch.Tensor,
    regions: Regions | None,
    rows: list[int] | None,
    *,
    step: int,
    offset: int,
    config: Config,
    method: Method,
) -> tuple[torch.Tensor, torch.Tensor, Regions | None]:
    """Crops and flips drawn from (seed, step) for the global batch (the same for A and B of a pair and
    their hint `regions`, independent for unpaired images), of the batch `rows` of a cache or of the batch
    A, B itself, on the data's device (the GPU when the data lives there), then normalised on the step's
    device in its memory format. Where the crop runs on the step's device it writes floats: the crop is
    the conversion."""
    tc, dc, p = config.train, config.data, method.precision
    dev = method.device
    if rows is None:
        a, b = to_device(a, dev), to_device(b, dev)
    a_u8, b_u8, *cut = random_crop_flip(
        a,
        b,
        crop_size=dc.crop_size,
        flip=dc.flip,
        generator=seeding.generator("augment", tc.seed, step),
        offset=offset,
        global_n=tc.batch_size,
        joint=method.paired,
        carry=regions or (),
        rows=rows,
        dtype=torch.float32 if a.device == dev else None,
    )
    real_a = p.to_memory_format(from_uint8(to_device(a_u8, dev)))  # (B, in_nc, S, S)
    real_b = p.to_memory_format(from_uint8(to_device(b_u8, dev)))  # (B, out_nc, S, S)
    return real_a, real_b, Regions(*(to_device(t, dev) for t in cut)) if regions is not None else None


def _save_last(
    run_dir: Path,
    config: Config,
    method: Method,
    ema: dict[str, EMA],
    schedulers: dict[str, LambdaLR],
    step: int,
    best: float | None,
    steps_per_epoch: int,
    meta: dict[str, Any],
    main: bool,
) -> None:
    """checkpoints/last: weights, EMA, optimizers, schedules, RNG (rank 0 writes; the others hold the same)."""
    if not main:
        return
    p = method.precision
    training_state = {
        "optimizers": {name: opt.state_dict() for name, opt in method.optimizers.items()},
        "schedulers": {name: sched.state_dict() for name, sched in schedulers.items()},
        "method": method.extra_state(),
        "step": step,
        "cpu_amp": "bf16" if p.dtype == torch.bfloat16 and p.device.type == "cpu" else "off",
        "rng_cpu": torch.get_rng_state(),
        "best": best,
    }
    if p.device.type == "cuda":
        training_state["rng_cuda"] = torch.cuda.get_rng_state()
    save_checkpoint(
        checkpoint_path(run_dir, "last"),
        config=config,
        networks=method.networks,
        ema={name: e.module for name, e in ema.items()},
        training_state=training_state,
        meta={"step": step, "epoch": step / steps_per_epoch, **meta},
    )


class _Validation:
    """Rank 0's validation: the val split, fixed sample images, and checkpoints/best."""

    def __init__(
        self,
        config: Config,
        method: Method,
        nets: dict[str, nn.Module],
        val_ds: Any,
        samples: Any,
        run_dir: Path,
        meta: dict[str, Any],
        ema: dict[str, EMA],
    ) -> None:
        self.config, self.method, self.nets, self.val_ds, self.samples = config, method, nets, val_ds, samples
        self.run_dir, self.meta, self.ema = run_dir, meta, ema

    @classmethod
    def open(
        cls, config: Config, method: Method, ema: dict[str, EMA], run_dir: Path, meta: dict[str, Any]
    ) -> _Validation:
        tc = config.train
        val_ds = _val_dataset(config) if tc.val_every or tc.sample_every else None
        samples = None
        if val_ds is not None and tc.sample_every:
            # Fixed sample images spread over the whole val split (sorted names cluster similar images).
            picked = torch.linspace(0, len(val_ds) - 1, min(tc.n_samples, len(val_ds))).round().long()
            samples = (*val_ds.batch(picked), [val_ds.name(int(i)) for i in picked])
        # What validation judges: the EMA weights where kept, else the trained ones.
        nets = {name: (ema[name].module if name in ema else unwrap(net)) for name, net in method.networks.items()}
        return cls(config, method, nets, val_ds, samples, run_dir, meta, ema)

    def run(self, done: int, end_step: int, logs: Loggers, best: float | None) -> float | None:
        """Sample grid and val metrics when due; checkpoints/best when the selected metric improves.
        Returns the best value so far."""
        tc = self.config.train
        if self.samples is not None and (done % tc.sample_every == 0 or done == end_step):
            logs.images(done, "val_samples", self.method.sample_grid(self.nets, *self.samples))
        if self.val_ds is None or not tc.val_every or (done % tc.val_every and done != end_step):
            return best
        metrics = self.method.validate(self.nets, self.val_ds)
        logs.scalars(done, {f"val_{k}": round(v, 5) for k, v in metrics.items()})
        value = metrics.get(tc.select_by)
        if not tc.select_by or value is None:
            return best
        if best is not None and not (value > best if higher_is_better(tc.select_by) else value < best):
            return best
        generators = self.method.generators.values()
        save_checkpoint(
            checkpoint_path(self.run_dir, "best"),
            config=self.config,
            networks={name: unwrap(net) for name, net in self.method.networks.items() if name in generators},
            ema={name: e.module for name, e in self.ema.items()},
            meta={"step": done, "select_by": tc.select_by, "value": value, "val": metrics, **self.meta},
        )
        return value


def _val_dataset(config: Config) -> Any:
    """The val split at the test-time size, or None (with a warning) where there is none."""
    try:
        return dataset_for(config, "val", load_size=config.data.crop_size)
    except FileNotFoundError:
        log.warning("no val split in %s: training without validation or sample grids", config.data.root)
        return None


def _loggers(config: Config, run_dir: Path, method: Method, extra: list[TrainLogger] | None) -> list[TrainLogger]:
    """log.jsonl, TensorBoard and the live HTML page (where asked for and installed), then `extra`."""
    from .watch import HtmlLogger, TensorBoardLogger

    out: list[TrainLogger] = [JsonlLogger(run_dir / "log.jsonl")]
    if config.train.tensorboard:
        try:
            out.append(TensorBoardLogger(run_dir / "tensorboard"))
        except ImportError as err:
            log.warning("%s; training without it", err)
    if config.train.html:
        history = read_jsonl(run_dir / "log.jsonl") if (run_dir / "log.jsonl").is_file() else []
        out.append(
            HtmlLogger(
                run_dir / "live", title=f"pix2pix: {run_dir.name}", history=history, loss_panels=method.loss_panels
            )
        )
    return out + list(extra or [])
