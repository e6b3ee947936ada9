"""The networks a ModelConfig describes: its generator and discriminator, built from the models'
registries and initialised as the config says."""

from __future__ import annotations

import torch.nn as nn

from .config import ModelConfig
from .models import build_discriminator, build_generator, init_weights


def make_generator(cfg: ModelConfig, *, init: bool = True, input_nc: int | None = None,
                   output_nc: int | None = None) -> nn.Module:  # fmt: skip
    """The generator a ModelConfig describes, initialised as it says.

    `input_nc` / `output_nc` override the config's channels: a hints model takes extra input
    channels, CycleGAN's B -> A generator runs the other way.
    """
    g = build_generator(
        cfg.generator, input_nc=cfg.input_nc if input_nc is None else input_nc,
        output_nc=cfg.output_nc if output_nc is None else output_nc, ngf=cfg.ngf, norm=cfg.norm, dropout=cfg.dropout,
    )  # fmt: skip
    if init:
        init_weights(g, cfg.init_type, cfg.init_gain)
    return g


def make_discriminator(cfg: ModelConfig, *, init: bool = True, input_nc: int | None = None) -> nn.Module:
    """The discriminator a ModelConfig describes. By default it is pix2pix's conditional one, which
    sees input and output channels concatenated; `input_nc` sets what it sees (CycleGAN's judge one
    domain's images alone)."""
    d = build_discriminator(
        cfg.discriminator, input_nc=cfg.input_nc + cfg.output_nc if input_nc is None else input_nc, ndf=cfg.ndf,
        n_layers=cfg.n_layers_d, norm=cfg.norm,
    )  # fmt: skip
    if init:
        init_weights(d, cfg.init_type, cfg.init_gain)
    return d
