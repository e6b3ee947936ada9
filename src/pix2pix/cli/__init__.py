"""The `pix2pix` command: parse, build a config, call the library. Nothing else lives here.

The group and the options several commands share are in common.py; the commands in data.py, runs.py
(train, plot), judge.py (evaluate) and ship.py (translate, export, serve).

Every config field is also a `train` option (`--ngf 32`, `--no-flip`), generated from the
dataclasses so the defaults and help texts have one source. A user's mistake (a bad file or
value) ends in a one-line error, never a traceback.
"""

from . import data, judge, runs, ship  # noqa: F401 (each registers its commands on `main`)
from .common import main
from .data import own_art_command

__all__ = ["main", "own_art_command"]
