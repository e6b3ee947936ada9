"""Conditional discriminators: PatchGAN (70x70 with n_layers=3) and PixelGAN (1x1)."""

from __future__ import annotations

import torch
import torch.nn as nn

from .gemm_conv import Conv2d
from .layers import get_norm_layer, uses_bias
from .registry import Registry

DISCRIMINATORS = Registry("discriminator")
register_discriminator = DISCRIMINATORS.register


def channels_last_on_cpu(x: torch.Tensor) -> torch.Tensor:
    """A CPU batch in channels_last, the layout both discriminators run faster in there (see each
    class); anything else as it is."""
    if x.device.type == "cpu" and x.dim() == 4:
        return x.contiguous(memory_format=torch.channels_last)
    return x


class PatchDiscriminator(nn.Module):
    """Classifies overlapping patches as real or fake; returns a (B, 1, h, w) map of logits.

    The input is the condition and the image concatenated on channels, so `input_nc` is
    input_nc + output_nc of the generator. n_layers=3 gives a 70x70 receptive field.

    On CPU it runs in channels_last, activations and (through `cpu_channels_last`, which
    precision.py reads) weights: oneDNN then convolves the tensors as they lie instead of
    reordering each activation into its blocked layout and back at every layer, and the head
    multiplies its channels_last input as (pixels, channels) rows. The 70x70 PatchGAN's part of a
    paper step (256 px, batch 1) takes ~11 ms less in bf16 and ~13 ms less in float32 (of ~330 and
    ~565 ms; benchmarks/bench.py, 2-core AMD EPYC). Same result up to float summation order.
    """

    cpu_channels_last = True

    def __init__(self, *, input_nc: int = 6, ndf: int = 64, n_layers: int = 3, norm: str = "batch") -> None:
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers must be at least 1, got {n_layers}")
        norm_layer = get_norm_layer(norm)
        bias = uses_bias(norm)
        layers: list[nn.Module] = [nn.Conv2d(input_nc, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            stride = 2 if n < n_layers else 1  # the last hidden layer keeps the resolution
            layers += [
                nn.Conv2d(ndf * prev, ndf * mult, 4, stride, 1, bias=bias),
                norm_layer(ndf * mult),
                nn.LeakyReLU(0.2, True),
            ]
        # The 1-channel head trains on CPU as one GEMM over its input and a shifted sum of the 16
        # taps' planes (models/gemm_conv.py): oneDNN took ~2x as long for its 0.5% of the FLOPs.
        layers.append(Conv2d(ndf * mult, 1, 4, 1, 1))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(channels_last_on_cpu(x))


class PixelDiscriminator(nn.Module):
    """1x1 PatchGAN: judges every pixel on its own colour, with no spatial context.

    Its 1x1 convolutions are a per-pixel MLP. On CPU it runs on channels_last activations: oneDNN's
    NCHW 1x1 convolutions spend their time on layout (a 32 -> 1 convolution's backward took 5 ms at
    64 px, batch 16, for 4 MFLOP), and in channels_last each layer is a plain (pixels, channels)
    product. So the main-job step (64 px, batch 16) is 4-7% faster in float32 and 2% in bf16 than
    with the same MLP written as matrix products over rows, its earlier form (MKL's float32 products
    of these tall, narrow shapes ran at ~35 GFLOP/s here). The result is the same up to float
    summation order (tests/test_models.py).
    """

    def __init__(self, *, input_nc: int = 6, ndf: int = 64, n_layers: int = 3, norm: str = "batch") -> None:
        super().__init__()
        del n_layers  # a pixel discriminator has a fixed depth; accepted for a uniform signature
        norm_layer = get_norm_layer(norm)
        bias = uses_bias(norm)
        self.model = nn.Sequential(
            nn.Conv2d(input_nc, ndf, 1),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, ndf * 2, 1, bias=bias),
            norm_layer(ndf * 2),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * 2, 1, 1, bias=bias),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(channels_last_on_cpu(x))


@register_discriminator("patch")
def patch(**kwargs: object) -> nn.Module:
    return PatchDiscriminator(**kwargs)  # type: ignore[arg-type]


@register_discriminator("pixel")
def pixel(**kwargs: object) -> nn.Module:
    return PixelDiscriminator(**kwargs)  # type: ignore[arg-type]


def build_discriminator(name: str, **kwargs: object) -> nn.Module:
    """Build a registered discriminator; an unknown name raises a ValueError listing the valid ones."""
    return DISCRIMINATORS.build(name, **kwargs)
