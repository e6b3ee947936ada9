"""A picture strip from evaluation reports (`pix2pix evaluate --out`), for docs/: one row per picture,
columns from the folders a report writes (inputs, outputs, hints_h10, outputs_h10, targets), and any number
of reports side by side (their hinted columns only after the first), scaled up without smoothing.

    python benchmarks/report_strip.py OUT.png REPORT [REPORT ...] --names a.png b.png --scale 2
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image

FIRST = ("inputs", "outputs", "hints_h10", "outputs_h10")  # the first report's columns
MORE = ("hints_h10", "outputs_h10")  # every later report's


def strip(reports: list[Path], names: list[str], scale: int = 2, gap: int = 4) -> Image.Image:
    """The strip: for each name a row of the reports' columns then the target."""
    columns = [reports[0] / c for c in FIRST] + [r / c for r in reports[1:] for c in MORE]
    columns.append(reports[0] / "targets")
    for folder in columns:
        if not folder.is_dir():
            raise ValueError(f"{folder} is not a report folder (run `pix2pix evaluate --out` to write one)")
    cells = [[Image.open(folder / name).convert("RGB") for folder in columns] for name in names]
    size = max(im.width for row in cells for im in row) * scale
    out = Image.new("RGB", (len(columns) * (size + gap) - gap, len(names) * (size + gap) - gap), "white")
    for i, row in enumerate(cells):
        for j, im in enumerate(row):
            out.paste(im.resize((size, size), Image.NEAREST), (j * (size + gap), i * (size + gap)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("reports", type=Path, nargs="+")
    parser.add_argument("--names", nargs="+", required=True, help="file names in the report's folders")
    parser.add_argument("--scale", type=int, default=2)
    args = parser.parse_args()
    strip(args.reports, args.names, args.scale).save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
