"""LPIPS (Zhang et al., 2018) with the VGG-16 backbone, weights read from local files.

The standard weights come in two files: torchvision's VGG-16 (`vgg16-397923af.pth`, keys
`features.N.*`) and the LPIPS linear heads (`vgg.pth` of the lpips package, v0.1, keys
`linK.model.1.weight`). Either put both in a cache folder (see weights.py), or pass one combined
state dict of this module (`net.features.N.*` and `linK.model.1.weight`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
import torch.nn as nn

from ..images import from_unit
from .weights import find_weights, load_into

log = logging.getLogger(__name__)

BACKBONE_NAMES = ("vgg16-397923af.pth",)
LIN_NAMES = ("lpips_vgg_v0.1.pth", "vgg.pth")
TAPS = (3, 8, 15, 22, 29)  # relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 in VGG-16's `features`
CHANNELS = (64, 128, 256, 512, 512)
VGG16_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


class VGG16Features(nn.Module):
    """VGG-16's convolutional trunk, laid out (and named) as torchvision's `features`."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_ch = 3
        for v in VGG16_CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(in_ch, int(v), 3, padding=1), nn.ReLU(inplace=False)]
                in_ch = int(v)
        self.features = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        taps = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in TAPS:
                taps.append(x)
            if i == TAPS[-1]:
                break
        return taps


class NetLinLayer(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.model = nn.Sequential(nn.Dropout(), nn.Conv2d(channels, 1, 1, bias=False))


class LPIPS(nn.Module):
    """Learned perceptual distance; `forward(x, y)` on (B, 3, H, W) images in [0, 1] -> (B,)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1))
        self.net = VGG16Features()
        for i, c in enumerate(CHANNELS):
            setattr(self, f"lin{i}", NetLinLayer(c))
        self.eval().requires_grad_(False)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x = (from_unit(x) - self.shift) / self.scale
        y = (from_unit(y) - self.shift) / self.scale
        total = torch.zeros(x.shape[0], device=x.device)
        for i, (fx, fy) in enumerate(zip(self.net(x), self.net(y))):
            fx = fx / (fx.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)  # unit length per position
            fy = fy / (fy.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            total = total + getattr(self, f"lin{i}").model((fx - fy) ** 2).mean(dim=(1, 2, 3))
        return total


def load_lpips(weights: str | Path | None = None, lin_weights: str | Path | None = None) -> LPIPS | None:
    """LPIPS with real weights, or None (after one log line) when none are on this machine.

    `weights`: a combined file, or torchvision's VGG-16 file with `lin_weights` beside it.
    """
    model = LPIPS()
    if weights is not None and lin_weights is None:
        load_into(model, find_weights(weights, ()))  # type: ignore[arg-type]
        return model
    backbone = find_weights(weights, BACKBONE_NAMES)
    lin = find_weights(lin_weights, LIN_NAMES) or _lpips_package_lin()
    if backbone is None or lin is None:
        log.info("LPIPS skipped: no VGG-16 / LPIPS weights found (pass --lpips-weights; see README)")
        return None
    load_into(model.net, backbone, ignore_prefixes=("classifier.",))
    lin_state = {k: v for k, v in _read(lin).items() if k.startswith("lin")}
    missing, unexpected = model.load_state_dict(lin_state, strict=False)
    if unexpected or any(k.startswith("lin") for k in missing):
        raise ValueError(f"{lin}: not LPIPS linear-layer weights")
    return model


def _read(path: Path) -> dict[str, torch.Tensor]:
    from .weights import read_state_dict

    return read_state_dict(path)


def _lpips_package_lin() -> Path | None:
    """The v0.1 heads that the lpips package ships, if it happens to be installed."""
    try:
        import importlib.util

        spec = importlib.util.find_spec("lpips")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "weights" / "v0.1" / "vgg.pth"
    return path if path.is_file() else None
