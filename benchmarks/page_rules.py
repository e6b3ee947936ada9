"""Issue 40, item 4 (the page stays the paper): what whitening the page of the full-size output would cost.

    python benchmarks/page_rules.py demo/run DATA [--split test]

DATA holds the run's pairs at another size (`pix2pix data openmoji --size 256 --out DATA`). The output as
`evaluate` scores it (`translate_full(scale="auto", carry=False)`, no hints), then each rule applied to the
page (the fill's page regions of the input, closed mode: regions touching the border) before scoring:

- soft T0-T1: a page pixel whose largest channel deficit from white d is below T0 becomes white, above T1 is
  kept, a linear ramp between (the haze is faint, an element the model paints is strong);
- region F: a page region goes white where fewer than F of its pixels have d > 0.1 (the model's evidence for a
  background colour is a share of the page).

Prints each rule's mean PSNR / SSIM and its worst and best change on one image against the output as it is.
A script, not a test: it measured the rules that were not adopted (docs/hints.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from pix2pix import Pix2Pix
from pix2pix.data.paired import PairedDataset
from pix2pix.hints.fill import fill_labels
from pix2pix.images import from_uint8, to_unit
from pix2pix.metrics.image import image_metrics

RULES = {
    "soft 0.05-0.15": ("soft", 0.05, 0.15),
    "soft 0.1-0.3": ("soft", 0.1, 0.3),
    "soft 0.2-0.4": ("soft", 0.2, 0.4),
    "region 0.2": ("region", 0.2),
    "region 0.5": ("region", 0.5),
}


def keep_weight(rule: tuple, deficit: np.ndarray, labels: np.ndarray, on_page: np.ndarray) -> np.ndarray:
    """(H, W) in [0, 1]: how much of each pixel's colour a rule keeps (1 off the page)."""
    if rule[0] == "soft":
        return np.where(on_page, np.clip((deficit - rule[1]) / (rule[2] - rule[1]), 0, 1), 1.0)
    keep = np.ones_like(deficit)
    for label in np.unique(labels[on_page]):
        region = labels == label
        if (deficit[region] > 0.1).mean() < rule[1]:
            keep[region] = 0
    return keep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("data", type=Path)
    parser.add_argument("--split", default="test")
    args = parser.parse_args()
    pipe = Pix2Pix.from_pretrained(args.run, device="cpu")
    first = next(p for p in sorted((args.data / args.split).glob("*.png")))
    from PIL import Image

    with Image.open(first) as img:
        ds = PairedDataset(args.data, args.split, load_size=img.height)
    scores: dict[str, dict[str, list[float]]] = {k: {"psnr": [], "ssim": []} for k in ["as it is", *RULES]}
    for lo in range(0, len(ds), 16):
        a_u8, b_u8 = ds.batch(torch.arange(lo, min(lo + 16, len(ds))))
        a, target = from_uint8(a_u8), to_unit(from_uint8(b_u8))
        out = to_unit(pipe.translate_full(a, scale="auto", carry=False))
        labels, _, page = fill_labels(a.mean(1).numpy(), "closed")
        for name in scores:
            o = out.clone()
            for i in range(len(o)) if name in RULES else ():
                on_page = page[labels[i]] & (labels[i] > 0)
                deficit = (1 - o[i]).amax(0).numpy()
                keep = torch.from_numpy(keep_weight(RULES[name], deficit, labels[i], on_page)).float()
                o[i] = 1 - keep * (1 - o[i])
            for k, v in image_metrics(o, target).items():
                if k in scores[name]:
                    scores[name][k] += v.tolist()
    base = np.array(scores["as it is"]["psnr"])
    for name, s in scores.items():
        diff = np.array(s["psnr"]) - base
        print(
            f"{name:16s} PSNR {np.mean(s['psnr']):.3f}  SSIM {np.mean(s['ssim']):.4f}  "
            f"per image {diff.min():+.2f} .. {diff.max():+.2f} dB"
        )


if __name__ == "__main__":
    main()
