"""Hint propagation against the fill, each as a model on its own (issue 40, item 3).

    python benchmarks/propagation.py DATA [DATA ...] [--split test] [--hints 10] [--time-sizes 128 512]

For each DATA folder (a paired set: `pix2pix data openmoji`, `data sketch`, benchmarks/own_art.py's), the
test split with the evaluation's own hints (seeded by each image's name) spread three ways: the fill in
closed and in open regions (blend, as the models train) and `hints.propagate_hints`. The output of each is
the spread colour times the line art's lightness where the map has a hint or was painted, the line art
elsewhere (strokes stay the input's): what the hints alone say, with no network. Beside it, copying the line
art. PSNR / SSIM / L1 against the targets, and the seconds per image of each spread at the data's size and,
with --time-sizes, at other sizes (the first images' line art and hints resized). One JSON object on stdout.
A script, not a test (tests/test_propagate.py checks what the propagation does).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image

from pix2pix.data.paired import PairedDataset
from pix2pix.hints import eval_hints, fill_regions, resize_hints
from pix2pix.hints.propagate import propagate_hints
from pix2pix.images import from_uint8, to_unit
from pix2pix.metrics.image import image_metrics

SPREADS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "fill, closed": lambda h, a: fill_regions(h, a, blend=True, mode="closed"),
    "fill, open": lambda h, a: fill_regions(h, a, blend=True, mode="open"),
    "propagation": propagate_hints,
}


def as_output(hint_map: torch.Tensor, line_art: torch.Tensor) -> torch.Tensor:
    """The image the hints alone make: colour x lightness where the map holds a hint or a fill, else the line art."""
    c = hint_map.shape[1] - 1
    light = to_unit(line_art).mean(1, keepdim=True)
    coloured = to_unit(hint_map[:, :c]) * light * 2 - 1
    return torch.where(hint_map[:, c:] > 0, coloured, line_art[:, :c])


def score(data: Path, split: str, count: int, batch: int = 16) -> dict[str, object]:
    first = next(p for p in sorted((data / split).glob("*.png")))
    with Image.open(first) as img:
        size = img.height
    ds = PairedDataset(data, split, load_size=size)
    scores: dict[str, dict[str, list[float]]] = {}
    seconds: dict[str, list[float]] = {k: [] for k in SPREADS}
    for lo in range(0, len(ds), batch):
        idx = torch.arange(lo, min(lo + batch, len(ds)))
        a_u8, b_u8 = ds.batch(idx)
        a, b = from_uint8(a_u8), from_uint8(b_u8)
        hints = eval_hints(a, b, [ds.name(int(i)) for i in idx], count)
        outputs = {"copy the line art": a[:, : b.shape[1]]}
        for name, spread in SPREADS.items():
            t = time.perf_counter()
            spread_map = spread(hints, a)
            seconds[name].append((time.perf_counter() - t) / len(idx))
            outputs[name] = as_output(spread_map, a)
        for name, out in outputs.items():
            for metric, values in image_metrics(to_unit(out), to_unit(b)).items():
                scores.setdefault(name, {}).setdefault(metric, []).extend(values.tolist())
    return {
        "data": str(data),
        "size": size,
        "images": len(ds),
        "scores": {k: {m: round(statistics.fmean(v), 4) for m, v in ms.items()} for k, ms in scores.items()},
        "seconds_per_image": {k: round(statistics.median(v), 4) for k, v in seconds.items()},
    }


def time_at(data: Path, split: str, count: int, sizes: list[int], images: int = 4) -> dict[str, dict[str, float]]:
    """Median seconds per image of each spread on the first `images` pictures resized to each size."""
    first = next(p for p in sorted((data / split).glob("*.png")))
    with Image.open(first) as img:
        own = img.height
    ds = PairedDataset(data, split, load_size=own)
    idx = torch.arange(min(images, len(ds)))
    a_u8, b_u8 = ds.batch(idx)
    a, b = from_uint8(a_u8), from_uint8(b_u8)
    hints = eval_hints(a, b, [ds.name(int(i)) for i in idx], count)
    out: dict[str, dict[str, float]] = {}
    for size in sizes:
        a_s = F.interpolate(a, size=(size, size), mode="bicubic", align_corners=False).clamp(-1, 1)
        h_s = resize_hints(hints, (size, size))
        for name, spread in SPREADS.items():
            times = []
            for i in range(len(idx)):
                t = time.perf_counter()
                spread(h_s[i : i + 1], a_s[i : i + 1])
                times.append(time.perf_counter() - t)
            out.setdefault(str(size), {})[name] = round(statistics.median(times), 4)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, nargs="+")
    parser.add_argument("--split", default="test")
    parser.add_argument("--hints", type=int, default=10)
    parser.add_argument("--time-sizes", type=int, nargs="*", default=[])
    args = parser.parse_args()
    result: dict[str, object] = {
        "hints": args.hints,
        "threads": torch.get_num_threads(),
        "sets": [score(d, args.split, args.hints) for d in args.data],
    }
    if args.time_sizes:
        result["seconds_by_size"] = time_at(args.data[0], args.split, args.hints, args.time_sizes)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
