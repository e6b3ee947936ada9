"""Learning-rate schedules counted in optimizer steps: constant, then linear / step / cosine decay."""

from __future__ import annotations

import math
from collections.abc import Callable


def lr_lambda(policy: str, total_steps: int, constant_fraction: float) -> Callable[[int], float]:
    """Multiplier of the base lr at optimizer step `step` (0-based).

    The first `constant_fraction` of the steps run at the base lr (the paper's n_epochs); the rest
    decay to zero (n_epochs_decay): linearly, by cosine, or by x0.1 at each third ('step').
    """
    constant = int(round(total_steps * constant_fraction))
    decay = max(total_steps - constant, 0)

    def factor(step: int) -> float:
        if step < constant or decay == 0:
            return 1.0
        t = (step - constant) / decay  # 0 -> 1 over the decay phase
        if policy == "linear":
            return max(0.0, 1.0 - t)
        if policy == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * min(t, 1.0)))
        if policy == "step":
            return 0.1 ** min(int(t * 3), 3)
        raise ValueError(f"unknown lr_policy {policy!r}; valid: linear, step, cosine")

    return factor
