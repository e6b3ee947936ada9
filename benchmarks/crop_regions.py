"""What labelling each crop would do to the fill's regions, against labelling the whole image once (issue 38).

    python benchmarks/crop_regions.py [--images 400] [--size 256]

The training set labels each image's regions once, at its load size (286 px for 256 px crops), and the crop
carries the labels (hints.label_images). Labelling the crop itself instead, as de4f1a5 did every step, would
see a region the crop's border cuts as touching the border: the page in the closed mode (never painted), and
in the open mode the page (the largest region touching the border) can change. This prints, for the first
N OpenMoji emoji rendered at the load size and one random crop and flip each, the share of the paintable
pixels (not line, in a region under the whole image's labels) that crop labelling makes page, the share of
page pixels it makes paintable, and the crops where one region is cut in two (one label of the whole image,
two of the crop's): the case where a hint in one part paints the other only under whole-image labels.
"""

from __future__ import annotations

import argparse

import numpy as np

from pix2pix import seeding
from pix2pix.data.datasets.openmoji import openmoji_svg_dir, render_pair, select_svgs
from pix2pix.data.transforms import random_crop_flip
from pix2pix.hints import REGION_LINE, region_map
from pix2pix.images import from_uint8, pil_to_uint8


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args()
    import torch

    load = args.size + args.size // 8
    pairs = [render_pair(p, load) for p in select_svgs(openmoji_svg_dir(), all_variants=False)[: args.images]]
    a_u8 = torch.stack([pil_to_uint8(a) for a, _ in pairs])
    b_u8 = torch.stack([pil_to_uint8(b) for _, b in pairs])
    for mode in ("closed", "open"):
        whole = region_map(from_uint8(a_u8), mode)
        g = seeding.generator("augment", 0, 1)
        a_c, _, whole_c = random_crop_flip(a_u8, b_u8, crop_size=args.size, flip=True, generator=g, carry=(whole,))
        own = region_map(from_uint8(a_c), mode)
        free = from_uint8(a_c).mean(1) >= REGION_LINE
        paint_whole, paint_own = (whole_c > 0) & free, (own > 0) & free
        total = max(1, int(paint_whole.sum()))
        split = 0
        for w, o in zip(whole_c.numpy(), own.numpy()):
            both = (w > 0) & (o > 0)
            pairs_wo = np.unique(np.stack([w[both], o[both]], 1), axis=0)
            split += int((np.unique(pairs_wo[:, 0], return_counts=True)[1] > 1).any())
        print(
            f"{mode}: {len(a_u8)} crops {load} -> {args.size} px; of the paintable pixels under whole-image labels, "
            f"crop labelling makes {int((paint_whole & ~paint_own).sum()) / total:.1%} page and makes "
            f"{int((paint_own & ~paint_whole).sum()) / total:.1%} as many page pixels paintable; "
            f"crops with a region cut in two: {split}"
        )


if __name__ == "__main__":
    main()
