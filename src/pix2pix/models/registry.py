"""timm-style decorator registries: a name maps to a constructor, filled at import time."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch.nn as nn


class Registry:
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Callable[..., nn.Module]] = {}

    def register(self, name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
        def decorator(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = fn
            return fn

        return decorator

    def names(self) -> list[str]:
        return sorted(self._entries)

    def build(self, name: str, **kwargs: Any) -> nn.Module:
        if name not in self._entries:
            raise ValueError(f"unknown {self.kind} {name!r}; valid: {', '.join(self.names())}")
        return self._entries[name](**kwargs)

    def __contains__(self, name: str) -> bool:
        return name in self._entries
