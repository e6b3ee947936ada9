"""Timing helpers for the benchmarks: medians, interleaved A/B timing, and the measured peaks.

Every figure the benchmarks print is a median of repeated timings (a peak: the fastest run), all
in one process; functions that are compared run interleaved so the machine's drift hits all alike.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from pix2pix.precision import cpu_flags, cpu_has_native_bf16


def timings(
    fn: Callable[[], Any], *, repeat: int, warmup: int = 1, sync: Callable[[], None] = lambda: None
) -> list[float]:
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t)
    return times


def median_time(
    fn: Callable[[], Any], *, repeat: int, warmup: int = 1, sync: Callable[[], None] = lambda: None
) -> float:
    return statistics.median(timings(fn, repeat=repeat, warmup=warmup, sync=sync))


def best_time(fn: Callable[[], Any], *, repeat: int, warmup: int = 1, sync: Callable[[], None] = lambda: None) -> float:
    """The fastest of `repeat` runs: a peak is what the machine can do, and noise only slows it."""
    return min(timings(fn, repeat=repeat, warmup=warmup, sync=sync))


def interleaved(fns: dict[str, Callable[[], Any]], *, repeat: int, warmup: int = 2) -> dict[str, float]:
    """Median seconds of each function, called in turn (A, B, A, B, ...) so drift hits all alike."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeat):
        for k, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}


# --- peaks --------------------------------------------------------------------------------------

CONV_SHAPES = [  # (C_in, C_out, H) of convolutions in the models: 4x4, stride 2, batch 4
    (64, 128, 128),
    (128, 256, 64),
    (256, 512, 32),
    (512, 512, 16),
]


def measure_peaks(device: torch.device, quick: bool) -> dict[str, dict[str, float]]:
    """GFLOP/s of each kernel, per dtype: {'fp32': {'matmul 2048': ..., 'conv ...': ...}, 'bf16': {...}}."""
    repeat = 5 if quick else 9  # each kernel's fastest run counts
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    dtypes = [torch.float32] + ([torch.bfloat16] if device.type == "cuda" or cpu_has_native_bf16() else [])
    out: dict[str, dict[str, float]] = {}
    for dtype in dtypes:
        name = {torch.float32: "fp32", torch.bfloat16: "bf16"}[dtype]
        kernels: dict[str, float] = {}
        n = 2048
        a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
        kernels[f"matmul {n}^3"] = (
            2 * n**3 / best_time(lambda a=a, b=b: a @ b, repeat=repeat, warmup=2, sync=sync) / 1e9
        )
        for c_in, c_out, h in CONV_SHAPES[: 2 if quick else None]:
            w = torch.randn(c_out, c_in, 4, 4, device=device, dtype=dtype)
            for layout in ("nchw", "channels_last"):
                x = torch.randn(4, c_in, h, h, device=device, dtype=dtype)
                if layout == "channels_last":
                    x, w2 = (
                        x.contiguous(memory_format=torch.channels_last),
                        w.contiguous(memory_format=torch.channels_last),
                    )
                else:
                    w2 = w
                flops = 2 * 4 * c_out * c_in * 16 * (h // 2) ** 2
                t = best_time(
                    lambda x=x, w2=w2: F.conv2d(x, w2, stride=2, padding=1), repeat=repeat, warmup=2, sync=sync
                )
                kernels[f"conv {c_in}->{c_out} @{h}px {layout}"] = flops / t / 1e9
        out[name] = kernels
    return out


def peak_of(peaks: dict[str, dict[str, float]], dtype: str) -> float:
    return max(peaks[dtype].values())


def report(lines: list[str], result: dict[str, Any], json_path: Path | None) -> None:
    """Print the table, then the same figures as JSON (also written to `json_path` if given)."""
    print("\n".join(lines))
    print(json.dumps(result, indent=2))
    if json_path:
        json_path.write_text(json.dumps(result, indent=2))


def cpu_summary() -> str:
    """The CPU model and the SIMD features that decide kernel speed here."""
    from pix2pix.cpu.kernels import cpu_signature

    flags = cpu_flags()
    wanted = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile")
    return f"{cpu_signature()}; flags: {' '.join(f for f in wanted if f in flags) or 'unknown'}"
