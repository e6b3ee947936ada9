"""Generators: the pix2pix U-Net and the ResNet generator (for unpaired training later)."""

from __future__ import annotations

import torch
import torch.nn as nn

from .layers import get_norm_layer, uses_bias
from .registry import Registry

GENERATORS = Registry("generator")
register_generator = GENERATORS.register

UNET_SIZES = (32, 64, 128, 256, 512, 1024)


class UnetGenerator(nn.Module):
    """U-Net with skip connections between mirrored encoder and decoder blocks.

    With `num_downs` downsamplings a (B, C, H, W) input needs H and W divisible by 2**num_downs;
    at H = W = 2**num_downs the bottleneck is 1x1, as in the paper (unet_256: 8 downsamplings).
    Encoder channels: ngf, 2ngf, 4ngf, then 8ngf for the rest. Dropout 0.5 sits in the three
    innermost decoder blocks, the paper's only source of noise.
    """

    def __init__(
        self,
        *,
        input_nc: int = 3,
        output_nc: int = 3,
        num_downs: int = 8,
        ngf: int = 64,
        norm: str = "batch",
        dropout: bool = True,
    ) -> None:
        super().__init__()
        if num_downs < 2:
            raise ValueError(f"num_downs must be at least 2, got {num_downs}")
        norm_layer = get_norm_layer(norm)
        bias = uses_bias(norm)
        chans = [ngf * min(2**i, 8) for i in range(num_downs)]
        self.size_multiple = 2**num_downs

        downs = [nn.Sequential(nn.Conv2d(input_nc, chans[0], 4, 2, 1, bias=bias))]
        for i in range(1, num_downs):
            innermost = i == num_downs - 1
            layers: list[nn.Module] = [nn.LeakyReLU(0.2, True), nn.Conv2d(chans[i - 1], chans[i], 4, 2, 1, bias=bias)]
            if not innermost:  # the 1x1 bottleneck carries no norm, as in the paper's code
                layers.append(norm_layer(chans[i]))
            downs.append(nn.Sequential(*layers))
        self.downs = nn.ModuleList(downs)

        # ups[i] mirrors downs[i]; all but the innermost take [skip, below] concatenated.
        ups: list[nn.Module] = [
            nn.Sequential(nn.ReLU(True), nn.ConvTranspose2d(2 * chans[0], output_nc, 4, 2, 1), nn.Tanh())
        ]
        for i in range(1, num_downs):
            innermost = i == num_downs - 1
            in_ch = chans[i] if innermost else 2 * chans[i]
            layers = [
                nn.ReLU(True),
                nn.ConvTranspose2d(in_ch, chans[i - 1], 4, 2, 1, bias=bias),
                norm_layer(chans[i - 1]),
            ]
            if dropout and i >= num_downs - 3:
                layers.append(nn.Dropout(0.5))
            ups.append(nn.Sequential(*layers))
        self.ups = nn.ModuleList(ups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        h = x  # (B, input_nc, H, W)
        for down in self.downs:
            h = down(h)
            skips.append(h)  # (B, chans[i], H / 2**(i+1), W / 2**(i+1))
        h = self.ups[-1](skips[-1])
        for i in range(len(self.ups) - 2, -1, -1):
            h = self.ups[i](torch.cat([skips[i], h], dim=1))
        return h  # (B, output_nc, H, W), in [-1, 1]


def _make_unet_entry(size: int) -> None:
    num_downs = size.bit_length() - 1

    @register_generator(f"unet_{size}")
    def build(**kwargs: object) -> nn.Module:
        return UnetGenerator(num_downs=num_downs, **kwargs)  # type: ignore[arg-type]


for _size in UNET_SIZES:
    _make_unet_entry(_size)


class ResnetBlock(nn.Module):
    def __init__(self, dim: int, *, norm: str, dropout: bool) -> None:
        super().__init__()
        norm_layer = get_norm_layer(norm)
        bias = uses_bias(norm)
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, 3, bias=bias),
            norm_layer(dim),
            nn.ReLU(True),
        ]
        if dropout:
            layers.append(nn.Dropout(0.5))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), norm_layer(dim)]
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class ResnetGenerator(nn.Module):
    """Johnson et al.'s generator: 2 downsamplings, `n_blocks` residual blocks, 2 upsamplings."""

    def __init__(
        self,
        *,
        input_nc: int = 3,
        output_nc: int = 3,
        n_blocks: int = 9,
        ngf: int = 64,
        norm: str = "batch",
        dropout: bool = False,
    ) -> None:
        super().__init__()
        norm_layer = get_norm_layer(norm)
        bias = uses_bias(norm)
        self.size_multiple = 4
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(input_nc, ngf, 7, bias=bias),
            norm_layer(ngf),
            nn.ReLU(True),
        ]
        for i in range(2):
            mult = 2**i
            layers += [
                nn.Conv2d(ngf * mult, ngf * mult * 2, 3, 2, 1, bias=bias),
                norm_layer(ngf * mult * 2),
                nn.ReLU(True),
            ]
        layers += [ResnetBlock(ngf * 4, norm=norm, dropout=dropout) for _ in range(n_blocks)]
        for i in range(2):
            mult = 2 ** (2 - i)
            layers += [
                nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, 2, 1, output_padding=1, bias=bias),
                norm_layer(ngf * mult // 2),
                nn.ReLU(True),
            ]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)  # (B, output_nc, H, W)


@register_generator("resnet_6blocks")
def resnet_6blocks(**kwargs: object) -> nn.Module:
    return ResnetGenerator(n_blocks=6, **kwargs)  # type: ignore[arg-type]


@register_generator("resnet_9blocks")
def resnet_9blocks(**kwargs: object) -> nn.Module:
    return ResnetGenerator(n_blocks=9, **kwargs)  # type: ignore[arg-type]


def build_generator(name: str, **kwargs: object) -> nn.Module:
    """Build a registered generator; an unknown name raises a ValueError listing the valid ones."""
    return GENERATORS.build(name, **kwargs)


def size_multiple(name: str) -> int:
    """What a generator's input height and width must be divisible by."""
    if name.startswith("unet_") and name in GENERATORS:
        return int(name.split("_")[1])
    return 4
