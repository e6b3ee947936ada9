"""What translate's finishing does to a run's scores on a test split at another size: the output as the model
leaves it (`Pix2Pix.translate_full(..., carry=False)`, what `evaluate` scores) beside what translate, the API
and the server return (`carry=True`: hints the generator cannot follow carried by `fullsize.carry_hints`).

    python benchmarks/finishing.py demo/run DATA [--split test] [--hints 10] [--batch 16]

DATA holds the run's pairs rendered at another size (`pix2pix data openmoji --size 256 --out DATA`: the
same split by name as the main job's). Scale auto (the generator at its training size, composed at the input's
size), the evaluation's own hints (seeded by each image's name), PSNR/SSIM/L1 of both and the seconds per
image. One JSON object on stdout. A script, not a test (tests/test_new_user.py checks what the carry does).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from pix2pix import Pix2Pix
from pix2pix.data.paired import PairedDataset
from pix2pix.hints import eval_hints
from pix2pix.images import from_uint8, to_unit
from pix2pix.metrics.image import image_metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("data", type=Path)
    parser.add_argument("--split", default="test")
    parser.add_argument("--hints", type=int, default=10)
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()
    pipe = Pix2Pix.from_pretrained(args.run, device="cpu")
    first = next(p for p in sorted((args.data / args.split).glob("*.png")))
    from PIL import Image

    with Image.open(first) as img:
        size = img.height
    ds = PairedDataset(args.data, args.split, load_size=size)
    scores: dict[str, dict[str, list[float]]] = {}
    seconds: dict[str, list[float]] = {"model": [], "finished": []}
    for lo in range(0, len(ds), args.batch):
        idx = torch.arange(lo, min(lo + args.batch, len(ds)))
        a_u8, b_u8 = ds.batch(idx)
        a, b = from_uint8(a_u8), from_uint8(b_u8)
        names = [ds.name(int(i)) for i in idx]
        cases = {0: None}
        if args.hints and pipe.takes_hints:
            cases[args.hints] = eval_hints(a, b, names, args.hints)
        for count, hint_map in cases.items():
            for finished in (False, True):
                t = time.perf_counter()
                out = pipe.translate_full(a, hints=hint_map, scale="auto", carry=finished)
                seconds["finished" if finished else "model"].append((time.perf_counter() - t) / len(idx))
                key = f"{count} hints, {'finished' if finished else 'model'}"
                for metric, values in image_metrics(to_unit(out), to_unit(b)).items():
                    scores.setdefault(key, {}).setdefault(metric, []).extend(values.tolist())
    result = {
        "run": str(args.run),
        "data": str(args.data),
        "split": args.split,
        "size": size,
        "images": len(ds),
        "scores": {k: {m: round(statistics.fmean(v), 4) for m, v in ms.items()} for k, ms in scores.items()},
        "seconds_per_image": {k: round(statistics.median(v), 4) for k, v in seconds.items()},
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
