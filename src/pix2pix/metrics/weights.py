"""Finding and reading weight files for perceptual metrics, offline.

FID and LPIPS networks are normally downloaded at run time; here they are read from a file the
user names, or from the usual cache locations. When no file is found, the metric is skipped
with one line saying so: never a failure, never a made-up value.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch


def cache_dirs() -> list[Path]:
    """Where weights are looked for: $PIX2PIX_WEIGHTS, ~/.cache/pix2pix, and torch hub's cache."""
    dirs = []
    if os.environ.get("PIX2PIX_WEIGHTS"):
        dirs.append(Path(os.environ["PIX2PIX_WEIGHTS"]))
    dirs.append(Path.home() / ".cache" / "pix2pix")
    dirs.append(Path(torch.hub.get_dir()) / "checkpoints")
    return dirs


def find_weights(explicit: str | Path | None, names: tuple[str, ...]) -> Path | None:
    """The explicit file if given (it must exist), else the first of `names` in the cache dirs."""
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            raise FileNotFoundError(f"weights file not found: {path}")
        return path
    for folder in cache_dirs():
        for name in names:
            if (folder / name).is_file():
                return folder / name
    return None


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from .safetensors or a torch .pt/.pth file (tensors only, no pickled code)."""
    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch and safetensors raise many types for a bad file
        raise ValueError(f"{path}: unreadable weights ({err})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a state dict, got {type(state).__name__}")
    return state


def load_into(module: torch.nn.Module, path: str | Path, *, ignore_prefixes: tuple[str, ...] = ()) -> None:
    state = {k: v for k, v in read_state_dict(path).items() if not k.startswith(ignore_prefixes)}
    missing, unexpected = module.load_state_dict(state, strict=False)
    if missing or unexpected:
        detail = f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}"
        raise ValueError(f"{path}: does not fit {type(module).__name__} ({detail})")
