"""Per-image quality metrics on RGB in [0, 1], from torchmetrics (not hand-written).

PSNR of an image against itself is infinite; it is capped at PSNR_CAP (an RMS error of one
8-bit level), so a mean over a set with an exact match stays finite and comparable.
"""

from __future__ import annotations

import math

import torch
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

PSNR_CAP = 20 * math.log10(255.0)  # 48.13 dB
METRICS = ("l1", "psnr", "ssim")
HIGHER_IS_BETTER = {"l1": False, "psnr": True, "ssim": True, "lpips": False, "fid": False, "kid": False,
                    "cycle_a": False, "cycle_b": False}


def image_metrics(pred: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """{'l1', 'psnr', 'ssim'}: each a (B,) tensor for (B, C, H, W) images in [0, 1]."""
    if pred.shape != target.shape:
        raise ValueError(f"prediction shape {tuple(pred.shape)} differs from target shape {tuple(target.shape)}")
    pred, target = pred.double().clamp(0, 1), target.double().clamp(0, 1)
    l1 = (pred - target).abs().flatten(1).mean(1)
    psnr = peak_signal_noise_ratio(pred, target, data_range=1.0, reduction="none", dim=(1, 2, 3))
    psnr = psnr.nan_to_num(posinf=PSNR_CAP).clamp(max=PSNR_CAP)
    ssim = structural_similarity_index_measure(pred, target, data_range=1.0, reduction="none")
    return {"l1": l1.float(), "psnr": psnr.float(), "ssim": ssim.float()}
