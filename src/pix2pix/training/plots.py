"""Loss curves from a run's JSONL log, drawn with matplotlib (an optional extra)."""

from __future__ import annotations

import io
from pathlib import Path

from ..io import atomic_write_bytes

# After the method's loss panels (Method.loss_panels), one panel per group of what every run logs;
# scalars of very different scales get panels of their own.
RUN_PANELS = {
    "validation SSIM": ("val_ssim",),
    "validation L1 / LPIPS": ("val_l1", "val_lpips"),
    "validation PSNR (dB)": ("val_psnr",),
    "learning rate": ("lr",),
    "speed (img/s)": ("img_per_s",),
}


def panels_for(records: list[dict], loss_panels: dict[str, tuple[str, ...]]) -> dict[str, list[str]]:
    """{panel title: the scalars it plots} for what `records` hold: the method's `loss_panels`, then
    what every run logs; panels with nothing to plot are left out."""
    panels = {**loss_panels, **RUN_PANELS}
    groups = {name: [k for k in keys if any(k in r for r in records)] for name, keys in panels.items()}
    return {name: keys for name, keys in groups.items() if keys}


def plot_losses(
    records: list[dict], path: str | Path, *, loss_panels: dict[str, tuple[str, ...]], title: str = ""
) -> Path:
    """Write a PNG with one panel per group of scalars present in `records`: the method's
    `loss_panels` ({title: losses}), then validation, learning rate and speed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("plots need matplotlib: pip install 'pix2pix[watch]'") from None
    if not records:
        raise ValueError("the log has no records yet: nothing to plot")
    groups = panels_for(records, loss_panels)
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
