"""The optimizer every method trains with: torch's Adam (fused where the device has it), whose
state loads in the memory layout of its weights."""

from __future__ import annotations

from typing import Any

import torch


class Adam(torch.optim.Adam):
    """torch.optim.Adam whose `load_state_dict` lays each state tensor out as its weight is."""

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """torch.optim.Adam's, then every state tensor laid out in memory as its weight is. Adam's
        fused and foreach kernels silently mix up elements when the two differ: a run that saved a
        weight's state in one layout (channels_last on a GPU, a PatchGAN on CPU) and resumes with the
        weight in the other would otherwise train on scrambled moments."""
        super().load_state_dict(state_dict)
        for p, state in self.state.items():
            for k, v in state.items():
                if torch.is_tensor(v) and v.shape == p.shape and v.stride() != p.stride():
                    state[k] = torch.empty_like(p, dtype=v.dtype).copy_(v)


def make_adam(params: Any, cfg: Any, device: torch.device | None = None) -> torch.optim.Adam:
    """Adam with the fused kernel where this torch has one for the device, else foreach.

    The fused and foreach kernels compute the same update as the default for-loop one and skip
    its per-parameter Python overhead (docs/speed.md has what that saves on a CPU step).
    """
    kwargs: dict[str, Any] = {"lr": cfg.lr, "betas": (cfg.beta1, cfg.beta2)}
    params = list(params)
    try:
        return Adam(params, fused=True, **kwargs)
    except (RuntimeError, TypeError, ValueError):
        return Adam(params, foreach=True, **kwargs)
