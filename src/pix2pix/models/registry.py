"""timm-style decorator registries: a name maps to a constructor (or a class), filled at import time."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch.nn as nn


class Registry:
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Any] = {}

    def register(self, name: str) -> Callable[[Any], Any]:
        def decorator(fn: Any) -> Any:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = fn
            return fn

        return decorator

    def names(self) -> list[str]:
        return sorted(self._entries)

    def values(self) -> list[Any]:
        """The registered entries, in the order of their names."""
        return [self._entries[name] for name in self.names()]

    def get(self, name: str) -> Any:
        """The registered entry; an unknown name raises a ValueError listing the valid ones."""
        if name not in self._entries:
            raise ValueError(f"unknown {self.kind} {name!r}; valid: {', '.join(self.names())}")
        return self._entries[name]

    def build(self, name: str, **kwargs: Any) -> nn.Module:
        return self.get(name)(**kwargs)

    def __contains__(self, name: str) -> bool:
        return name in self._entries
