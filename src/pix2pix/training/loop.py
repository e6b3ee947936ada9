"""The pix2pix training loop: one function that reads top to bottom.

Per batch: generate, one discriminator step, one generator step (the paper's schedule), the
learning rates stepped per optimizer step. Everything random (weights, data order, crops, flips,
dropout) comes from `seed` and the step number, and the RNG state is saved in every checkpoint,
so on CPU a run interrupted and resumed ends with the same weights as one that was not.
"""

from __future__ import annotations

import contextlib
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
from ..data.paired import PairedDataset, dataset_for
from ..data.transforms import normalize, random_crop_flip
from ..evaluation import sample_grid, validate
from ..losses import GANLoss, discriminator_loss, generator_loss
from ..models import make_discriminator, make_generator
from .checkpoint import (
    DISCRIMINATOR_FILE,
    GENERATOR_EMA_FILE,
    GENERATOR_FILE,
    checkpoint_dir,
    load_config,
    load_training_state,
    load_weights,
    save_checkpoint,
    unwrap,
)
from .distributed import all_reduce_mean, barrier, cleanup, init_distributed, rank, world_size
from .logging import JsonlLogger, Loggers, TrainLogger, read_jsonl
from .precision import Precision, resolve_precision
from .schedule import lr_lambda

FP32 = Precision(device=torch.device("cpu"), dtype=None, scaler=None, channels_last=False)

log = logging.getLogger(__name__)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for, but no CUDA device is available")
    return torch.device(name)


def make_adam(params: Any, cfg: Any, device: torch.device) -> torch.optim.Adam:
    """Adam with the fused kernel where this torch has one for the device, else foreach.

    The fused and foreach kernels compute the same update as the default for-loop one and skip
    its per-parameter Python overhead (about 0.19 s of a 256-px step on a 2-core CPU).
    """
    kwargs: dict[str, Any] = {"lr": cfg.lr, "betas": (cfg.beta1, cfg.beta2)}
    try:
        return torch.optim.Adam(params, fused=True, **kwargs)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(params, foreach=True, **kwargs)


def set_requires_grad(module: nn.Module, flag: bool) -> None:
    for p in module.parameters():
        p.requires_grad_(flag)


def train_step(
    generator: nn.Module,
    discriminator: nn.Module,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    gan: GANLoss,
    real_a: torch.Tensor,
    real_b: torch.Tensor,
    tc: Any,
    precision: Precision | None = None,
    *,
    frozen_discriminator: nn.Module | None = None,
    accum: int = 1,
) -> dict[str, torch.Tensor]:
    """One pix2pix step: generate, update D once, update G once. Returns the mean losses (on device).

    With `accum` > 1 the batch runs as micro-batches whose gradients add up before each update;
    the G phase then regenerates its fakes instead of keeping every micro-batch's graph alive.
    `frozen_discriminator` is D outside its DDP wrapper: the G phase only needs gradients with
    respect to D's input, so it must not register a backward pass with DDP's reducer.
    """
    p = precision or FP32
    d_frozen = frozen_discriminator or discriminator
    chunks = list(zip(real_a.chunk(accum), real_b.chunk(accum)))
    totals: dict[str, torch.Tensor] = {}

    def add(losses: dict[str, torch.Tensor]) -> None:
        for k, v in losses.items():
            totals[k] = totals.get(k, 0) + v.detach() / accum

    # Update discriminator.
    set_requires_grad(d_frozen, True)
    opt_d.zero_grad(set_to_none=True)
    fakes = []
    for i, (a, b) in enumerate(chunks):
        with p.autocast(), torch.set_grad_enabled(accum == 1):
            fake_b = generator(a)  # (B, output_nc, H, W); kept with its graph when there is one chunk
        fakes.append(fake_b)
        with _no_sync(discriminator, last=i == accum - 1):
            with p.autocast():
                d_losses = discriminator_loss(discriminator, gan, a, b, fake_b, lambda_gp=tc.lambda_gp)
            p.backward(d_losses["D"] / accum)
        add(d_losses)
    p.step(opt_d)

    # Update generator (D frozen, so its weights collect no gradients).
    set_requires_grad(d_frozen, False)
    opt_g.zero_grad(set_to_none=True)
    for i, (a, b) in enumerate(chunks):
        with _no_sync(generator, last=i == accum - 1):
            with p.autocast():
                fake_b = fakes[i] if accum == 1 else generator(a)
                g_losses = generator_loss(d_frozen, gan, a, b, fake_b, lambda_l1=tc.lambda_l1, lambda_ssim=tc.lambda_ssim)
            p.backward(g_losses["G"] / accum)
        add(g_losses)
    p.step(opt_g)
    p.update()
    return totals


def _no_sync(module: nn.Module, *, last: bool) -> Any:
    """DDP's no_sync for all but the last micro-batch: gradients are all-reduced once per step."""
    inner = getattr(module, "_orig_mod", module)
    if not last and isinstance(inner, nn.parallel.DistributedDataParallel):
        return inner.no_sync()
    return contextlib.nullcontext()


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


def _val_dataset(config: Config) -> PairedDataset | None:
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

    # Models, optimizers and the lr schedule (counted in optimizer steps).
    precision = resolve_precision(tc.amp, tc.channels_last, device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input sizes: pick the fastest conv kernels once
    generator = precision.prepare(make_generator(mc).to(device))
    discriminator = precision.prepare(make_discriminator(mc).to(device))
    opt_g = make_adam(generator.parameters(), tc, device)
    opt_d = make_adam(discriminator.parameters(), tc, device)
    constant_fraction = tc.n_epochs / max(tc.n_epochs + tc.n_epochs_decay, 1)
    sched_g = LambdaLR(opt_g, lr_lambda(tc.lr_policy, total, constant_fraction))
    sched_d = LambdaLR(opt_d, lr_lambda(tc.lr_policy, total, constant_fraction))
    gan = GANLoss(tc.gan_mode).to(device)
    start_step = 0
    if state is not None:
        load_weights(generator, ckpt / GENERATOR_FILE)
        load_weights(discriminator, ckpt / DISCRIMINATOR_FILE)
        opt_g.load_state_dict(state["opt_g"])
        opt_d.load_state_dict(state["opt_d"])
        sched_g.load_state_dict(state["sched_g"])
        sched_d.load_state_dict(state["sched_d"])
        torch.set_rng_state(state["rng_cpu"])
        if device.type == "cuda" and "rng_cuda" in state:
            torch.cuda.set_rng_state(state["rng_cuda"])
        start_step = int(state["step"])
        log.info("resuming %s at step %d of %d", run_dir, start_step, total)
    elif main:
        run_dir.mkdir(parents=True, exist_ok=True)
        config.save(run_dir / "config.json")
    end_step = total if stop_at_step is None else min(total, stop_at_step)
    ema = EMA(generator, tc.ema_decay) if tc.ema_decay > 0 else None
    if ema is not None and state is not None:
        load_weights(ema.module, ckpt / GENERATOR_EMA_FILE)

    # Data parallelism: both networks in DDP; every rank starts from the same weights.
    frozen_d = discriminator
    if world > 1:
        if mc.norm == "syncbatch":
            generator = nn.SyncBatchNorm.convert_sync_batchnorm(generator)
            discriminator = nn.SyncBatchNorm.convert_sync_batchnorm(discriminator)
            frozen_d = discriminator
        ids = [device.index] if device.type == "cuda" else None
        # gradient_as_bucket_view: gradients live in the all-reduce buckets, no extra copy.
        # static_graph stays off: D runs twice per step (real, fake) and G's graph differs by phase.
        generator = nn.parallel.DistributedDataParallel(generator, device_ids=ids, gradient_as_bucket_view=True)
        discriminator = nn.parallel.DistributedDataParallel(discriminator, device_ids=ids, gradient_as_bucket_view=True)

    def save(step: int) -> None:
        if not main:  # rank 0 writes; the others hold the same state
            return
        training_state = {
            "opt_g": opt_g.state_dict(),
            "opt_d": opt_d.state_dict(),
            "sched_g": sched_g.state_dict(),
            "sched_d": sched_d.state_dict(),
            "step": step,
            "rng_cpu": torch.get_rng_state(),
            "best": best,
        }
        if device.type == "cuda":
            training_state["rng_cuda"] = torch.cuda.get_rng_state()
        meta = {"step": step, "epoch": step / steps_per_epoch, "total_steps": total}
        save_checkpoint(
            run_dir / "checkpoints" / "last", config=config, generator=generator,
            discriminator=discriminator, generator_ema=ema.module if ema is not None else None,
            training_state=training_state, meta=meta,
        )  # fmt: skip

    # Validation data, fixed sample images, and what the user watches.
    val_ds = _val_dataset(config) if main and (tc.val_every or tc.sample_every) else None
    # Fixed sample images spread over the whole val split (sorted names cluster similar images).
    samples = (
        val_ds.batch(torch.linspace(0, len(val_ds) - 1, min(tc.n_samples, len(val_ds))).round().long())
        if val_ds and tc.sample_every
        else None
    )
    better = (lambda new, old: new > old) if tc.select_by in ("psnr", "ssim") else (lambda new, old: new < old)
    best = state.get("best") if state is not None else None
    watchers = [JsonlLogger(run_dir / "log.jsonl"), *_watchers(config, run_dir), *(loggers or [])] if main else []
    logs = Loggers(watchers)
    eval_model = ema.module if ema is not None else unwrap(generator)
    # Compiled copies share parameters with the modules that are saved; only the step uses them.
    step_g, step_d = generator, discriminator
    if tc.compile:
        step_g, step_d, frozen_d = torch.compile(generator), torch.compile(discriminator), torch.compile(frozen_d)
    if main:
        log.info("training on %s x %d rank(s) for %d steps (%d per epoch), global batch %d", precision.label,
                 world, total, steps_per_epoch, tc.batch_size)  # fmt: skip

    def evaluate_now(done: int) -> None:
        nonlocal best
        if samples is not None and (done % tc.sample_every == 0 or done == end_step):
            logs.images(done, "val_samples", sample_grid(eval_model, *samples, device))
        if val_ds is None or not tc.val_every or (done % tc.val_every and done != end_step):
            return
        metrics = validate(eval_model, val_ds, device=device)
        logs.scalars(done, {f"val_{k}": round(v, 5) for k, v in metrics.items()})
        if tc.select_by and tc.select_by in metrics and (best is None or better(metrics[tc.select_by], best)):
            best = metrics[tc.select_by]
            save_checkpoint(
                run_dir / "checkpoints" / "best", config=config, generator=generator, generator_ema=ema.module if ema else None,
                meta={"step": done, "select_by": tc.select_by, "value": best, "val": metrics},
            )  # fmt: skip
    generator.train()
    discriminator.train()
    sums: dict[str, torch.Tensor] = {}
    count, t_log, t_start = 0, time.perf_counter(), time.perf_counter()
    bar = tqdm(total=total, initial=start_step, desc="train", unit="step", disable=not progress, dynamic_ncols=True)
    step = start_step
    try:
        for step, a_u8, b_u8 in iterate_batches(
            dataset, batch_size=tc.batch_size, seed=tc.seed, start_step=start_step, total_steps=end_step,
            num_workers=dc.num_workers, pin_memory=device.type == "cuda", rank=rk, world_size=world,
        ):  # fmt: skip
            # Augment: the same crop and flip for A and B, drawn from (seed, step) for the global batch.
            g = torch.Generator().manual_seed(tc.seed * 7_919 + step)
            a_u8, b_u8 = random_crop_flip(a_u8, b_u8, crop_size=dc.crop_size, flip=dc.flip, generator=g,
                                          offset=rk * local_batch, global_n=tc.batch_size)  # fmt: skip
            real_a = precision.to_memory_format(normalize(a_u8.to(device, non_blocking=True)))  # (B, in_nc, S, S)
            real_b = precision.to_memory_format(normalize(b_u8.to(device, non_blocking=True)))  # (B, out_nc, S, S)
            losses = train_step(step_g, step_d, opt_g, opt_d, gan, real_a, real_b, tc, precision,
                                frozen_discriminator=frozen_d, accum=tc.grad_accum)  # fmt: skip
            sched_g.step()
            sched_d.step()
            if ema is not None:
                ema.update(unwrap(generator), step)

            # Accumulate on the device; read back only every log_every steps.
            for k, v in losses.items():
                sums[k] = sums.get(k, 0) + v.detach()
            count += 1
            done = step + 1
            bar.update()
            if done % tc.log_every == 0 or done == end_step:
                now = time.perf_counter()
                values = {k: round(float(all_reduce_mean(v)) / count, 5) for k, v in sums.items()}
                values["lr"] = opt_g.param_groups[0]["lr"]
                values["img_per_s"] = round(count * tc.batch_size / max(now - t_log, 1e-9), 2)
                values["epoch"] = round(done / steps_per_epoch, 3)
                logs.scalars(done, values)
                shown = ("G_L1", "G_SSIM", "D")
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
