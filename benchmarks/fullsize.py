"""Full-size output on the CPU: seconds per drawing of 512 x 512 and 1000 x 700 (fullsize.py), split
into the network at the working size and the composition at full size, beside the network run on
the whole drawing as it is (scale native)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw
from steps import main_job_overrides
from timing import cpu_summary, median_time

from pix2pix.config import build_config
from pix2pix.fullsize import compose, to_size, working_size
from pix2pix.inference import Pix2Pix
from pix2pix.methods import method_for

SIZES = ((512, 512), (700, 1000))  # (H, W)


def drawing(h: int, w: int) -> Image.Image:
    """Black line art on white: a few closed shapes, an open stroke, strokes ~1% of the size wide."""
    img = Image.new("RGB", (w, h), "white")
    d, width = ImageDraw.Draw(img), max(2, min(h, w) // 100)
    for box in ((0.1, 0.1, 0.45, 0.9), (0.55, 0.15, 0.92, 0.75), (0.6, 0.78, 0.95, 0.97), (0.2, 0.3, 0.35, 0.5)):
        d.ellipse([box[0] * w, box[1] * h, box[2] * w, box[3] * h], outline="black", width=width)
    d.line([(0.48 * w, 0.05 * h), (0.5 * w, 0.95 * h)], fill="black", width=width)
    return img


def pipeline(run_dir: Path | None) -> Pix2Pix:
    """The run's generator, or the main job's architecture untrained (the time does not depend on weights)."""
    if run_dir is not None:
        return Pix2Pix.from_pretrained(
            run_dir, checkpoint="best" if (run_dir / "checkpoints" / "best").is_dir() else "last"
        )
    cfg = build_config(main_job_overrides())
    torch.manual_seed(0)
    return Pix2Pix(method_for(cfg).build_network(cfg.model, "generator"), cfg)


def fullsize_report(run_dir: Path | None, quick: bool) -> tuple[list[str], dict[str, Any]]:
    pipe = pipeline(run_dir)
    repeat = 3 if quick else 7
    rows = []
    for h, w in SIZES:
        img = drawing(h, w)
        x = torch.from_numpy(np.array(img)).permute(2, 0, 1).float()[None] / 127.5 - 1
        work = working_size(h, w, pipe.config.data.crop_size)
        small = pipe.translate_tensor(to_size(x, work))
        rows.append(
            {
                "size": [h, w],
                "working_size": list(work),
                "total_s": median_time(lambda img=img: pipe(img), repeat=repeat),
                "network_s": median_time(lambda x=x, work=work: pipe.translate_tensor(to_size(x, work)), repeat=repeat),
                "compose_s": median_time(lambda x=x, small=small: compose(x, small), repeat=repeat),
                "native_s": median_time(lambda img=img: pipe(img, scale="native"), repeat=repeat),
            }
        )
    cfg = pipe.config
    lines = [
        f"full-size output, generator {cfg.model.generator} ngf {cfg.model.ngf} trained at {cfg.data.crop_size} px, "
        f"{torch.get_num_threads()} threads; {cpu_summary()}"
    ]
    lines += [
        f"  {r['size'][1]}x{r['size'][0]}: {r['total_s'] * 1e3:7.1f} ms (network at {r['working_size'][1]}x"
        f"{r['working_size'][0]} {r['network_s'] * 1e3:.1f} ms, composition {r['compose_s'] * 1e3:.1f} ms); "
        f"the network on the whole drawing (native) {r['native_s'] * 1e3:.1f} ms"
        for r in rows
    ]
    return lines, {"cpu": cpu_summary(), "run": str(run_dir) if run_dir else "main job, untrained", "fullsize": rows}
