"""Adam, with bf16 copies of the weight-heavy layers' weights for CPU bf16 training.

Under CPU bf16 autocast, every forward casts each float32 weight to bf16 and every backward casts
its bf16 gradient back to float32, which Adam then reads again: per weight and step ~12 bytes of
memory traffic on top of Adam's 28. unet_256 holds 54 M weights, most of them in layers that do
little arithmetic on 1x1 to 8x8 maps, so on a 2-core CPU those casts cost ~5% of the paper step.

With copies (`keep_bf16_copies`), each such layer (models/gemm_conv.py) multiplies a bf16 copy of
its weight, a leaf tensor whose gradient stays bf16, and one fused kernel per weight reads that
gradient, updates Adam's float32 state and weight, and writes the new bf16 copy. The update is
Adam's (torch.optim.Adam's formula, in float32); the bf16 values the layer multiplies and the
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


class Adam(torch.optim.Adam):
    """torch.optim.Adam (fused where the device has it) that also updates weights kept as bf16 copies."""

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        for group in self.param_groups:
            (beta1, beta2), lr, eps = group["betas"], group["lr"], group["eps"]
            for p in group["params"]:
                copy = getattr(p, "bf16_copy", None)
                if copy is None or copy.grad is None:
                    continue  # an ordinary weight: Adam below
                state = self.state[p]
                if not state:  # as torch.optim.Adam initialises it
                    state["step"] = torch.zeros((), dtype=torch.float32, device=p.device)
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] += 1
                t = float(state["step"])
                scalars = torch.tensor(
                    [beta1, beta2, lr / (1 - beta1**t), math.sqrt(1 - beta2**t), eps], dtype=torch.float32
                )  # (5,): a tensor, so the compiled kernel does not specialise on their values
                _adam_bf16_kernel()(p.view(-1), copy.grad.view(-1), state["exp_avg"].view(-1),
                                    state["exp_avg_sq"].view(-1), copy.detach().view(-1), scalars)  # fmt: skip
                copy.grad = None
                copy.source_version = p._version  # the copy now holds this version of the weight
        return super().step(closure)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """torch.optim.Adam's, then every state tensor laid out in memory as its weight is. Adam's
        fused and foreach kernels silently mix up elements when the two differ: a run that saved a
        weight's state in one layout (channels_last on a GPU, a PatchGAN on CPU) and resumes with the
        weight in the other would otherwise train on scrambled moments."""
        super().load_state_dict(state_dict)
        for p, state in self.state.items():
            for k, v in state.items():
                if torch.is_tensor(v) and v.shape == p.shape and v.stride() != p.stride():
                    state[k] = torch.empty_like(p, dtype=v.dtype).copy_(v)

    def zero_grad(self, set_to_none: bool = True) -> None:
        super().zero_grad(set_to_none)
        for group in self.param_groups:
            for p in group["params"]:
                copy = getattr(p, "bf16_copy", None)
                if copy is not None:
                    copy.grad = None


def _adam_bf16(p: torch.Tensor, grad: torch.Tensor, exp_avg: torch.Tensor, exp_avg_sq: torch.Tensor,
               copy: torch.Tensor, scalars: torch.Tensor) -> None:  # fmt: skip
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


MIN_COPIED_WEIGHTS = 16_000_000  # below this, the casts cost ~1% of a step: not worth compiling the kernel (6-20 s)


def keep_bf16_copies(networks: list[nn.Module], *, device: torch.device, dtype: torch.dtype | None, world: int = 1,
                     grad_accum: int = 1, compiled: bool = False, min_weights: int | None = None) -> int:  # fmt: skip
    """In CPU bf16 training (`device` cpu, autocast `dtype` bf16) in one process, without gradient
    accumulation or torch.compile, give the weight of every layer in `networks` that can multiply a
    bf16 copy (models/gemm_conv.py) such a copy, for `Adam` to update, where those weights number
    at least `min_weights` (default MIN_COPIED_WEIGHTS). Returns how many layers have one: 0
    elsewhere (DDP would not see the copies' gradients, accumulating them in bf16 would lose
    precision, and small models gain nothing), and where the fused update does not compile here.

    unet_256 (54 M weights): paper step 3-4% faster on a 2-core CPU with native bf16; the main
    job's U-Net (1.8 M at 16 filters) did not move, so it keeps none."""
    from .models.gemm_conv import Conv2d, ConvTranspose2d

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
            copy.source_version = -1  # holds no version yet: the first bf16 forward fills it (gemm_conv.train_weight)
            m.weight.bf16_copy = copy
    return len(layers)
