"""Conditional discriminators: PatchGAN (70x70 with n_layers=3) and PixelGAN (1x1)."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .layers import get_norm_layer, uses_bias
from .registry import Registry

DISCRIMINATORS = Registry("discriminator")
register_discriminator = DISCRIMINATORS.register


class PatchDiscriminator(nn.Module):
    """Classifies overlapping patches as real or fake; returns a (B, 1, h, w) map of logits.

    The input is the condition and the image concatenated on channels, so `input_nc` is
    input_nc + output_nc of the generator. n_layers=3 gives a 70x70 receptive field.
    """

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
        layers.append(nn.Conv2d(ndf * mult, 1, 4, 1, 1))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class PixelDiscriminator(nn.Module):
    """1x1 PatchGAN: judges every pixel on its own colour, with no spatial context.

    Its 1x1 convolutions are a per-pixel MLP. On CPU it runs as one: pixels as rows of a
    (B*H*W, C) matrix through F.linear and batch norm over rows. oneDNN's convolutions spend
    their time on layout for these shapes (a 32 -> 1 convolution's backward took 5 ms at 64 px,
    batch 16, for 4 MFLOP); the matrix form is the same arithmetic, several times faster.
    The modules stay Conv2d / BatchNorm2d, so checkpoints, CUDA and exports see a plain model.
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
        # The row form covers batch norm and no norm; instance norm takes the convolution path.
        self._rows_ok = all(isinstance(m, (nn.Conv2d, nn.BatchNorm2d, nn.LeakyReLU, nn.Identity)) for m in self.model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self._rows_ok and x.device.type == "cpu" and x.dim() == 4 and not torch.jit.is_tracing()
                and not torch.compiler.is_compiling()):  # fmt: skip
            return self.model(x)
        b, c, h, w = x.shape
        rows = x.permute(0, 2, 3, 1).reshape(b * h * w, c)  # (B*H*W, C): one row per pixel
        for layer in self.model:
            if isinstance(layer, nn.Conv2d):
                rows = F.linear(rows, layer.weight.flatten(1), layer.bias)
            elif isinstance(layer, nn.BatchNorm2d):
                rows = batch_norm_rows(layer, rows)
            else:
                rows = layer(rows)
        return rows.view(b, h, w, -1).permute(0, 3, 1, 2)  # (B, 1, H, W)


def batch_norm_rows(bn: nn.BatchNorm2d, rows: torch.Tensor) -> torch.Tensor:
    """What `bn` computes on (B, C, H, W), on the same values as (B*H*W, C) rows: the same batch
    statistics, running averages and step counter as BatchNorm2d.forward."""
    momentum = 0.0 if bn.momentum is None else bn.momentum
    if bn.training and bn.track_running_stats and bn.num_batches_tracked is not None:
        bn.num_batches_tracked.add_(1)
        momentum = 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum
    use_batch = bn.training or bn.running_mean is None
    return F.batch_norm(
        rows, bn.running_mean if not bn.training or bn.track_running_stats else None,
        bn.running_var if not bn.training or bn.track_running_stats else None, bn.weight, bn.bias, use_batch,
        momentum, bn.eps,
    )  # fmt: skip


@register_discriminator("patch")
def patch(**kwargs: object) -> nn.Module:
    return PatchDiscriminator(**kwargs)  # type: ignore[arg-type]


@register_discriminator("pixel")
def pixel(**kwargs: object) -> nn.Module:
    return PixelDiscriminator(**kwargs)  # type: ignore[arg-type]


def build_discriminator(name: str, **kwargs: object) -> nn.Module:
    """Build a registered discriminator; an unknown name raises a ValueError listing the valid ones."""
    return DISCRIMINATORS.build(name, **kwargs)
