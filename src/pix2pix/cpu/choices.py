"""CPU settings for training: the memory allocator, the precision `amp auto` takes, and the choice
of convolution kernels. What is chosen by timing is timed once per machine and cached, so the same
command on the same machine trains the same weights.

Kernels. A U-Net's weight-heavy layers train faster as plain matrix products than as oneDNN
convolutions on some CPUs and shapes, and slower on others (cpu/kernels.py). Which is faster
is measured at the start of a run, per layer shape, and cached per CPU model (`choose_kernels`).

Allocator. A training step allocates and frees the same few hundred tensors every step. glibc's
malloc serves blocks over its mmap threshold (128 kB, adjusting upwards) with fresh mmap'd pages
and returns them on free, so every step faults every page of every large activation in again: on
the main job (64 px, batch 16) thousands of page faults per step, a large share of the step's
time (docs/speed.md). Raising the mmap threshold and the trim threshold keeps freed blocks in the
heap for the next step (what jemalloc or tcmalloc would do); the price is that the process keeps
its peak memory until it exits, which a training run does anyway.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import logging
import os
import sys
from pathlib import Path

import torch
import torch.nn as nn

from ..distributed import broadcast_from_rank0, rank, world_size
from ..io import atomic_write_text, cache_dir
from .kernels import autocast_to, cpu_signature

log = logging.getLogger(__name__)

# mallopt parameters (glibc's malloc.h).
M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3
M_MMAP_MAX = -4
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's largest (64-bit): bigger blocks still map and unmap
TOP_PAD = 64 * 1024 * 1024
_done = False


def keep_freed_memory() -> bool:
    """Let glibc's malloc reuse freed blocks instead of returning them to the kernel (see above).

    Returns whether it applied: only on Linux with glibc; elsewhere it does nothing.
    """
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    settings = [(M_MMAP_THRESHOLD, MMAP_THRESHOLD), (M_TRIM_THRESHOLD, 2**31 - 1), (M_TOP_PAD, TOP_PAD)]
    if os.environ.get("PIX2PIX_NO_MMAP", "1") == "1":
        settings.append((M_MMAP_MAX, 0))
    ok = all(mallopt(param, value) == 1 for param, value in settings)
    _done = ok
    log.debug("glibc malloc keeps freed memory: %s", ok)
    return ok


def cache_file() -> Path:
    """The kernel-choice cache, in pix2pix's cache folder (io.cache_dir)."""
    return cache_dir() / "cpu_kernels.json"


def _read_cache() -> dict:
    path = cache_file()
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, json.JSONDecodeError):
        return {}


def _write_cache(cache: dict) -> None:
    try:
        atomic_write_text(cache_file(), json.dumps(cache, indent=1, sort_keys=True) + "\n")
    except OSError as err:
        log.info("CPU choices not cached (%s)", err)


def choose_cpu_bf16(generator: nn.Module, example: torch.Tensor) -> tuple[bool, str]:
    """Whether `amp auto` trains this generator in bf16 on this CPU, and how that was decided:
    timed once per (CPU, torch build, generator, input shape) by `calibrate_cpu_bf16` and
    kept in cache_file(), so every later run of the same command on this machine computes in the
    same precision (and trains the same weights) instead of timing again and perhaps deciding the
    other way. Rank 0 decides under torchrun; the caller broadcasts."""
    params = sum(p.numel() for p in generator.parameters())
    key = f"amp {type(generator).__name__} {params} params, input {'x'.join(map(str, example.shape))}"
    cache = _read_cache()
    known = cache.setdefault(cpu_signature(), {})
    if key in known:
        return known[key] == "bf16", "cached for this CPU"
    use_bf16 = calibrate_cpu_bf16(generator, example)
    known[key] = "bf16" if use_bf16 else "fp32"
    _write_cache(cache)
    return use_bf16, "measured, now cached for this CPU"


def choose_kernels(
    networks: dict[str, tuple[nn.Module, torch.Tensor]], dtype: torch.dtype | None = None
) -> dict[str, str]:
    """Time oneDNN against GEMM for every GEMM-capable layer of each (network, example input), in
    the dtype the run computes in (`Precision.dtype`: None for float32, or the autocast dtype), set
    each layer to the faster form, and keep the choices in cache_file() for the next run. A dtype
    without a GEMM form (fp16) has nothing to choose: it returns {}.

    Under torchrun, rank 0 times and the others take its choices, so every rank runs the same
    kernels. An unwritable cache is not an error: the run just times again next time.
    """
    from .kernels import GEMM_DTYPES, time_kernels

    dtype = dtype or torch.float32
    if dtype not in GEMM_DTYPES:
        return {}
    cache = _read_cache()
    choices: dict[str, str] = {}
    if rank() == 0:
        with torch.random.fork_rng(devices=[]):  # timing (and the layers' dropout) must not move the run's RNG
            for module, example in networks.values():
                choices.update(time_kernels(module, example, cache=cache, dtype=dtype))
        _write_cache(cache)
    if world_size() > 1:
        choices = broadcast_from_rank0(choices)
        for module, example in networks.values():  # apply rank 0's choices by layer and shape
            _apply(module, example, choices, dtype)
    return choices


def _apply(model: nn.Module, example: torch.Tensor, choices: dict[str, str], dtype: torch.dtype) -> None:
    from .kernels import layer_inputs, layer_key

    for module, shape, _ in layer_inputs(model, example, dtype):
        key = layer_key(module, shape, dtype)
        if key in choices:
            module.kernel_choice = {**getattr(module, "kernel_choice", {}), (shape, dtype): choices[key]}


def calibrate_cpu_bf16(generator: nn.Module, example: torch.Tensor, *, repeat: int = 3, margin: float = 0.9) -> bool:
    """Whether bf16 autocast trains `generator` faster on this CPU: time its forward and backward
    on `example` (a copy of it, so nothing changes) in float32 and in bf16, interleaved; bf16 must
    take under `margin` of the float32 time and give finite outputs and gradients."""
    import copy
    import time

    model = copy.deepcopy(generator).train()
    x = example.detach().clone()

    def run(bf16: bool) -> tuple[float, bool]:
        t = time.perf_counter()
        with autocast_to(torch.bfloat16 if bf16 else torch.float32):
            out = model(x)
        out.float().mean().backward()
        finite = bool(torch.isfinite(out).all()) and all(
            p.grad is None or bool(torch.isfinite(p.grad).all()) for p in model.parameters()
        )
        model.zero_grad(set_to_none=True)
        return time.perf_counter() - t, finite

    with torch.random.fork_rng(devices=[]):  # dropout draws here must not move the run's RNG
        run(False), run(True)  # warm up both
        fp32, bf16, finite = [], [], True
        for _ in range(repeat):
            t32, _ = run(False)
            t16, ok = run(True)
            fp32.append(t32)
            bf16.append(t16)
            finite &= ok
    return finite and sorted(bf16)[len(bf16) // 2] < margin * sorted(fp32)[len(fp32) // 2]
