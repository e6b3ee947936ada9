"""pix2pix: image-to-image translation with conditional GANs (Isola et al., 2017), colour hints and CycleGAN.

    from pix2pix import Pix2Pix
    pipe = Pix2Pix.from_pretrained("runs/cpu")
    coloured = pipe(sketch)

The public names below are imported on first use, so `import pix2pix` stays light (no torch
until a name that needs it is touched).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.2.0"

# name -> module that defines it: the public API, explicitly.
_PUBLIC = {
    "Pix2Pix": "pix2pix.inference",
    "translate_paths": "pix2pix.inference",
    "Config": "pix2pix.config",
    "build_config": "pix2pix.config",
    "train": "pix2pix.training.loop",
    "resume": "pix2pix.training.loop",
    "evaluate": "pix2pix.evaluation",
    "write_report": "pix2pix.report",
    "export_run": "pix2pix.export.exporter",
    "create_app": "pix2pix.serve.app",
    "HintRecipe": "pix2pix.hints",
    "simulate_hints": "pix2pix.hints",
    "PairedDataset": "pix2pix.data.paired",
    "UnpairedDataset": "pix2pix.data.unpaired",
    "build_openmoji": "pix2pix.data.datasets.openmoji",
    "make_sketch_dataset": "pix2pix.data.sketch",
    "download_dataset": "pix2pix.data.download",
    "METHODS": "pix2pix.methods",
    "get_method": "pix2pix.methods",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module 'pix2pix' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
