"""Per-image quality metrics on RGB in [0, 1]: PSNR from torchmetrics; SSIM as torchmetrics defines it.

PSNR of an image against itself is infinite; it is capped at PSNR_CAP (an RMS error of one
8-bit level), so a mean over a set with an exact match stays finite and comparable.

SSIM is torchmetrics' `structural_similarity_index_measure` with its defaults (Wang et al. 2004:
an 11-tap Gaussian window of sigma 1.5, k1 0.01, k2 0.03, reflect padding, the mean over the whole
image), computed with the window's two 1-D passes instead of its 121-tap grouped convolution:
torchmetrics takes ~3.5 s and ~1.7 GB for one 512 px image in double precision (a batch of 16 at
512 px needed ~20 GB), this ~20x less time for the same values (tests/test_metrics.py checks them
against torchmetrics to 1e-10).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torchmetrics.functional.image import peak_signal_noise_ratio

PSNR_CAP = 20 * math.log10(255.0)  # 48.13 dB
METRICS = ("l1", "psnr", "ssim")
HIGHER_IS_BETTER = {
    "l1": False,
    "psnr": True,
    "ssim": True,
    "lpips": False,
    "fid": False,
    "kid": False,
    "cycle_a": False,
    "cycle_b": False,
}


def higher_is_better(metric: str) -> bool:
    """Whether a larger value of `metric` is better; a hinted form ('h10_psnr') as its base metric."""
    base = metric.split("_", 1)[1] if metric[:1] == "h" and metric.split("_", 1)[0][1:].isdigit() else metric
    if base not in HIGHER_IS_BETTER:
        raise ValueError(f"unknown metric {metric!r}; valid: {', '.join(HIGHER_IS_BETTER)}")
    return HIGHER_IS_BETTER[base]


def image_metrics(pred: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """{'l1', 'psnr', 'ssim'}: each a (B,) tensor for (B, C, H, W) images in [0, 1]."""
    if pred.shape != target.shape:
        raise ValueError(f"prediction shape {tuple(pred.shape)} differs from target shape {tuple(target.shape)}")
    pred, target = pred.double().clamp(0, 1), target.double().clamp(0, 1)
    l1 = (pred - target).abs().flatten(1).mean(1)
    psnr = peak_signal_noise_ratio(pred, target, data_range=1.0, reduction="none", dim=(1, 2, 3))
    psnr = psnr.nan_to_num(posinf=PSNR_CAP).clamp(max=PSNR_CAP)
    return {"l1": l1.float(), "psnr": psnr.float(), "ssim": ssim(pred, target).float()}


SSIM_SIGMA, SSIM_TAPS, SSIM_K1, SSIM_K2 = 1.5, 11, 0.01, 0.03  # torchmetrics' defaults (Wang et al. 2004)


def ssim(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """(B,) SSIM of (B, C, H, W) images, as torchmetrics computes it (see the module docstring)."""
    dist = torch.arange((1 - SSIM_TAPS) / 2, (1 + SSIM_TAPS) / 2, 1, dtype=pred.dtype, device=pred.device)
    gauss = torch.exp(-((dist / SSIM_SIGMA) ** 2) / 2)
    window = (gauss / gauss.sum()).tolist()
    pad = SSIM_TAPS // 2
    h, w = pred.shape[-2:]

    def blur(x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (pad, pad, pad, pad), mode="reflect")
        x = sum(k * x[..., i : i + h, :] for i, k in enumerate(window))
        return sum(k * x[..., :, i : i + w] for i, k in enumerate(window))

    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    mu_p, mu_t = blur(pred), blur(target)
    mu_pp, mu_tt, mu_pt = mu_p * mu_p, mu_t * mu_t, mu_p * mu_t
    var_p = (blur(pred * pred) - mu_pp).clamp(min=0.0)
    var_t = (blur(target * target) - mu_tt).clamp(min=0.0)
    cov = blur(pred * target) - mu_pt
    full = ((2 * mu_pt + c1) * (2 * cov + c2)) / ((mu_pp + mu_tt + c1) * (var_p + var_t + c2))
    return full.flatten(1).mean(1)
