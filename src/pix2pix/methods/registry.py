"""The registry of model families: `--model NAME` (config model.method) picks one."""

from __future__ import annotations

from ..models.registry import Registry

METHODS = Registry("method")
register_method = METHODS.register
