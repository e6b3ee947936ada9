"""Building blocks shared by generators and discriminators: norm layers and weight init."""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch.nn as nn

NORMS = ("batch", "instance", "syncbatch", "none")
INIT_TYPES = ("normal", "xavier", "kaiming", "orthogonal")


def get_norm_layer(norm: str) -> Callable[[int], nn.Module]:
    """Return a factory `f(num_channels) -> nn.Module` for the named normalisation."""
    if norm == "batch":
        return functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True)
    if norm == "syncbatch":
        # Built as BatchNorm2d; training converts it with SyncBatchNorm.convert_sync_batchnorm
        # under torch.distributed, so the same module tree loads on one process.
        return functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True)
    if norm == "instance":
        # As in the paper's code: no affine parameters and no running statistics.
        return functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
    if norm == "none":
        return lambda num_channels: nn.Identity()
    raise ValueError(f"unknown norm {norm!r}; valid: {', '.join(NORMS)}")


def uses_bias(norm: str) -> bool:
    """Only a conv with no norm after it needs a bias.

    BatchNorm and InstanceNorm both subtract the per-channel mean, so a bias before them has a
    zero gradient. (The reference implementation keeps one before InstanceNorm: a dead parameter
    that Adam, which normalises its float-noise gradient, walks around at random.)
    """
    return norm == "none"


def init_weights(module: nn.Module, init_type: str = "normal", init_gain: float = 0.02) -> None:
    """Initialise conv and linear weights in place (the paper: normal with std 0.02)."""
    if init_type not in INIT_TYPES:
        raise ValueError(f"unknown init_type {init_type!r}; valid: {', '.join(INIT_TYPES)}")

    def init_fn(m: nn.Module) -> None:
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            if init_type == "normal":
                nn.init.normal_(m.weight, 0.0, init_gain)
            elif init_type == "xavier":
                nn.init.xavier_normal_(m.weight, gain=init_gain)
            elif init_type == "kaiming":
                nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in")
            else:
                nn.init.orthogonal_(m.weight, gain=init_gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, init_gain)
            nn.init.zeros_(m.bias)

    module.apply(init_fn)
