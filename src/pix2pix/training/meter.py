"""What a person watches while a run trains: loss averages, img/s and the progress bar."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from tqdm.auto import tqdm

from ..distributed import all_reduce_mean
from .logging import Loggers


@dataclass(frozen=True)
class Span:
    """The steps a run trains this time: from `start` up to `end` of its `total` (`steps_per_epoch` a pass)."""

    start: int
    end: int
    total: int
    steps_per_epoch: int


class Meter:
    """Loss averages, img/s and the progress bar: losses accumulate on the device and are read
    back only every `log_every` steps; time spent validating and saving is kept out of img/s and
    the ETA. `shown` are the losses the bar shows (the method's `shown_losses`)."""

    def __init__(
        self, span: Span, batch_size: int, log_every: int, *, shown: tuple[str, ...], logs: Loggers, progress: bool
    ) -> None:
        self.total, self.start_step, self.end_step = span.total, span.start, span.end
        self.steps_per_epoch, self.batch_size, self.log_every = span.steps_per_epoch, batch_size, log_every
        self.shown, self.logs = shown, logs
        self.sums: dict[str, torch.Tensor] = {}
        self.count = 0
        self.t_log = self.t_start = time.perf_counter()
        self.bar = tqdm(
            total=span.total, initial=span.start, desc="train", unit="step", disable=not progress, dynamic_ncols=True
        )

    def add(self, losses: dict[str, torch.Tensor], done: int, lr: float) -> None:
        """The losses of step `done` (on the device); every `log_every` steps, their means are logged."""
        for k, v in losses.items():
            self.sums[k] = self.sums.get(k, 0) + v.detach()
        self.count += 1
        self.bar.update()
        if done % self.log_every == 0 or done == self.end_step:
            now = time.perf_counter()
            values = {k: round(float(all_reduce_mean(v)) / self.count, 5) for k, v in self.sums.items()}
            values["lr"] = lr
            values["img_per_s"] = round(self.count * self.batch_size / max(now - self.t_log, 1e-9), 2)
            values["epoch"] = round(done / self.steps_per_epoch, 3)
            self.logs.scalars(done, values)
            self.bar.set_postfix({k: values[k] for k in self.shown if k in values}, refresh=False)
            self.sums, self.count, self.t_log = {}, 0, now

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Time in the block (validating, saving) counts neither towards img/s nor the ETA."""
        started = time.perf_counter()
        try:
            yield
        finally:
            pause = time.perf_counter() - started
            self.t_log += pause
            if pause > 0.01:
                self.bar.unpause()  # tqdm restarts its clock here, so the pause does not count as a step

    def close(self) -> None:
        self.bar.close()

    def summary(self, step: int) -> dict[str, Any]:
        seconds = time.perf_counter() - self.t_start
        trained = step - self.start_step
        return {
            "steps": step,
            "total_steps": self.total,
            "seconds": round(seconds, 2),
            "img_per_s": round(trained * self.batch_size / max(seconds, 1e-9), 2),
        }
