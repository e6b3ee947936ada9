"""Hint-curve figures for a group of images picked by name, from an evaluation's metrics.json.

    python scripts/hint_groups.py REPORT/metrics.json --group flags

`flags` are OpenMoji's country and subdivision flags: a pair of regional-indicator letters
(1F1E6-1F1FF) or a black flag with tag characters (1F3F4-E00..); their line art is the same bare
rectangle, so only hints can say which flag it is.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

GROUPS = {
    "flags": r"^(1F1E[6-9A-F]|1F1F[0-9A-F])-(1F1E[6-9A-F]|1F1F[0-9A-F])$|^1F3F4-E00",
    "all": r".",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("metrics", type=Path)
    parser.add_argument("--group", default="flags", help=f"one of {', '.join(GROUPS)}, or a regular expression")
    args = parser.parse_args()
    data = json.loads(args.metrics.read_text())
    if "hint_curve" not in data:
        raise SystemExit(f"{args.metrics}: no hint curve (evaluate a hints model)")
    pattern = re.compile(GROUPS.get(args.group, args.group))
    names = [row["name"] for row in data["per_image"]]
    picked = [i for i, n in enumerate(names) if pattern.search(Path(n).name)]
    if not picked:
        raise SystemExit(f"no image of {len(names)} matches {args.group!r}")
    curve = data["hint_curve"]["per_image"]
    copy = [data["per_image"][i]["copy_input"] for i in picked] if "copy_input" in data["per_image"][0] else None
    print(f"{args.group}: {len(picked)} of {len(names)} images ({', '.join(names[i] for i in picked)})")
    print(f"{'hints':>8s}" + "".join(f"{k.upper():>9s}" for k in ("l1", "psnr", "ssim")))
    for count in data["hint_curve"]["counts"]:
        vals = curve[str(count)]
        means = [sum(vals[k][i] for i in picked) / len(picked) for k in ("l1", "psnr", "ssim")]
        print(f"{count:>8d}" + "".join(f"{v:9.2f}" if k == "psnr" else f"{v:9.4f}" for k, v in zip(("l1", "psnr", "ssim"), means)))
    if copy:
        means = [sum(c[k] for c in copy) / len(copy) for k in ("l1", "psnr", "ssim")]
        print(f"{'copy':>8s}" + "".join(f"{v:9.2f}" if k == "psnr" else f"{v:9.4f}" for k, v in zip(("l1", "psnr", "ssim"), means)))


if __name__ == "__main__":
    main()
