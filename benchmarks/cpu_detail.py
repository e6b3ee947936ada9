"""Where a CPU step's time goes: each U-Net layer (oneDNN against GEMM), each aten op, and
oneDNN's own log of its primitives."""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import torch
from steps import PAPER, OurStep
from timing import cpu_summary, median_time
from torch.utils.flop_counter import FlopCounterMode

from pix2pix.cpu import kernels
from pix2pix.precision import cpu_has_native_bf16


def bench_layers(overrides: dict, repeat: int, amp: str = "off") -> list[dict[str, Any]]:
    """Forward + backward of each GEMM-capable U-Net layer: oneDNN against the GEMM form, and the
    form the timing at the start of training picks; in float32, or under bf16 autocast (`amp`)."""
    step = OurStep(overrides, torch.device("cpu"), amp=amp)
    dtype = step.precision.dtype or torch.float32
    g = step.method.networks["generator"]
    example = next(iter(step.method.example_inputs(step.batch, step.cfg.data.crop_size).values()))
    names = {m: n for n, m in g.named_modules()}
    shapes = [(names[m], m, shape, in_dtype) for m, shape, in_dtype in kernels.layer_inputs(g, example, dtype)]
    g.train()
    rows = []
    for name, mod, shape, in_dtype in shapes:
        x = torch.randn(shape).to(in_dtype).requires_grad_(name != "downs.0.0")
        key = (tuple(shape), dtype)

        with torch.no_grad(), kernels.autocast_to(dtype):
            grad = torch.randn_like(mod(x))

        def run(mod: torch.nn.Module = mod, x: torch.Tensor = x, grad: torch.Tensor = grad) -> None:
            with kernels.autocast_to(dtype):
                y = mod(x)
            y.backward(grad)

        with FlopCounterMode(display=False) as counter:
            run()
        chosen = getattr(mod, "kernel_choice", {}).get(key, "rule")
        times: dict[str, list[float]] = {"onednn": [], "gemm": []}
        for _ in range(repeat + 1):  # interleaved, so drift hits both alike; the first round warms up
            for kind in ("onednn", "gemm"):
                mod.kernel_choice = {**getattr(mod, "kernel_choice", {}), key: kind}
                t = time.perf_counter()
                run()
                times[kind].append(time.perf_counter() - t)
        mod.kernel_choice[key] = chosen
        onednn, gemm = (statistics.median(v[1:]) for v in times.values())
        rows.append(
            {
                "layer": name,
                "dtype": step.dtype,
                "input": list(shape),
                "params_m": mod.weight.numel() / 1e6,
                "weight_per_input": mod.weight.numel() / x.numel(),
                "gflop": counter.get_total_flops() / 1e9,
                "onednn_ms": onednn * 1e3,
                "gemm_ms": gemm * 1e3,
                "timed_choice": chosen,
                "rule_choice": "gemm" if kernels.rule_says_gemm(mod, shape) else "onednn",
            }
        )
    return rows


def bench_ops(overrides: dict, steps: int, amp: str = "off") -> dict[str, Any]:
    """Wall time per step of every aten op one training step dispatches, summed by op name.

    Each op is timed around its own call (a dispatch mode), so the rows add up to about the step
    (less the Python between ops, plus the mode's own cost). The torch profiler's CPU table does not:
    in a bf16 paper step it charged copy_ with 80-180 ms a step, where timing the op itself gives
    ~30 ms, and its total came to 1.3x the step.
    """
    from torch.utils._python_dispatch import TorchDispatchMode

    totals: dict[str, list[float]] = {}

    class OpTimer(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
            t = time.perf_counter()
            out = func(*args, **(kwargs or {}))
            row = totals.setdefault(func.overloadpacket.__name__, [0.0, 0])
            row[0] += time.perf_counter() - t
            row[1] += 1
            return out

    step = OurStep(overrides, torch.device("cpu"), amp=amp)
    for _ in range(2):
        step()
    plain = median_time(step, repeat=steps, warmup=0)
    with OpTimer():
        for _ in range(steps):
            step()
    ops = sorted(
        ({"op": k, "ms": v[0] / steps * 1e3, "calls": v[1] // steps} for k, v in totals.items()), key=lambda r: -r["ms"]
    )
    return {
        "dtype": step.dtype,
        "step_ms": plain * 1e3,
        "ops_ms": sum(r["ms"] for r in ops),
        "ops": ops,
        "onednn": onednn_primitives(step),
    }


def onednn_primitives(step: Callable[[], Any]) -> list[dict[str, Any]]:
    """oneDNN's own account of one step: time per (primitive, implementation, direction), from its
    verbose log, which it writes to the process's stdout (captured here at the file descriptor).
    Shows what the aten rows hide: the reorders between PyTorch's layouts and oneDNN's blocked ones."""
    import os

    sys.stdout.flush()
    saved = os.dup(1)
    with tempfile.TemporaryFile(mode="w+") as log:
        os.dup2(log.fileno(), 1)
        try:
            with torch.backends.mkldnn.verbose(torch.backends.mkldnn.VERBOSE_ON):
                step()
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)
        log.seek(0)
        lines = log.read().splitlines()
    totals: dict[tuple[str, str, str], list[float]] = {}
    for line in lines:  # onednn_verbose,v1,primitive,exec,cpu,KIND,IMPL,PROP,...,TIME_MS
        fields = line.split(",")
        if len(fields) > 8 and fields[0] == "onednn_verbose" and fields[3] == "exec":
            row = totals.setdefault((fields[5], fields[6], fields[7]), [0.0, 0])
            row[0] += float(fields[-1])
            row[1] += 1
    rows = [
        {"primitive": k[0], "implementation": k[1], "direction": k[2], "ms": v[0], "calls": v[1]}
        for k, v in totals.items()
    ]
    return sorted(rows, key=lambda r: -r["ms"])


def layers_report(quick: bool) -> tuple[list[str], dict[str, Any]]:
    """`--layers`: the table and JSON of every U-Net layer in float32 (and bf16 where native)."""
    amps = ["off"] + (["bf16"] if cpu_has_native_bf16() else [])  # bf16: where the CPU has it natively
    rows = [r for amp in amps for r in bench_layers(PAPER, 5 if quick else 11, amp)]
    lines = [
        f"paper config, batch 1, forward + backward per layer; {cpu_summary()}",
        f"{'layer':10s} {'dtype':5s} {'input':>18s} {'M params':>8s} {'w/in':>6s} {'GFLOP':>6s} {'oneDNN ms':>9s} "
        f"{'GEMM ms':>8s} {'ratio':>6s} {'timed':>7s} {'rule':>7s}",
    ] + [
        f"{r['layer']:10s} {r['dtype']:5s} {str(tuple(r['input'])):>18s} {r['params_m']:8.2f} "
        f"{r['weight_per_input']:6.0f} "
        f"{r['gflop']:6.2f} {r['onednn_ms']:9.2f} {r['gemm_ms']:8.2f} {r['onednn_ms'] / r['gemm_ms']:6.2f} "
        f"{r['timed_choice']:>7s} {r['rule_choice']:>7s}"
        for r in rows
    ]
    return lines, {"cpu": cpu_summary(), "layers": rows}


def ops_report(quick: bool) -> tuple[list[str], dict[str, Any]]:
    """`--ops`: the paper step op by op and oneDNN primitive by primitive."""
    amps = ["off"] + (["bf16"] if cpu_has_native_bf16() else [])
    runs = [bench_ops(PAPER, 3 if quick else 5, amp) for amp in amps]
    lines = [f"paper config, batch 1, one training step op by op; {cpu_summary()}"]
    for run in runs:
        lines.append(f"{run['dtype']}: step {run['step_ms']:.1f} ms untimed; its ops add up to {run['ops_ms']:.1f} ms")
        lines += [f"  {r['op']:28s} {r['ms']:8.2f} ms {r['calls']:5d} calls" for r in run["ops"][:15]]
        lines.append(f"  oneDNN's own log of one step: {sum(r['ms'] for r in run['onednn']):.1f} ms in its primitives")
        lines += [
            f"    {r['primitive']:14s} {r['direction']:17s} {r['implementation']:44s} {r['ms']:7.2f} ms "
            f"{r['calls']:4d} calls"
            for r in run["onednn"][:12]
        ]
    return lines, {"cpu": cpu_summary(), "ops": runs}
