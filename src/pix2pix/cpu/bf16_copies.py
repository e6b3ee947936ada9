"""bf16 copies of the weight-heavy layers' weights for CPU bf16 training, updated by Adam.

Under CPU bf16 autocast, every forward casts each float32 weight to bf16 and every backward casts
its bf16 gradient back to float32, which Adam then reads again: per weight and step ~12 bytes of
memory traffic on top of Adam's 28. unet_256 holds 54 M weights, most of them in layers that do
little arithmetic on 1x1 to 8x8 maps, so those casts are a noticeable share of the paper step
(docs/speed.md).

With copies (`keep_bf16_copies`), each such layer (cpu/kernels.py) multiplies a bf16 copy of
its weight, a leaf tensor whose gradient stays bf16, and one fused kernel per weight reads that
gradient, updates Adam's float32 state and weight, and writes the new bf16 copy. The update is
Adam's (torch.optim.Adam's formula, in float32, run as a step pre-hook of the optimizer); the bf16
values the layer multiplies and the
gradients Adam reads are the ones autocast gives. The optimizer's state and state dict are
torch.optim.Adam's, so checkpoints and resume do not change. A weight changed outside the
optimizer (a loaded checkpoint) is noticed by its version counter and copied again.

The kernel is compiled (torch.compile, C++ on CPU) once per process; where that fails (no
compiler), `keep_bf16_copies` keeps none and the run trains as before.
"""

from __future__ import annotations

import contextlib
import logging
import math
import warnings
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn as nn

log = logging.getLogger(__name__)


def _update_copied(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
    """An optimizer step pre-hook: Adam's update of every weight kept as a bf16 copy, from the copy's
    bf16 gradient, in one fused kernel per weight that also writes the new copy. The weight itself
    has no gradient, so the optimizer's own step then skips it."""
    with torch.no_grad():
        for group in optimizer.param_groups:
            (beta1, beta2), lr, eps = group["betas"], group["lr"], group["eps"]
            for p in group["params"]:
                copy = getattr(p, "bf16_copy", None)
                if copy is None or copy.grad is None:
                    continue  # an ordinary weight: the optimizer's step updates it
                state = optimizer.state[p]
                if not state:  # as torch.optim.Adam initialises it
                    state["step"] = torch.zeros((), dtype=torch.float32, device=p.device)
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] += 1
                t = float(state["step"])
                scalars = torch.tensor(
                    [beta1, beta2, lr / (1 - beta1**t), math.sqrt(1 - beta2**t), eps], dtype=torch.float32
                )  # (5,): a tensor, so the compiled kernel does not specialise on their values
                _adam_bf16_kernel()(
                    p.view(-1),
                    copy.grad.view(-1),
                    state["exp_avg"].view(-1),
                    state["exp_avg_sq"].view(-1),
                    copy.detach().view(-1),
                    scalars,
                )
                copy.grad = None
                copy.source_version = p._version  # the copy now holds this version of the weight


def _adam_bf16(
    p: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    copy: torch.Tensor,
    scalars: torch.Tensor,
) -> None:
    """One Adam update of flat float32 `p` from its bf16 `grad`, in place; `copy` gets bf16(p)."""
    beta1, beta2, step_size, bias_correction2_sqrt, eps = scalars.unbind()
    g = grad.float()
    exp_avg.mul_(beta1).add_((1 - beta1) * g)
    exp_avg_sq.mul_(beta2).add_((1 - beta2) * g * g)
    p.sub_(step_size * exp_avg / (exp_avg_sq.sqrt() / bias_correction2_sqrt + eps))
    copy.copy_(p)


_kernel: Any = None
_works: bool | None = None


def _adam_bf16_kernel() -> Any:
    """`_adam_bf16` compiled, for any length (one kernel for every weight)."""
    global _kernel
    if _kernel is None:
        with _torch_deprecations_ignored():
            compiled = torch.compile(_adam_bf16, dynamic=True)

        def kernel(*args: torch.Tensor) -> None:
            with _torch_deprecations_ignored():  # the first call compiles
                compiled(*args)

        _kernel = kernel
    return _kernel


@contextlib.contextmanager
def _torch_deprecations_ignored() -> Iterator[None]:
    """Compiling imports parts of torch that warn about torch's own deprecated APIs (torch.jit in
    torch.utils.mkldnn); those warnings are not the caller's to act on."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        yield


def bf16_kernel_works() -> bool:
    """Whether the fused update compiles and runs here (it needs a C++ compiler) and matches the
    eager formula; tried once per process on a few numbers."""
    global _works
    if _works is None:

        def update(fn: Any) -> list[torch.Tensor]:  # p, exp_avg, exp_avg_sq, copy after one update by `fn`
            gen = torch.Generator().manual_seed(0)
            p, exp_avg, exp_avg_sq = torch.randn(3, 37, generator=gen).unbind()
            grad = torch.randn(37, generator=gen).bfloat16()
            out = [p, exp_avg, exp_avg_sq.abs(), torch.empty(37, dtype=torch.bfloat16)]
            fn(out[0], grad, out[1], out[2], out[3], torch.tensor([0.5, 0.999, 2e-4 / 0.5, math.sqrt(0.001), 1e-8]))
            return out

        try:
            got, want = update(_adam_bf16_kernel()), update(_adam_bf16)
            _works = all(torch.allclose(a.float(), b.float(), rtol=1e-5, atol=1e-6) for a, b in zip(got, want))
        except Exception as err:  # noqa: BLE001 (inductor raises many kinds: no compiler, build errors)
            log.info("bf16 weight copies off: the fused update does not compile here (%s)", err)
            _works = False
    return _works


MIN_COPIED_WEIGHTS = (
    16_000_000  # below this, the casts cost too little to be worth compiling the kernel (docs/speed.md)
)


def keep_bf16_copies(
    networks: list[nn.Module],
    optimizers: list[torch.optim.Optimizer],
    *,
    device: torch.device,
    dtype: torch.dtype | None,
    world: int = 1,
    grad_accum: int = 1,
    compiled: bool = False,
    min_weights: int | None = None,
) -> int:
    """In CPU bf16 training (`device` cpu, autocast `dtype` bf16) in one process, without gradient
    accumulation or torch.compile, give the weight of every GEMM-capable layer in `networks`
    (cpu/kernels.py; `convert` makes them) a bf16 copy, and make each of `optimizers` update the
    copied weights (a step pre-hook), where those weights number at least `min_weights` (default
    MIN_COPIED_WEIGHTS). Returns how many layers have one: 0 elsewhere (DDP would not see the
    copies' gradients, accumulating them in bf16 would lose precision, and small models gain
    nothing), and where the fused update does not compile here. docs/speed.md has what they save."""
    from .kernels import Conv2d, ConvTranspose2d

    if device.type != "cpu" or dtype != torch.bfloat16 or world > 1 or grad_accum > 1 or compiled:
        return 0
    layers = [m for net in networks for m in net.modules() if isinstance(m, (Conv2d, ConvTranspose2d))]
    layers = [m for m in layers if m.weight.is_contiguous()]  # the fused update reads weights as flat vectors
    least = MIN_COPIED_WEIGHTS if min_weights is None else min_weights
    if sum(m.weight.numel() for m in layers) < least or not bf16_kernel_works():
        return 0
    for m in layers:
        if getattr(m.weight, "bf16_copy", None) is None:
            copy = torch.empty_like(m.weight, dtype=torch.bfloat16)
            copy.source_version = -1  # holds no version yet: the first bf16 forward fills it (kernels.train_weight)
            m.weight.bf16_copy = copy
    for opt in optimizers:
        if not getattr(opt, "updates_bf16_copies", False):
            opt.register_step_pre_hook(_update_copied)
            opt.updates_bf16_copies = True
    return len(layers)
