"""Conditional discriminators: PatchGAN (70x70 with n_layers=3) and PixelGAN (1x1)."""

from __future__ import annotations

import torch
import torch.nn as nn

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
        layers.append(nn.Conv2d(ndf * mult, 1, 4, 1, 1))  # (B, 1, h, w) logits
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class PixelDiscriminator(nn.Module):
    """1x1 PatchGAN: judges every pixel on its own colour, with no spatial context.

    Its 1x1 convolutions are a per-pixel MLP.
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
        return self.model(x)


@register_discriminator("patch")
def patch(**kwargs: object) -> nn.Module:
    return PatchDiscriminator(**kwargs)  # type: ignore[arg-type]


@register_discriminator("pixel")
def pixel(**kwargs: object) -> nn.Module:
    return PixelDiscriminator(**kwargs)  # type: ignore[arg-type]


def build_discriminator(name: str, **kwargs: object) -> nn.Module:
    """Build a registered discriminator; an unknown name raises a ValueError listing the valid ones."""
    return DISCRIMINATORS.build(name, **kwargs)
