"""CPU training speed, behind two calls a run makes (nanoGPT's `compile` line, torch's
`SyncBatchNorm.convert_sync_batchnorm`): the models are plain torch layers, and nothing here
changes what they compute beyond float summation order.

    cpu.convert(net)          when the networks are built: GEMM-capable layers where they pay,
                              channels_last where a network runs faster so
    cpu.tune(...)             once the run is set up: the memory allocator, the precision `amp auto`
                              takes, each layer's kernel by timing, bf16 weight copies

kernels.py holds the GEMM forms of the convolutions and their timing, choices.py what is chosen by
timing and cached per CPU (kernels, bf16 calibration) and the allocator, bf16_copies.py the bf16
weight copies Adam updates. docs/speed.md has the measured gains, each with its command.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
import torch.nn as nn

from ..models.discriminators import PatchDiscriminator, PixelDiscriminator
from ..models.generators import UnetGenerator
from ..precision import Precision, cpu_has_native_bf16, resolve_precision
from .bf16_copies import keep_bf16_copies
from .choices import choose_cpu_bf16, choose_kernels, keep_freed_memory
from .kernels import convert_layer, is_narrow

log = logging.getLogger(__name__)


def _channels_last_input(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """A forward pre-hook: a CPU batch in channels_last, anything else as it is."""
    x = args[0]
    if x.device.type == "cpu" and x.dim() == 4:
        return (x.contiguous(memory_format=torch.channels_last), *args[1:])
    return args


def convert(net: nn.Module) -> nn.Module:
    """Make a plain network train faster on CPU, in place (same parameters, same results up to float
    summation order); networks it knows nothing about are left as they are.

    - U-Net: every convolution may train as a GEMM (kernels.py; the run times which pay).
    - PatchGAN: its narrow head multiplies per tap; weights, input and activations are channels_last,
      so oneDNN convolves them as they lie instead of reordering each activation at every layer.
    - PixelGAN: input and activations channels_last, where its 1x1 convolutions are plain
      (pixels, channels) products.
    """
    if isinstance(net, UnetGenerator):
        for m in net.modules():
            convert_layer(m)
    elif isinstance(net, PatchDiscriminator):
        for m in net.modules():
            if isinstance(m, nn.Conv2d) and is_narrow(m):
                convert_layer(m)
        net.to(memory_format=torch.channels_last)
        net.register_forward_pre_hook(_channels_last_input)
    elif isinstance(net, PixelDiscriminator):
        net.register_forward_pre_hook(_channels_last_input)
    return net


def tune(
    networks: dict[str, nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
    examples: dict[str, torch.Tensor],
    *,
    precision: Precision,
    amp: str,
    channels_last: str,
    cpu_kernels: str,
    grad_accum: int,
    compiled: bool,
    world: int,
    main: bool,
    saved_amp: str | None,
) -> tuple[Precision, str]:
    """The CPU choices of a run that is about to train: keep freed memory for the next step; on CPUs
    with native bf16, `amp auto` takes bf16 where it measures faster (`saved_amp`: what a resumed run
    chose); then each layer's faster kernel in the dtype the run computes in, and bf16 layers get
    weight copies. `examples` holds a training input of each generator by network name. Returns the
    precision to train in and how it was chosen (recorded in every checkpoint)."""
    keep_freed_memory()
    how = f"amp {amp}"
    if amp == "auto" and cpu_has_native_bf16():
        if saved_amp is not None:  # a resumed run keeps the precision it chose
            use_bf16, why = saved_amp == "bf16", "as the run chose"
        else:  # rank 0 decides (timed once per machine, then cached), every rank takes its answer
            from ..distributed import broadcast_from_rank0

            name, x = next(iter(examples.items()))
            use_bf16, why = broadcast_from_rank0(choose_cpu_bf16(networks[name], x) if main else None)
        if use_bf16:
            precision = resolve_precision("bf16", channels_last, precision.device)
        how = f"amp auto: {why}"
        log.info("amp auto on a CPU with native bf16: %s (%s)", precision.label, why)
    if cpu_kernels == "timed" and not compiled:
        choose_kernels({name: (networks[name], x) for name, x in examples.items()}, precision.dtype)
    # In bf16, one process: the layers multiply bf16 copies of their weights that Adam updates.
    copies = keep_bf16_copies(
        list(networks.values()),
        list(optimizers.values()),
        device=precision.device,
        dtype=precision.dtype,
        world=world,
        grad_accum=grad_accum,
        compiled=compiled,
    )
    if copies:
        log.info("bf16 weight copies: %d layers multiply bf16 copies that Adam updates", copies)
    return precision, how


__all__ = ["convert", "tune"]
