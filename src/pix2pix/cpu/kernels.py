"""Conv2d / ConvTranspose2d that train as GEMMs on CPU, and the timing that picks them per layer.

A U-Net's inner layers hold most of its weights on feature maps of 1x1 to 8x8. There, oneDNN's
convolution spends its time reformatting the weight and its gradient rather than multiplying.
Written as im2col + one matrix multiply (Conv2d) or one matrix multiply + col2im (ConvTranspose2d),
the same arithmetic runs in MKL's GEMM straight from the weight as stored, and autograd derives the
backward pass (again GEMMs plus fold/unfold). The same holds under bf16 autocast on CPUs with
native bf16, where oneDNN reorders the freshly cast bf16 weight into its blocked layout at every call.

Layers with only a few output channels (a PatchGAN's 1-channel head, a U-Net's RGB output layer)
have a GEMM form of their own: one product of the input with every kernel tap's weights, then a
shifted sum of those small response planes (`conv2d_taps`, `conv_transpose2d_taps`), where im2col
would copy the wide input kernel-size times for an output of 1-3 channels.

The result equals the plain layer's up to float summation order (tests/test_fast_paths.py). The
classes are subclasses of torch's, which `cpu.convert` swaps in for a plain model's layers when a
run starts, so checkpoints, init and exports see ordinary Conv2d / ConvTranspose2d; the GEMM path
is taken only while training on CPU, in float32 or under bf16 autocast. Which form a layer trains
in is chosen by timing both at the start of training, per layer shape and dtype, as
cudnn.benchmark does on GPUs (`time_kernels`; cached per CPU model, cpu/choices.py); without
timing, the fixed rule takes GEMM for narrow layers and for layers whose weight has at least
`GEMM_MIN_WEIGHT_RATIO` times as many elements as their input. The measured gains are in
docs/speed.md, with the commands that measure them.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn as nn
import torch.nn.functional as F

GEMM_MIN_WEIGHT_RATIO = 32.0  # weight elements per input element at which GEMM wins (benchmarks/cpu_detail.py)
GEMM_DTYPES = (torch.float32, torch.bfloat16)  # the compute dtypes that have a GEMM form
NARROW_MAX_OUT = 3  # layers with at most this many output channels (an image, a score map) multiply per tap


def compute_dtype(x: torch.Tensor) -> torch.dtype:
    """The dtype a CPU layer multiplies `x` in: the autocast dtype where CPU autocast is on."""
    if x.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
        return torch.get_autocast_dtype("cpu")
    return x.dtype


def _use_gemm(module: nn.Module, x: torch.Tensor) -> bool:
    if not (
        module.training
        and x.device.type == "cpu"
        and x.dim() == 4
        and not torch.jit.is_tracing()
        and not torch.compiler.is_compiling()
    ):
        return False
    dtype = compute_dtype(x)
    if dtype not in GEMM_DTYPES:
        return False
    chosen = getattr(module, "kernel_choice", {}).get((tuple(x.shape), dtype))  # set by time_kernels
    if chosen is not None:
        return chosen == "gemm"
    return rule_says_gemm(module, x.shape)


def rule_says_gemm(module: nn.Module, shape: tuple[int, ...] | torch.Size) -> bool:
    """The fixed rule: GEMM for a narrow layer (`is_narrow`), and where the weight has
    >= GEMM_MIN_WEIGHT_RATIO elements per input element."""
    if is_narrow(module):
        return True
    n = 1
    for d in shape:
        n *= d
    return module.weight.numel() >= GEMM_MIN_WEIGHT_RATIO * n


def is_narrow(module: nn.Module) -> bool:
    """Whether a layer's GEMM form is the per-tap one: few output channels and a kernel wider than 1x1."""
    return module.out_channels <= NARROW_MAX_OUT and tuple(module.kernel_size) != (1, 1)


# Both forms keep activations as contiguous (pixels, channels) rows, so that MKL sees every product
# of the forward and backward pass (X W^T, G W, G^T X) in a layout it multiplies at full speed;
# some transposed small-N layouts are 10x slower on this CPU.


def conv2d_gemm(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, stride: int, padding: int
) -> torch.Tensor:
    """F.conv2d (groups 1, dilation 1, zero padding) as im2col + one GEMM over the whole batch."""
    b, _, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    h_out = (h + 2 * padding - kh) // stride + 1
    w_out = (w + 2 * padding - kw) // stride + 1
    cols = F.unfold(x, (kh, kw), padding=padding, stride=stride)  # (B, C_in*kh*kw, L)
    rows = cols.transpose(1, 2).reshape(b * h_out * w_out, -1).contiguous()  # (B*L, C_in*kh*kw)
    out = F.linear(rows, weight.reshape(c_out, -1), bias)  # (B*L, C_out); linear's backward: G W and G^T X
    return out.view(b, h_out, w_out, c_out).permute(0, 3, 1, 2).contiguous()


def conv_transpose2d_gemm(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, stride: int, padding: int
) -> torch.Tensor:
    """F.conv_transpose2d (groups 1, dilation 1, no output padding) as one GEMM + col2im."""
    b, c_in, h, w = x.shape
    _, c_out, kh, kw = weight.shape
    h_out = (h - 1) * stride - 2 * padding + kh
    w_out = (w - 1) * stride - 2 * padding + kw
    rows = x.permute(0, 2, 3, 1).reshape(b * h * w, c_in).contiguous()  # (B*H*W, C_in)
    cols = rows @ weight.reshape(c_in, -1)  # (B*H*W, C_out*kh*kw); the weight grad is X^T G, as stored
    cols = cols.view(b, h * w, -1).transpose(1, 2)  # (B, C_out*kh*kw, H*W)
    out = F.fold(cols, (h_out, w_out), (kh, kw), padding=padding, stride=stride)
    return out if bias is None else out + bias.to(out.dtype).view(1, -1, 1, 1)  # bf16 stays bf16 under autocast


def conv2d_taps(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, stride: int, padding: int
) -> torch.Tensor:
    """F.conv2d (groups 1, dilation 1, zero padding) for few output channels, as one GEMM and a shifted sum.

    (C_out*kh*kw, C_in) x (C_in, pixels) gives every kernel tap's response at every padded input
    pixel; an output pixel is the sum of its kh*kw taps' responses at the pixels it covers. The
    input is read once (im2col would copy it kh*kw times), in its own layout: a channels_last input
    (a PatchGAN's on CPU) multiplies as (pixels, C_in) x (C_in, C_out*kh*kw). The taps are summed in
    float32, as oneDNN accumulates, and the result returned in the product's dtype (bf16 under
    autocast).
    """
    b, c_in, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    if padding:
        x = F.pad(x, (padding, padding, padding, padding))
    hp, wp = h + 2 * padding, w + 2 * padding
    h_out, w_out = (hp - kh) // stride + 1, (wp - kw) // stride + 1
    taps = weight.permute(0, 2, 3, 1).reshape(c_out * kh * kw, c_in)
    if x.is_contiguous() or not x.is_contiguous(memory_format=torch.channels_last):
        planes = torch.matmul(taps, x.reshape(b, c_in, hp * wp))  # (B, C_out*kh*kw, Hp*Wp)
        planes = planes.view(b, c_out, kh, kw, hp, wp).permute(0, 4, 5, 1, 2, 3)
    else:
        planes = torch.matmul(x.permute(0, 2, 3, 1).reshape(b, hp * wp, c_in), taps.t())  # (B, Hp*Wp, C_out*kh*kw)
        planes = planes.view(b, hp, wp, c_out, kh, kw)
    acc = planes.to(torch.promote_types(planes.dtype, torch.float32))  # (B, Hp, Wp, C_out, kh, kw)
    out = sum(
        acc[:, i : i + stride * (h_out - 1) + 1 : stride, j : j + stride * (w_out - 1) + 1 : stride, :, i, j]
        for i in range(kh)
        for j in range(kw)
    )  # (B, H_out, W_out, C_out)
    return _with_bias(out.permute(0, 3, 1, 2), bias, planes.dtype)


def conv_transpose2d_taps(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, stride: int, padding: int
) -> torch.Tensor:
    """F.conv_transpose2d (groups 1, dilation 1, no output padding) for few output channels: one
    GEMM straight from the NCHW input, (C_out*kh*kw, C_in) x (C_in, pixels), then col2im in float32."""
    b, c_in, h, w = x.shape
    _, c_out, kh, kw = weight.shape
    h_out = (h - 1) * stride - 2 * padding + kh
    w_out = (w - 1) * stride - 2 * padding + kw
    cols = torch.matmul(weight.reshape(c_in, c_out * kh * kw).t(), x.reshape(b, c_in, h * w))  # (B, C_out*kh*kw, H*W)
    out = F.fold(
        cols.to(torch.promote_types(cols.dtype, torch.float32)),
        (h_out, w_out),
        (kh, kw),
        padding=padding,
        stride=stride,
    )
    return _with_bias(out, bias, cols.dtype)


def _with_bias(out: torch.Tensor, bias: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor:
    """A per-tap form's result, summed in float32 (or wider): the bias added there, then back to the
    products' dtype (bf16 under autocast), as oneDNN rounds once at the end."""
    if bias is not None:
        out = out + bias.to(out.dtype).view(1, -1, 1, 1)
    return out.to(dtype)


def train_weight(module: nn.Conv2d | nn.ConvTranspose2d, x: torch.Tensor) -> torch.Tensor:
    """The weight a forward multiplies: in CPU bf16 training, the bf16 copy that the optimizer keeps
    of it where it keeps one (cpu/bf16_copies.py), else the weight itself.

    The optimizer's update writes the copy. A weight changed anywhere else (a checkpoint loaded
    into it) has a newer version than the one the copy holds, and is copied again here."""
    w = module.weight
    copy = getattr(w, "bf16_copy", None)
    if copy is None or not module.training or x.device.type != "cpu" or compute_dtype(x) != torch.bfloat16:
        return w
    if copy.source_version != w._version:
        with torch.no_grad():
            copy.copy_(w)
        copy.source_version = w._version
    return copy.requires_grad_(w.requires_grad)  # frozen with the weight (a discriminator in the G phase)


def _gemm_compatible(m: nn.Conv2d | nn.ConvTranspose2d) -> bool:
    square = lambda t: len(set(t)) == 1  # noqa: E731
    return (
        m.groups == 1
        and m.dilation == (1, 1)
        and m.padding_mode == "zeros"
        and isinstance(m.padding, tuple)
        and square(m.padding)
        and square(m.stride)
        and getattr(m, "output_padding", (0, 0)) == (0, 0)
    )


class Conv2d(nn.Conv2d):
    """nn.Conv2d whose CPU training forward on weight-heavy layers is im2col + GEMM (same result)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = train_weight(self, x)
        if _gemm_compatible(self) and _use_gemm(self, x):
            form = conv2d_taps if is_narrow(self) else conv2d_gemm
            return form(x, weight, self.bias, self.stride[0], self.padding[0])
        return self._conv_forward(x, weight, self.bias)


class ConvTranspose2d(nn.ConvTranspose2d):
    """nn.ConvTranspose2d whose CPU training forward on weight-heavy layers is GEMM + col2im (same result)."""

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        if output_size is not None:
            return super().forward(x, output_size)
        weight = train_weight(self, x)
        if _gemm_compatible(self) and _use_gemm(self, x):
            form = conv_transpose2d_taps if is_narrow(self) else conv_transpose2d_gemm
            return form(x, weight, self.bias, self.stride[0], self.padding[0])
        if weight is self.weight:
            return super().forward(x)
        return F.conv_transpose2d(
            x, weight, self.bias, self.stride, self.padding, self.output_padding, self.groups, self.dilation
        )


def convert_layer(module: nn.Module) -> bool:
    """Make a plain nn.Conv2d / nn.ConvTranspose2d one of the classes above, in place (its class, not
    its parameters, changes: optimizers and state dicts see the same tensors). Returns whether it did."""
    if type(module) is nn.Conv2d:
        module.__class__ = Conv2d
    elif type(module) is nn.ConvTranspose2d:
        module.__class__ = ConvTranspose2d
    else:
        return False
    return True


# --- kernel choice by timing -------------------------------------------------------------------


def cpu_signature() -> str:
    """What the timings depend on: CPU model, SIMD level, threads and the torch build."""
    import platform

    model = platform.processor() or ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    capability, threads = torch.backends.cpu.get_cpu_capability(), torch.get_num_threads()
    return f"{model} | {capability} | {threads} threads | torch {torch.__version__}"


def layer_key(module: nn.Module, shape: tuple[int, ...], dtype: torch.dtype = torch.float32) -> str:
    m = module
    suffix = "" if dtype == torch.float32 else f" {str(dtype).removeprefix('torch.')}"  # float32 keys as before
    form = "[taps]" if is_narrow(m) else ""  # not the im2col form that earlier caches timed for these layers
    return (
        f"{type(m).__name__}{form}({m.in_channels},{m.out_channels},k{m.kernel_size[0]},s{m.stride[0]},"
        f"p{m.padding[0]},bias={m.bias is not None}) in {'x'.join(map(str, shape))}{suffix}"
    )


def autocast_to(dtype: torch.dtype) -> contextlib.AbstractContextManager:
    """CPU autocast to `dtype`, or nothing for float32."""
    return contextlib.nullcontext() if dtype == torch.float32 else torch.autocast("cpu", dtype=dtype)


def _time_form(
    module: nn.Module, x: torch.Tensor, grad: torch.Tensor, gemm: bool, repeat: int, dtype: torch.dtype
) -> float:
    import time

    module.kernel_choice[(tuple(x.shape), dtype)] = "gemm" if gemm else "onednn"
    times = []
    for _ in range(repeat + 1):  # the first round warms up
        t = time.perf_counter()
        with autocast_to(dtype):
            y = module(x)
        y.backward(grad)
        times.append(time.perf_counter() - t)
    module.zero_grad(set_to_none=True)
    return sorted(times[1:])[len(times[1:]) // 2]


def layer_inputs(
    model: nn.Module, example: torch.Tensor, dtype: torch.dtype = torch.float32
) -> list[tuple[nn.Module, tuple[int, ...], torch.dtype]]:
    """(layer, input shape, input dtype) of each GEMM-capable layer that `example` runs through, in
    order, computing in `dtype` (bf16: under CPU autocast)."""
    shapes: list[tuple[nn.Module, tuple[int, ...], torch.dtype]] = []
    hooks = [
        m.register_forward_hook(lambda mod, inp, out: shapes.append((mod, tuple(inp[0].shape), inp[0].dtype)))
        for m in model.modules()
        if isinstance(m, (Conv2d, ConvTranspose2d)) and _gemm_compatible(m)
    ]
    was_training = model.training
    try:
        with torch.no_grad(), autocast_to(dtype):
            model.eval()(example)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return shapes


def time_kernels(
    model: nn.Module,
    example: torch.Tensor,
    *,
    cache: dict[str, dict[str, str]] | None = None,
    repeat: int = 3,
    dtype: torch.dtype = torch.float32,
) -> dict[str, str]:
    """Time both forms (oneDNN, GEMM) of every GEMM-capable layer of `model` on the input shapes
    that `example` gives them, forward and backward, computing in `dtype` (float32, or bfloat16
    under CPU autocast), and set each layer to the faster one for that shape and dtype.

    `cache` maps cpu_signature() -> {layer_key: 'gemm' | 'onednn'}; known shapes are not timed
    again, and new ones are added. Returns this model's choices {layer_key: form}.
    """
    shapes = layer_inputs(model, example, dtype)
    was_training = model.training
    known = cache.setdefault(cpu_signature(), {}) if cache is not None else {}
    choices: dict[str, str] = {}
    gen = torch.Generator().manual_seed(0)
    for module, shape, in_dtype in shapes:
        module.kernel_choice = getattr(module, "kernel_choice", {})
        key = layer_key(module, shape, dtype)
        if key not in known:
            x = torch.randn(shape, generator=gen, device=module.weight.device).to(in_dtype).requires_grad_(True)
            with torch.no_grad(), autocast_to(dtype):
                out = module.train()(x)
            # From `gen`, not the global RNG: a run that times its kernels must draw what one that
            # read them from the cache draws (the same command trains the same weights).
            grad = torch.randn(out.shape, generator=gen, device=out.device).to(out.dtype)
            onednn = _time_form(module, x, grad, False, repeat, dtype)
            gemm = _time_form(module, x, grad, True, repeat, dtype)
            known[key] = "gemm" if gemm < onednn else "onednn"
        module.kernel_choice[(shape, dtype)] = known[key]
        choices[key] = known[key]
    model.train(was_training)
    return choices
