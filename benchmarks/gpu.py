"""CUDA: the paper's step in each fast mode against the reference's step, in one run.

The paper's configuration (unet_256, 70x70 PatchGAN, 256 px) at batch 1 and batch 16, trained as
our loop trains it in each mode (float32; bf16 autocast; + channels_last; + torch.compile), and the
same step as the field's reference computes it (benchmarks/reference_step.py: eager float32, NCHW,
PyTorch's default Adam), all timed interleaved with the GPU synchronised around every step.

MFU is the step's FLOPs (counted by PyTorch's FlopCounterMode on the eager step) per second,
divided by the matrix peak measured here in the step's dtype (a large matmul, fastest of several
runs; float32 convolutions run as TF32 by PyTorch's default, so float32 steps are divided by the
TF32 matmul peak). Peak memory is torch.cuda.max_memory_allocated over that mode's steps.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from reference_step import ReferenceStep
from steps import PAPER, OurStep, step_flops
from timing import best_time

# name -> (amp, channels_last, compile): each mode adds one switch to the one before it.
MODES: dict[str, tuple[str, str, bool]] = {
    "fp32": ("off", "off", False),
    "bf16": ("bf16", "off", False),
    "bf16_channels_last": ("bf16", "on", False),
    "bf16_channels_last_compile": ("bf16", "on", True),
}


def matmul_peaks(device: torch.device, n: int = 8192) -> dict[str, float]:
    """TFLOP/s of an n^3 matmul in bf16, TF32 and strict float32 (fastest of 5 after warm-up)."""
    out = {}
    sync = torch.cuda.synchronize
    for name, dtype, tf32 in (
        ("bf16", torch.bfloat16, False),
        ("tf32", torch.float32, True),
        ("fp32", torch.float32, False),
    ):
        before = torch.backends.cuda.matmul.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = tf32
        try:
            a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
            out[name] = 2 * n**3 / best_time(lambda a=a, b=b: a @ b, repeat=5, warmup=3, sync=sync) / 1e12
        finally:
            torch.backends.cuda.matmul.allow_tf32 = before
    return out


def time_steps(steps: dict[str, Any], *, repeat: int, warmup: int) -> dict[str, dict[str, float]]:
    """Median seconds and peak memory of each step, run in turn (A, B, A, B, ...) after warm-up."""
    sync = torch.cuda.synchronize
    for _ in range(warmup):
        for fn in steps.values():
            fn()
    sync()
    times: dict[str, list[float]] = {k: [] for k in steps}
    memory = dict.fromkeys(steps, 0)
    for _ in range(repeat):
        for k, fn in steps.items():
            torch.cuda.reset_peak_memory_stats()
            sync()
            t = time.perf_counter()
            fn()
            sync()
            times[k].append(time.perf_counter() - t)
            memory[k] = max(memory[k], torch.cuda.max_memory_allocated())
    return {k: {"step_s": sorted(v)[len(v) // 2], "peak_mem_gib": memory[k] / 2**30} for k, v in times.items()}


def bench_cuda(
    *,
    batches: tuple[int, ...] = (1, 16),
    repeat: int = 20,
    modes: dict | None = None,
    peaks: dict[str, float] | None = None,
) -> dict[str, Any]:
    """For each batch: every mode's and the reference's step time, img/s, MFU, peak memory
    (`peaks`: the matmul peaks measured earlier in this process, else measured now)."""
    device = torch.device("cuda")
    torch.backends.cudnn.benchmark = True  # as training does: fixed sizes, fastest kernels picked once
    modes = MODES if modes is None else modes
    peaks = matmul_peaks(device) if peaks is None else peaks
    result: dict[str, Any] = {
        "gpu": torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "peak_tflops": peaks,
        "batches": {},
    }
    for batch in batches:
        over = {**PAPER, "batch_size": batch}
        steps: dict[str, Any] = {}
        flops: dict[str, float] = {}
        compile_s: dict[str, float] = {}
        for name, (amp, cl, compiled) in modes.items():
            step = OurStep({**over, "channels_last": cl}, device, amp=amp, compile=compiled)
            t = time.perf_counter()
            step()  # the first step compiles (where asked) and picks cuDNN kernels
            torch.cuda.synchronize()
            compile_s[name] = time.perf_counter() - t
            flops[name] = flops.get("fp32") or step_flops(step)  # every mode computes the same FLOPs
            steps[name] = step
        reference = ReferenceStep(batch=batch, size=256, device=device)
        steps["reference"] = reference.step
        flops["reference"] = step_flops(reference.step)
        timed = time_steps(steps, repeat=repeat, warmup=3)
        rows = {}
        for name, row in timed.items():
            dtype = "bf16" if name != "reference" and modes[name][0] == "bf16" else "tf32"
            rows[name] = {
                **row,
                "img_per_s": batch / row["step_s"],
                "tflop_per_step": flops[name] / 1e12,
                "mfu": flops[name] / row["step_s"] / (peaks[dtype] * 1e12),
                "mfu_of": dtype,
                "first_step_s": compile_s.get(name, 0.0),
            }
        ref = rows["reference"]["step_s"]
        for name in rows:
            if name != "reference":
                rows[name]["speedup_vs_reference"] = ref / rows[name]["step_s"]
        result["batches"][str(batch)] = rows
        del steps, reference
        torch.cuda.empty_cache()
    return result


def lines_of(result: dict[str, Any]) -> list[str]:
    peaks = result["peak_tflops"]
    out = [
        f"{result['gpu']}, torch {result['torch']}; measured matmul peaks: bf16 {peaks['bf16']:.0f}, "
        f"TF32 {peaks['tf32']:.0f}, fp32 {peaks['fp32']:.0f} TFLOP/s",
        "paper config (unet_256, 70x70 PatchGAN, 256 px); speed-up over the reference's step in the same run",
    ]
    for batch, rows in result["batches"].items():
        out.append(f"batch {batch}:")
        out.append(
            f"  {'mode':28s} {'ms/step':>8s} {'img/s':>8s} {'MFU':>6s} {'peak GiB':>8s} {'x ref':>6s} "
            f"{'1st step s':>10s}"
        )
        for name, r in rows.items():
            speed = f"{r['speedup_vs_reference']:6.2f}" if "speedup_vs_reference" in r else f"{'1.00':>6s}"
            out.append(
                f"  {name:28s} {r['step_s'] * 1e3:8.2f} {r['img_per_s']:8.1f} {r['mfu'] * 100:5.1f}% "
                f"{r['peak_mem_gib']:8.2f} {speed} {r['first_step_s']:10.1f}"
            )
    return out
