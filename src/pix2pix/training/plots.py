"""Loss curves from a run's JSONL log, drawn with matplotlib (an optional extra)."""

from __future__ import annotations

import io
from pathlib import Path

from ..io import atomic_write_bytes

# One panel per group; scalars of very different scales get panels of their own.
LOSS_GROUPS = {
    "generator": ("G_GAN", "G_L1", "G_SSIM"),
    "discriminator": ("D_real", "D_fake", "D_gp"),
    "validation SSIM": ("val_ssim",),
    "validation L1 / LPIPS": ("val_l1", "val_lpips"),
    "validation PSNR (dB)": ("val_psnr",),
    "learning rate": ("lr",),
    "speed (img/s)": ("img_per_s",),
}


def plot_losses(records: list[dict], path: str | Path, *, title: str = "") -> Path:
    """Write a PNG with one panel per group of scalars present in `records`."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("plots need matplotlib: pip install 'pix2pix[watch]'") from None
    if not records:
        raise ValueError("the log has no records yet: nothing to plot")
    groups = {name: [k for k in keys if any(k in r for r in records)] for name, keys in LOSS_GROUPS.items()}
    groups = {name: keys for name, keys in groups.items() if keys}
    fig, axes = plt.subplots(len(groups), 1, figsize=(8, 2.6 * len(groups)), squeeze=False)
    for ax, (name, keys) in zip(axes[:, 0], groups.items()):
        for key in keys:
            pts = [(r["step"], r[key]) for r in records if key in r]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], label=key, marker="." if len(pts) < 30 else None)
        ax.set_title(name, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    axes[-1, 0].set_xlabel("step")
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    path = Path(path)
    atomic_write_bytes(path, buf.getvalue())
    return path
