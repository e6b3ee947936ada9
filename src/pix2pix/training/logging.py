"""The one small interface the training loop logs through, and the JSONL log behind it.

The loop calls `scalars(step, {...})` and `images(step, name, grid)` and nothing else; what a user
watches (a JSONL file, TensorBoard, an HTML page) is a `TrainLogger` added to the list.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Protocol

import torch


class TrainLogger(Protocol):
    def scalars(self, step: int, values: dict[str, float]) -> None: ...

    def images(self, step: int, name: str, grid: torch.Tensor) -> None: ...

    def close(self) -> None: ...


class JsonlLogger:
    """One JSON object a line: {"step": 100, "time": ..., "G_L1": ...} in RUN_DIR/log.jsonl."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = self.path.open("a", encoding="utf-8")

    def scalars(self, step: int, values: dict[str, float]) -> None:
        self._fh.write(json.dumps({"step": step, "time": round(time.time(), 3), **values}) + "\n")
        self._fh.flush()

    def images(self, step: int, name: str, grid: torch.Tensor) -> None:
        pass

    def close(self) -> None:
        self._fh.close()


class Loggers:
    """Fan one call out to every logger."""

    def __init__(self, loggers: list[TrainLogger]) -> None:
        self.loggers = loggers

    def scalars(self, step: int, values: dict[str, float]) -> None:
        for lg in self.loggers:
            lg.scalars(step, values)

    def images(self, step: int, name: str, grid: torch.Tensor) -> None:
        for lg in self.loggers:
            lg.images(step, name, grid)

    def close(self) -> None:
        for lg in self.loggers:
            lg.close()


def read_jsonl(path: str | Path) -> list[dict]:
    """The records of a JSONL log; a half-written last line (a run in progress) is skipped."""
    records = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records
