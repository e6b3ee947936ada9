"""Device settings for a training step: mixed precision, memory format, compilation.

CPU: without native bf16 (AVX-512-BF16 or AMX, detected from PyTorch's CPU capability), bf16
autocast is tens of times slower than float32, so `amp bf16` is refused there with an error that
says why, and `auto` stays float32. With native bf16, `amp bf16` runs bf16 autocast, and `auto`
picks it only where a short calibration at the start of training (the generator's forward and
backward, both ways) shows it faster and finite (cpu/choices.py). On CUDA, `auto` means
bf16 autocast (no loss scaling needed) where the GPU supports it, else fp16 with a GradScaler.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 dot products natively (AVX-512-BF16 or AMX-BF16).

    PyTorch's feature probe answers where it has one (`get_cpu_capability()` only names the vector
    width, "AVX512", which AVX-512 CPUs without bf16 share); else the kernel's CPU flags (Linux)."""
    probe = getattr(getattr(torch._C, "_cpu", None), "_get_cpu_capability", None)
    features = probe() if probe is not None else None
    if isinstance(features, dict) and "avx512_bf16" in features:
        return bool(features.get("avx512_bf16") or features.get("amx_bf16"))
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


def cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


@dataclass
class Precision:
    device: torch.device
    dtype: torch.dtype | None  # autocast dtype, None for float32
    scaler: Any  # torch.amp.GradScaler for fp16, else None
    channels_last: bool

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def backward(self, loss: torch.Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        if self.scaler is not None:
            self.scaler.step(optimizer)
        else:
            optimizer.step()

    def update(self) -> None:
        if self.scaler is not None:
            self.scaler.update()

    def to_memory_format(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def prepare(self, module: nn.Module) -> nn.Module:
        """`module` with channels_last weights where this run uses channels_last (CUDA by default;
        on CPU, cpu.convert lays out the networks that run faster so)."""
        return module.to(memory_format=torch.channels_last) if self.channels_last else module

    @property
    def label(self) -> str:
        name = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]
        return f"{self.device.type} {name}{' channels_last' if self.channels_last else ''}"


def resolve_precision(amp: str, channels_last: str, device: torch.device) -> Precision:
    """Turn the config's amp / channels_last switches into concrete settings for `device`."""
    dtype: torch.dtype | None = None
    if device.type == "cuda":
        if amp in ("auto", "bf16"):
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            if amp == "bf16" and dtype != torch.bfloat16:
                raise ValueError("amp 'bf16' was asked for, but this GPU has no bf16 support; use amp 'fp16'")
        elif amp == "fp16":
            dtype = torch.float16
    elif amp in ("bf16", "fp16"):
        if amp == "fp16" or not cpu_has_native_bf16():
            raise ValueError(
                f"amp {amp!r} on this CPU ({torch.backends.cpu.get_cpu_capability()}) would be far slower than "
                "float32: it has no native support; use amp 'off' (or 'auto')"
            )
        dtype = torch.bfloat16
    scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 and device.type == "cuda" else None
    use_cl = channels_last == "on" or (channels_last == "auto" and device.type == "cuda")
    return Precision(device=device, dtype=dtype, scaler=scaler, channels_last=use_cl)
