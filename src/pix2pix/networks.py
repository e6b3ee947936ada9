"""Each model family's networks (its architecture): which networks it has, which one translates
which way, their channels, how a ModelConfig builds them, and the family's own config defaults.

What a family trains with them (optimizers, the step) is methods/; reading a run (inference,
evaluation, export, the server) needs only this module, so it never imports training code.
`FAMILIES` is the one list of model family names (config validation and `--model` read it).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch.nn as nn

from .hints import hint_channels
from .models import build_discriminator, build_generator, init_weights
from .models.registry import Registry

FAMILIES = Registry("method")


def make_generator(
    cfg: Any, *, init: bool = True, input_nc: int | None = None, output_nc: int | None = None
) -> nn.Module:
    """The generator a ModelConfig describes, initialised as it says.

    `input_nc` / `output_nc` override the config's channels: a hints model takes extra input
    channels, CycleGAN's B -> A generator runs the other way.
    """
    g = build_generator(
        cfg.generator,
        input_nc=cfg.input_nc if input_nc is None else input_nc,
        output_nc=cfg.output_nc if output_nc is None else output_nc,
        ngf=cfg.ngf,
        norm=cfg.norm,
        dropout=cfg.dropout,
    )
    if init:
        init_weights(g, cfg.init_type, cfg.init_gain)
    return g


def make_discriminator(cfg: Any, *, init: bool = True, input_nc: int | None = None) -> nn.Module:
    """The discriminator a ModelConfig describes. By default it is pix2pix's conditional one, which
    sees input and output channels concatenated; `input_nc` sets what it sees (CycleGAN's judge one
    domain's images alone)."""
    d = build_discriminator(
        cfg.discriminator,
        input_nc=cfg.input_nc + cfg.output_nc if input_nc is None else input_nc,
        ndf=cfg.ndf,
        n_layers=cfg.n_layers_d,
        norm=cfg.norm,
    )
    if init:
        init_weights(d, cfg.init_type, cfg.init_gain)
    return d


class Family:
    """A model family's architecture. Subclasses set the class attributes and `build_network`."""

    name: ClassVar[str] = ""
    paired: ClassVar[bool] = True  # trains on pairs (A and B cropped alike) or on unpaired images
    network_names: ClassVar[tuple[str, ...]] = ("generator",)  # in the order they are initialised
    generators: ClassVar[dict[str, str]] = {"AtoB": "generator"}  # direction -> network that translates it
    # Config defaults of the family, applied under any file or option (config.build_config).
    defaults: ClassVar[dict[str, Any]] = {}

    @classmethod
    def build_network(cls, mc: Any, name: str, *, init: bool = True) -> nn.Module:
        raise NotImplementedError

    @classmethod
    def generator_channels(cls, mc: Any, direction: str) -> tuple[int, int, int]:
        """(image channels in, extra conditioning channels, channels out) of the generator for `direction`."""
        cls.generator_name(direction)
        return (mc.input_nc, 0, mc.output_nc) if direction == "AtoB" else (mc.output_nc, 0, mc.input_nc)

    @classmethod
    def generator_name(cls, direction: str) -> str:
        if direction not in cls.generators:
            raise ValueError(f"a {cls.name} model translates {' and '.join(cls.generators)}, not {direction!r}")
        return cls.generators[direction]


@FAMILIES.register("pix2pix")
class Pix2PixNetworks(Family):
    """pix2pix: a generator (with hints, it also takes a hint map) and a conditional discriminator."""

    name = "pix2pix"
    network_names = ("generator", "discriminator")

    @classmethod
    def build_network(cls, mc: Any, name: str, *, init: bool = True) -> nn.Module:
        if name == "generator":
            in_nc, extra, out_nc = cls.generator_channels(mc, "AtoB")
            return make_generator(mc, init=init, input_nc=in_nc + extra, output_nc=out_nc)
        if name == "discriminator":
            return make_discriminator(mc, init=init)  # sees (line art, image): never the hints
        raise ValueError(f"pix2pix has no network {name!r}")

    @classmethod
    def generator_channels(cls, mc: Any, direction: str) -> tuple[int, int, int]:
        if direction != "AtoB":
            raise ValueError(f"a pix2pix model translates AtoB only, not {direction!r}")
        return mc.input_nc, hint_channels(mc.output_nc) if mc.hints else 0, mc.output_nc


@FAMILIES.register("cyclegan")
class CycleGANNetworks(Family):
    """CycleGAN: generators A -> B ("generator") and B -> A, a discriminator for each domain."""

    name = "cyclegan"
    paired = False
    network_names = ("generator", "generator_ba", "discriminator_b", "discriminator_a")
    generators = {"AtoB": "generator", "BtoA": "generator_ba"}
    # The reference's (Zhu et al. 2017): ResNet-9 generators, instance norm, no dropout, LSGAN, unpaired
    # data; the 70x70 PatchGAN, Adam 2e-4 / 0.5, batch 1 and linear decay are shared with pix2pix.
    defaults = {
        "generator": "resnet_9blocks",
        "norm": "instance",
        "dropout": False,
        "gan_mode": "lsgan",
        "dataset_mode": "unpaired",
    }

    @classmethod
    def build_network(cls, mc: Any, name: str, *, init: bool = True) -> nn.Module:
        if name == "generator":
            return make_generator(mc, init=init, input_nc=mc.input_nc, output_nc=mc.output_nc)
        if name == "generator_ba":
            return make_generator(mc, init=init, input_nc=mc.output_nc, output_nc=mc.input_nc)
        if name == "discriminator_b":  # unconditional: it sees B images alone
            return make_discriminator(mc, init=init, input_nc=mc.output_nc)
        if name == "discriminator_a":
            return make_discriminator(mc, init=init, input_nc=mc.input_nc)
        raise ValueError(f"cyclegan has no network {name!r}")


def family_for(config: Any) -> type[Family]:
    """The architecture of a Config's (or ModelConfig's) model family."""
    mc = getattr(config, "model", config)
    return FAMILIES.get(mc.method)
