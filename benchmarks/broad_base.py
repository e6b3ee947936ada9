"""A broader base for `--init-from` (issue 40, item 6): the main job's model trained on, beside OpenMoji, the
flat app icons of Debian's Papirus icon theme, then the own-art benchmark's 10-minute fine-tune from it.

    python benchmarks/broad_base.py --base demo/run                      # icons + OpenMoji: the broader base
    python benchmarks/broad_base.py --base demo/run --sources openmoji   # the same steps on OpenMoji alone
    make broad-base        # the base alone, into demo/broad: `pix2pix train ... --init-from demo/broad`

1. Icons: `papirus-icon-theme`'s .deb (`apt-get download`, cached in --work; --deb FILE where apt is not
   at hand), its 64x64/apps SVGs (files, not the links between names: about 3,600 pictures) rendered at
   128 px on white by the package's SVG renderer, then XDoG line art at 64 px by `data sketch` (the
   own-art benchmark's line art, at the main job's size).
2. Base: BASE's training set (OpenMoji) plus, with `--sources openmoji papirus`, the icons' train split;
   --steps more steps from BASE with its own config at lr 2e-4. The same run on OpenMoji alone is the
   control: a base that only trained longer.
3. Own art: `own_art.py`'s flat clip-art fine-tune from the new base (650 steps, `--hint-jitter 0.5
   --select-by h10_ssim`, lr 2e-4), evaluated on its test split; one JSON object on stdout.

Papirus is GPL-3.0: a model trained on it is not shipped; this measures whether such a base helps.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from own_art import build_data, pix2pix, train_and_evaluate, unpack_deb

PACKAGE = "papirus-icon-theme"
APPS = Path("usr/share/icons/Papirus/64x64/apps")  # the colour app icons, one size (the others are copies)
RENDER = 128  # px: rendered twice the line art's size, so `data sketch` draws from a sharp picture
SIZE = 64  # the main job's size
FINE_TUNE = ["--lr", "2e-4", "--hint-jitter", "0.5", "--select-by", "h10_ssim"]


def icon_svgs(root: Path) -> list[Path]:
    """The app icons under an unpacked package tree `root`: SVG files, not symlinks (aliases of another)."""
    folder = root / APPS
    if not folder.is_dir():
        raise SystemExit(f"{folder} is missing: is {root} an unpacked {PACKAGE}?")
    return sorted(p for p in folder.iterdir() if p.suffix == ".svg" and p.is_file() and not p.is_symlink())


def _render(job: tuple[Path, Path]) -> bool:
    from pix2pix.data.datasets.openmoji import render_svg

    svg, png = job
    try:
        render_svg(svg.read_text(encoding="utf-8"), RENDER).save(png)
    except (OSError, ValueError, UnicodeDecodeError) as e:  # a broken icon is left out, named
        print(f"skipped {svg.name}: {e}", file=sys.stderr)
        return False
    return True


def icon_pairs(work: Path, deb: Path | None) -> Path:
    """The icons' (line art | colour) pairs at SIZE in work/papirus64, built once."""
    pairs = work / f"papirus{SIZE}"
    if (pairs / "dataset.json").is_file():
        return pairs
    root = unpack_deb(work / "papirus", deb, work, PACKAGE)
    pngs = work / "papirus_png"
    pngs.mkdir(parents=True, exist_ok=True)
    jobs = [(svg, pngs / f"{svg.stem}.png") for svg in icon_svgs(root)]
    with ProcessPoolExecutor(2) as pool:
        kept = sum(pool.map(_render, jobs, chunksize=64))
    print(f"{kept} of {len(jobs)} icons rendered", file=sys.stderr)
    from pix2pix.data.sketch import make_sketch_dataset

    make_sketch_dataset(pngs, pairs, method="xdog", size=SIZE, progress=True)
    return pairs


def mix(openmoji: Path, extra: list[Path], dest: Path) -> Path:
    """A dataset in `dest`: OpenMoji's train, val and test splits, and the train split of each of `extra`
    (its pairs named with the folder's name first, so no name is taken twice). Val and test stay OpenMoji's,
    so the base is selected and judged as the main job's model is."""
    shutil.rmtree(dest, ignore_errors=True)
    for split in ("train", "val", "test"):
        shutil.copytree(openmoji / split, dest / split)
    for source in extra:
        for pair in sorted((source / "train").rglob("*.png")):
            name = pair.relative_to(source / "train").as_posix().replace("/", "_")
            shutil.copyfile(pair, dest / "train" / f"{source.name}_{name}")
    meta = json.loads((openmoji / "dataset.json").read_text())
    meta["counts"] = {s: sum(1 for _ in (dest / s).rglob("*.png")) for s in ("train", "val", "test")}
    meta["extra_train"] = [str(s) for s in extra]
    (dest / "dataset.json").write_text(json.dumps(meta, indent=2) + "\n")
    return dest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, required=True, help="the main job's run (make demo's demo/run)")
    parser.add_argument("--openmoji", type=Path, default=None, help="its dataset (default: BASE/../data)")
    parser.add_argument("--sources", nargs="+", choices=("openmoji", "papirus"), default=["openmoji", "papirus"])
    parser.add_argument("--steps", type=int, default=1500, help="the base's further steps")
    parser.add_argument(
        "--work", type=Path, default=Path.home() / ".cache" / "pix2pix" / "own_art", help="own_art.py's folder"
    )
    parser.add_argument("--deb", type=Path, default=None, help=f"{PACKAGE}'s .deb (default: apt-get download)")
    parser.add_argument("--out", type=Path, default=None, help="the base's run folder (default: WORK/runs/base_...)")
    parser.add_argument("--base-only", action="store_true", help="train the base and stop (no own-art fine-tune)")
    args = parser.parse_args()
    tag = "_".join(args.sources)
    extra = [icon_pairs(args.work, args.deb)] if "papirus" in args.sources else []
    data = mix(args.openmoji or args.base.parent / "data", extra, args.work / f"base_data_{tag}")
    base = args.out or args.work / "runs" / f"base_{tag}"
    shutil.rmtree(base, ignore_errors=True)
    seconds = pix2pix(
        "train", "--config", str(args.base / "config.json"), "--data", str(data), "--out", str(base),
        "--init-from", str(args.base), "--lr", "2e-4", "--max-steps", str(args.steps),
    )  # fmt: skip
    result: dict[str, Any] = {"sources": args.sources, "base": str(base), "base_seconds": round(seconds, 1)}
    result["base_counts"] = json.loads((data / "dataset.json").read_text())["counts"]
    if not args.base_only:  # the own-art flat fine-tune from the base, evaluated
        flat = build_data(args.work, None, 420)
        result["fine_tuned"] = train_and_evaluate(
            flat, args.work / "runs", f"fine_tuned_from_base_{tag}", 650, ["--init-from", str(base), *FINE_TUNE]
        )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
