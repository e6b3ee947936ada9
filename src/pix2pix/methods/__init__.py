"""Model families' training: what each trains (optimizers, step, logged losses), registered by the
family's name. Their architectures are networks.py; the generic run around a step is training/loop.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import cyclegan, pix2pix  # noqa: E402, F401, I001  (fill the registry)
from .base import Method, StepInfo
from .registry import METHODS, register_method

if TYPE_CHECKING:
    from ..config import Config


def get_method(name: str) -> type[Method]:
    """The method class registered as `name`; an unknown name raises a ValueError listing the valid ones."""
    return METHODS.get(name)


def method_for(config: Config) -> type[Method]:
    return get_method(config.model.method)


__all__ = ["METHODS", "Method", "StepInfo", "get_method", "method_for", "register_method"]
