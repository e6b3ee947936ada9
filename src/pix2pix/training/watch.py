"""What a user watches while training runs: TensorBoard events and a self-refreshing HTML page.

Both are `TrainLogger`s (see logging.py); the training loop never calls them directly.
"""

from __future__ import annotations

import html
import io
import logging
import time
from pathlib import Path

import torch

from ..images import from_unit, tensor_to_pil
from ..io import atomic_write_bytes, atomic_write_text

log = logging.getLogger(__name__)


class TensorBoardLogger:
    """Scalars under loss/, val/ and perf/, and image grids, in RUN_DIR/tensorboard."""

    def __init__(self, log_dir: str | Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ImportError("TensorBoard logging needs tensorboard: pip install 'pix2pix[watch]'") from None
        self.writer = SummaryWriter(str(log_dir))

    def scalars(self, step: int, values: dict[str, float]) -> None:
        for key, value in values.items():
            group = "val" if key.startswith("val_") else "perf" if key in ("lr", "img_per_s", "epoch") else "loss"
            self.writer.add_scalar(f"{group}/{key.removeprefix('val_')}", value, step)
        self.writer.flush()

    def images(self, step: int, name: str, grid: torch.Tensor) -> None:
        self.writer.add_image(name, grid.clamp(0, 1), step)  # (3, H, W) in [0, 1]
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="{refresh}">
<title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;color:#222}} img{{max-width:100%;image-rendering:{rendering}}}
table{{border-collapse:collapse}} td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}</style></head>
<body><h1>{title}</h1>
<p>Step <b id="step">{step}</b> &middot; updated {updated} &middot; this page reloads every {refresh} s.</p>
<table id="latest"><tr>{head}</tr><tr>{row}</tr></table>
<h2>Validation samples: input | output | target</h2>
<img id="samples" src="{samples}" alt="validation samples at step {step}" style="width:{samples_width}px">
<h2>Curves</h2>
{curves}
</body></html>
"""


class HtmlLogger:
    """RUN_DIR/live/index.html: the latest sample grid, latest scalars and loss curves.

    A static page that refreshes itself: open it in a browser, no server needed. The loss
    curves need matplotlib; without it the page shows the rest and says so.
    """

    def __init__(
        self,
        out_dir: str | Path,
        *,
        title: str = "pix2pix training",
        refresh_s: int = 30,
        history: list[dict] | None = None,
        loss_panels: dict[str, tuple[str, ...]] | None = None,
    ) -> None:
        self.dir = Path(out_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.title, self.refresh = title, refresh_s
        self.records: list[dict] = list(history or [])
        self.step = self.records[-1]["step"] if self.records else 0
        self.samples_width = 0
        self.curves_ok = True
        self.loss_panels = loss_panels or {}  # the method's (methods/): which losses the curves plot

    def scalars(self, step: int, values: dict[str, float]) -> None:
        self.records.append({"step": step, **values})
        self.step = step
        self._write_page()

    def images(self, step: int, name: str, grid: torch.Tensor) -> None:
        img = tensor_to_pil(from_unit(grid))
        scale = max(1, 512 // max(img.width, 1))
        self.samples_width = img.width * scale
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        atomic_write_bytes(self.dir / "samples.png", buf.getvalue())
        atomic_write_bytes(self.dir / f"samples_{step:08d}.png", buf.getvalue())
        self._plot()
        self._write_page()

    def close(self) -> None:
        self._plot()
        self._write_page()

    def _plot(self) -> None:
        if not self.curves_ok or not self.records:
            return
        from .plots import plot_losses

        try:
            plot_losses(self.records, self.dir / "losses.png", loss_panels=self.loss_panels, title=self.title)
        except ImportError as err:
            log.warning("%s", err)
            self.curves_ok = False

    def _write_page(self) -> None:
        latest: dict = {}
        for record in self.records:  # the newest value of every scalar (losses and val metrics)
            latest.update(record)
        keys = [k for k in latest if k not in ("step", "time")]
        curves = (
            '<img id="curves" src="losses.png" alt="loss curves">'
            if self.curves_ok
            else "<p>Loss curves need matplotlib (pip install 'pix2pix[watch]').</p>"
        )
        page = PAGE.format(
            title=html.escape(self.title),
            refresh=self.refresh,
            step=self.step,
            updated=time.strftime("%Y-%m-%d %H:%M:%S"),
            head="".join(f"<th>{html.escape(k)}</th>" for k in keys),
            row="".join(f"<td>{latest[k]:.4g}</td>" for k in keys),
            samples="samples.png",
            samples_width=self.samples_width or 512,
            curves=curves,
            rendering="pixelated",
        )
        atomic_write_text(self.dir / "index.html", page)
