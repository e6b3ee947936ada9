"""The hint fill alone, as if it were the model: how much of the colour 10 hints give before any network
sees them, and what the fill costs per image on the CPU (issue 27).

    python benchmarks/hint_fill.py DATASET [DATASET ...] [--split test] [--hints 10] [--time-sizes 128 512]

For each test pair, the evaluation's own hints (seeded by the image's name, as `evaluate --hints 10`
draws them) are spread over the line art by `hints.fill_regions` in each region mode (closed, open),
with the blended fill the configs use, and by the fill as it was at de4f1a5 (per hint pixel, in SciPy:
benchmarks/legacy_hints.py); the "output" is the fill's colour where it reached and the line
art elsewhere, scored against the target (PSNR, SSIM) beside copying the line art. Then the fill is
timed at each of --time-sizes (the line art and hints resized to it): the median ms per image.
A script, not a test: tests/test_hints.py checks what the fill does.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import legacy_hints as legacy
import torch
import torch.nn.functional as F
from PIL import Image

from pix2pix.data.paired import PairedDataset
from pix2pix.hints import HINT_REGIONS, eval_hints, fill_regions, resize_hints
from pix2pix.images import from_uint8
from pix2pix.metrics.image import image_metrics


def load_split(root: Path, split: str) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    first = next(p for p in sorted((root / split).rglob("*")) if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp"))
    with Image.open(first) as img:
        size = img.height  # aligned A | B pairs: the height is each side's size
    ds = PairedDataset(root, split, load_size=size)
    a, b, names = [], [], []
    for i in range(len(ds)):
        x, y = ds[i]
        a.append(from_uint8(x))
        b.append(from_uint8(y))
        names.append(ds.name(i))
    return torch.stack(a), torch.stack(b), names


def as_output(hints: torch.Tensor, line_art: torch.Tensor) -> torch.Tensor:
    """The fill's colour where the hint map holds one (mask > 0), the line art elsewhere; in [0, 1]."""
    colour, mask = hints[:, :-1], hints[:, -1:] > 0
    return ((torch.where(mask, colour, line_art.expand_as(colour)) + 1) / 2).clamp(0, 1)


def score(pred: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    m = image_metrics(pred, (target + 1) / 2)
    return {k: round(float(v.mean()), 4) for k, v in m.items()}


def median_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("datasets", nargs="+", type=Path)
    parser.add_argument("--split", default="test")
    parser.add_argument("--hints", type=int, default=10)
    parser.add_argument("--time-sizes", type=int, nargs="+", default=[128, 512])
    parser.add_argument("--time-images", type=int, default=16, help="images timed per size (one at a time)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    out: dict[str, object] = {"hints": args.hints, "split": args.split}
    for root in args.datasets:
        a, b, names = load_split(root, args.split)
        hints = eval_hints(a, b, names, args.hints)
        row: dict[str, object] = {
            "images": len(a),
            "size": a.shape[-1],
            "copy": score(((a + 1) / 2).expand_as(b), b),
            "dots only": score(as_output(hints, a), b),
        }
        for mode in HINT_REGIONS:
            row[f"fill {mode}"] = score(as_output(fill_regions(hints, a, blend=True, mode=mode), a), b)
            row[f"fill {mode}, de4f1a5"] = score(as_output(legacy.fill_regions(hints, a, blend=True, mode=mode), a), b)
        timing = {}
        for size in args.time_sizes:
            k = min(args.time_images, len(a))
            xa = F.interpolate(a[:k], size=(size, size), mode="bicubic", align_corners=False).clamp(-1, 1)
            xh = resize_hints(hints[:k], (size, size))
            for mode in HINT_REGIONS:
                per_image = [
                    median_ms(
                        lambda h=xh[i : i + 1], x=xa[i : i + 1], m=mode: fill_regions(h, x, blend=True, mode=m), 3
                    )
                    for i in range(k)
                ]
                timing[f"{mode} {size}px ms/img"] = round(statistics.median(per_image), 2)
        row["timing"] = timing
        out[str(root)] = row
        print(json.dumps({str(root): row}), flush=True)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
