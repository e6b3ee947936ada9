"""Ending a run early and safely: on a signal (Ctrl-C, a scheduler's SIGTERM), or on a loss that is
no longer a number."""

from __future__ import annotations

import logging
import signal
import threading
import time
from types import FrameType
from typing import Any

import torch

from ..distributed import world_size

log = logging.getLogger(__name__)

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class TrainingStopped(Exception):  # noqa: N818 - a stop asked for, not an error
    """A run stopped by a signal after saving its last checkpoint; `exit_code` is the shell's
    convention for that signal (130 for SIGINT, 143 for SIGTERM)."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.signum, self.exit_code = signum, 128 + signum


class NonFiniteLoss(ValueError):
    """A loss became NaN or infinite: the run stops, keeping its last finite checkpoint."""


class GracefulStop:
    """While active, the first SIGINT or SIGTERM asks the run to stop after the current step (it then
    saves and raises TrainingStopped); a second one stops at once, as the signal would have.

    Signals within `SAME_REQUEST_S` of the first count as that one: torchrun's agent forwards the
    SIGTERM a scheduler sent to its process group, so each rank gets it twice in a few milliseconds.
    Handlers can only be installed from the main thread; elsewhere this does nothing."""

    SAME_REQUEST_S = 2.0

    def __init__(self) -> None:
        self.signum: int | None = None
        self._at = 0.0
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> GracefulStop:
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None:
            if time.monotonic() - self._at < self.SAME_REQUEST_S:
                return  # the same request, forwarded
            self.__exit__()  # a second request: stop now, as the signal would without us
            signal.raise_signal(signum)
            return
        self.signum, self._at = signum, time.monotonic()
        log.warning("%s: finishing this step and saving; send it again to stop at once", signal.Signals(signum).name)

    def requested(self, device: torch.device) -> int | None:
        """The signal that asked for a stop, agreed over every rank (a rank that got none stops
        with the others, at the same step), or None."""
        if world_size() == 1:
            return self.signum
        import torch.distributed as dist

        flag = torch.tensor([self.signum or 0], device=device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return int(flag.item()) or None


def first_nonfinite(losses: dict[str, torch.Tensor]) -> tuple[str, float] | None:
    """(name, value) of the first loss that is NaN or infinite, or None (reads the losses back)."""
    for name, value in losses.items():
        v = float(value)
        if v != v or v in (float("inf"), float("-inf")):
            return name, v
    return None
