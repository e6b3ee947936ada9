"""Exponential moving average of a network's weights."""

from __future__ import annotations

import copy

import torch
import torch.nn as nn


class EMA:
    """Exponential moving average of a module's weights; buffers (BatchNorm statistics) are copied.

    Averaging smooths the step-to-step oscillation of GAN training, which shows as speckle noise
    in a single snapshot's outputs (StyleGAN and EDM sample from EMA weights for this reason).
    """

    def __init__(self, module: nn.Module, decay: float) -> None:
        self.decay = decay
        self.module = copy.deepcopy(module).eval()
        self.module.requires_grad_(False)

    @torch.no_grad()
    def update(self, module: nn.Module, step: int) -> None:
        # Warm-up: early on the average forgets fast, so the random init does not linger in it.
        decay = min(self.decay, (1 + step) / (10 + step))
        ema_params = list(self.module.parameters())
        torch._foreach_lerp_(ema_params, [p.detach() for p in module.parameters()], 1.0 - decay)
        for b_ema, b in zip(self.module.buffers(), module.buffers()):
            b_ema.copy_(b)
