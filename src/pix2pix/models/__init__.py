"""nn.Modules and their registries: generators, discriminators, and the layers they share.

Models take explicit keyword arguments and never see a config; `pix2pix.networks` turns a
ModelConfig into modules."""

from __future__ import annotations

from .discriminators import DISCRIMINATORS, build_discriminator, register_discriminator
from .generators import GENERATORS, build_generator, register_generator, size_multiple
from .layers import init_weights

__all__ = [
    "DISCRIMINATORS",
    "GENERATORS",
    "build_discriminator",
    "build_generator",
    "init_weights",
    "register_discriminator",
    "register_generator",
    "size_multiple",
]
