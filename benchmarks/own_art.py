"""Own-art benchmark (issue 27): colourful illustrations that are not emoji, from scratch and fine-tuned.

    python benchmarks/own_art.py --base demo/run                 # data, both trainings, evaluations, JSON
    python benchmarks/own_art.py --deb openclipart-png_*.deb    # a .deb fetched elsewhere (no apt here)
    python benchmarks/own_art.py --kind shaded --method strokes --base demo/run   # shaded pictures (issue 40)

1. Data: Debian's public-domain `openclipart-png` package (`apt-get download openclipart-png`, cached
   in --work). Its PNGs are composited on white and kept where they are colourful (at least
   MIN_COLOURED of the picture in saturated colour, at least MIN_HUES distinct hues: clip art with
   several flat colours, not grey drawings or one-colour logos), in a fixed order (a hash of each
   name, so every category is drawn from), up to --images pictures. `data sketch` makes line art at
   128 px (XDoG, solid ink) and splits them by name: about 300 train / 40 val / 60 test.
   `--kind shaded` (issue 40) keeps the colourful pictures that are shaded instead of flat: at least
   MIN_SHADED of their drawn pixels sit in a smooth gradient (every neighbour within SMOOTH levels, some
   differing at all), as painted pictures are; flat clip art changes colour only at its outlines.
   `--method` picks `data sketch`'s line art (xdog, the default; strokes for painted pictures).
2. Training: configs/own_art_128.yaml from scratch, and the same from the main job's model
   (`--init-from BASE`, where --base is given), the same number of steps each.
3. Evaluation: `pix2pix evaluate RUN --split test --checkpoint best --hints 10` (the hints curve),
   a report per run, and one JSON object on stdout: metrics, curve, training seconds. `--eval-on M ...`
   scores each run on the test split of other line art of the same pictures too (under "on").

`--method pool` (issue 40, item 1): each picture's line art drawn by one extractor of POOL, picked by a hash
of its name (about half each), so a model sees edges only and edges with ink alike; with `--eval-on xdog
strokes canny` it is judged on each kind, canny's harder one-pixel edges standing in for an unseen hand.

A script, not a test (tests/test_own_art.py runs its pieces on a tiny set).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

PACKAGE = "openclipart-png"
MIN_COLOURED = 0.15  # share of the picture in saturated colour (HSV saturation >= 0.3, value >= 0.2)
MIN_HUES = 3  # distinct hues (of 12 bins of 30 degrees) that each cover at least 1% of the picture
MIN_SIDE = 96  # smaller pictures are icons
MIN_SHADED = 0.35  # --kind shaded: share of drawn (not white) pixels in a smooth gradient
SMOOTH = 10  # a smooth gradient: neighbours differ by 1..SMOOTH levels (of 255) in their most changed channel
POOL = ("strokes", "xdog")  # --method pool: the extractors a picture's line art is drawn by
MAX_PIXELS = 4096 * 4096  # a few posters are far larger; skipped
CONFIG = Path(__file__).resolve().parent.parent / "configs" / "own_art_128.yaml"


def fetch_deb(work: Path, package: str = PACKAGE) -> Path:
    """`package`'s .deb in `work`, downloaded with `apt-get download` where it is not there yet."""
    have = sorted(work.glob(f"{package}_*.deb"))
    if have:
        return have[-1]
    if shutil.which("apt-get") is None:
        raise SystemExit(
            f"apt-get is not available here: fetch the Debian package {package} (a .deb) on a machine "
            f"that has it and pass --deb FILE"
        )
    work.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["apt-get", "download", package], cwd=work, capture_output=True, text=True)
    have = sorted(work.glob(f"{package}_*.deb"))
    if proc.returncode != 0 or not have:
        raise SystemExit(
            f"apt-get download {package} failed ({proc.stderr.strip().splitlines()[-1:]}); pass a .deb with --deb FILE"
        )
    return have[-1]


def unpack_deb(root: Path, deb: Path | None, work: Path, package: str = PACKAGE) -> Path:
    """`package`'s .deb (`deb`, else `fetch_deb` into `work`) unpacked into `root` once (dpkg-deb; a `done`
    file says it finished, and then nothing is fetched)."""
    if not (root / "done").is_file():
        deb = deb or fetch_deb(work, package)
        if shutil.which("dpkg-deb") is None:
            raise SystemExit(f"dpkg-deb is not available: unpack {deb} yourself into {root}")
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)  # dpkg-deb makes only the last folder (--deb skips the download that made --work)
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
        (root / "done").write_text("")
    return root


def on_white(img: Image.Image) -> Image.Image:
    """RGB on a white page (transparency composited)."""
    rgba = img.convert("RGBA")
    page = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(page, rgba).convert("RGB")


def colourful(img: Image.Image) -> bool:
    """Whether an RGB picture has several saturated colours (see MIN_COLOURED, MIN_HUES)."""
    small = img.copy()
    small.thumbnail((128, 128))
    hsv = np.asarray(small.convert("HSV"), dtype=np.float64) / 255.0
    coloured = (hsv[..., 1] >= 0.3) & (hsv[..., 2] >= 0.2)
    if coloured.mean() < MIN_COLOURED:
        return False
    bins = np.bincount((hsv[..., 0][coloured] * 12).astype(int) % 12, minlength=12) / coloured.size
    return int((bins >= 0.01).sum()) >= MIN_HUES


def shaded(img: Image.Image) -> bool:
    """Whether an RGB picture is shaded: at least MIN_SHADED of its drawn pixels in a smooth gradient."""
    small = img.copy()
    small.thumbnail((128, 128))
    a = np.asarray(small, dtype=np.int64)
    dx = np.abs(np.diff(a, axis=1)).max(2)[:-1, :]  # (H - 1, W - 1): the change to the right and below
    dy = np.abs(np.diff(a, axis=0)).max(2)[:, :-1]
    smooth = (dx <= SMOOTH) & (dy <= SMOOTH) & ((dx > 0) | (dy > 0))
    drawn = a.min(2)[:-1, :-1] < 240
    return bool(drawn.any()) and float((smooth & drawn).sum() / drawn.sum()) >= MIN_SHADED


def select(pngs: list[Path], dest: Path, limit: int, kind: str = "flat") -> list[Path]:
    """Composite up to `limit` colourful pictures (`kind` shaded: shaded ones only) on white into `dest` (flat
    names), in a fixed order."""
    dest.mkdir(parents=True, exist_ok=True)
    order = sorted(pngs, key=lambda p: hashlib.sha256(p.name.encode()).hexdigest())
    kept: list[Path] = []
    for path in order:
        if len(kept) >= limit:
            break
        try:
            with Image.open(path) as img:
                if min(img.size) < MIN_SIDE or img.width * img.height > MAX_PIXELS:
                    continue
                img.draft("RGB", (512, 512))
                img.thumbnail((512, 512))  # the dataset is 128 px: 512 keeps XDoG's input sharp
                rgb = on_white(img)
        except (OSError, ValueError, Image.DecompressionBombError):
            continue  # the package has a few unreadable files; the benchmark skips them
        if colourful(rgb) and (kind == "flat" or shaded(rgb)):
            out = dest / f"{path.parent.name}_{path.stem}.png"  # names repeat across folders
            rgb.save(out)
            kept.append(out)
    return kept


def build_data(work: Path, deb: Path | None, images: int, kind: str = "flat", method: str = "xdog") -> Path:
    """The benchmark's dataset (line art | colour at 128 px) in work/data (the flat pictures' XDoG line art;
    others in work/data_KIND_METHOD), built once. Method "pool": `mix_pool` of POOL's datasets."""
    from pix2pix.data.sketch import make_sketch_dataset

    suffix = "" if (kind, method) == ("flat", "xdog") else f"_{kind}_{method}"
    data = work / f"data{suffix}"
    if (data / "dataset.json").is_file():
        return data
    if method == "pool":
        return mix_pool({m: build_data(work, deb, images, kind, m) for m in POOL}, data)
    root = unpack_deb(work / "openclipart", deb, work)
    pngs = sorted((root / "usr" / "share" / "openclipart" / "png").rglob("*.png"))
    pictures = work / ("pictures" if kind == "flat" else f"pictures_{kind}")
    if not pictures.is_dir() or not any(pictures.iterdir()):
        kept = select(pngs, pictures, images, kind)
        print(f"{len(kept)} colourful {kind} pictures of {len(pngs)}", file=sys.stderr)
    make_sketch_dataset(pictures, data, method=method, size=128, fractions={"val": 0.1, "test": 0.15}, progress=True)
    return data


def mix_pool(sources: dict[str, Path], dest: Path) -> Path:
    """A dataset in `dest` whose every pair comes from one of `sources` (method -> a `data sketch` folder of the
    same pictures, so the same names in the same splits), picked by a hash of the pair's path: a fixed mix."""
    names = list(sources)
    first = sources[names[0]]
    picked = {m: 0 for m in names}
    for pair in sorted(first.glob("*/**/*.png")):
        rel = pair.relative_to(first)
        if rel.parts[0] not in ("train", "val", "test"):
            continue
        method = names[hashlib.sha256(rel.as_posix().encode()).digest()[0] % len(names)]
        source = sources[method] / rel
        if not source.is_file():
            raise ValueError(f"{source} is missing: the pool's datasets must hold the same pictures")
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, dest / rel)
        picked[method] += 1
    first_meta = json.loads((first / "dataset.json").read_text())
    meta = {k: first_meta[k] for k in ("source", "size", "fit", "counts", "fractions", "direction")}
    meta.update(method="pool", pool=picked, sources={m: str(p) for m, p in sources.items()})
    (dest / "dataset.json").write_text(json.dumps(meta, indent=2) + "\n")
    return dest


def pix2pix(*args: str) -> float:
    """Run the CLI; return its wall time in seconds."""
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pix2pix", "--no-progress", *args], check=True, stdout=sys.stderr
    )  # stdout: the JSON
    return time.perf_counter() - start


def train_and_evaluate(
    data: Path, runs: Path, name: str, steps: int, extra: list[str], on: dict[str, Path] | None = None
) -> dict[str, Any]:
    """Train the own-art config (plus `extra` options) into runs/name and evaluate it on the test split, and on
    the test split of each dataset of `on` (name -> folder; reports in runs/name/report_on_NAME)."""
    run = runs / name
    shutil.rmtree(run, ignore_errors=True)
    seconds = pix2pix(
        "train", "--config", str(CONFIG), "--data", str(data), "--out", str(run), "--max-steps", str(steps), *extra
    )
    result: dict[str, Any] = {"train_seconds": round(seconds, 1), "steps": steps, **evaluate(run, None, "report")}
    if on:
        result["on"] = {m: evaluate(run, d, f"report_on_{m}") for m, d in on.items()}
    return result


def evaluate(run: Path, data: Path | None, report: str) -> dict[str, Any]:
    """`pix2pix evaluate` of `run`'s best checkpoint on the test split of `data` (None: its own) into run/report."""
    pix2pix(
        "evaluate",
        str(run),
        "--split",
        "test",
        "--checkpoint",
        "best",
        "--hints",
        "10",
        "--no-untrained",
        "--out",
        str(run / report),
        *(["--data", str(data)] if data is not None else []),
    )
    metrics = json.loads((run / report / "metrics.json").read_text())
    return {
        "report": str(run / report / "index.html"),
        "mean": metrics["mean"],
        "curve": metrics.get("hint_curve", {}).get("mean"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--work",
        type=Path,
        default=Path.home() / ".cache" / "pix2pix" / "own_art",
        help="where the package, pictures, dataset and runs go",
    )
    parser.add_argument("--deb", type=Path, default=None, help=f"{PACKAGE}'s .deb (default: apt-get download)")
    parser.add_argument("--images", type=int, default=420, help="colourful pictures to keep")
    parser.add_argument("--kind", choices=("flat", "shaded"), default="flat", help="flat clip art or shaded pictures")
    parser.add_argument("--method", default="xdog", help="data sketch's line art (xdog, strokes, canny; pool)")
    parser.add_argument(
        "--eval-on", nargs="+", default=[], metavar="METHOD", help="also score each run on these methods' line art"
    )
    parser.add_argument("--base", type=Path, default=None, help="the main job's run, to fine-tune from (--init-from)")
    parser.add_argument("--steps", type=int, default=None, help="training steps (default: the config's)")
    parser.add_argument(
        "--fine-tune-lr", type=float, default=None, help="learning rate of the fine-tuned run (default: the config's)"
    )
    parser.add_argument("--only", choices=("scratch", "fine_tuned"), default=None, help="train one of the two runs")
    parser.add_argument("--tag", default="", help="suffix of the runs' folder names (to keep several experiments)")
    parser.add_argument("--data-only", action="store_true", help="build the dataset and stop")
    parser.add_argument("train_args", nargs="*", help="more `pix2pix train` options for both runs (after --)")
    args = parser.parse_args()
    data = build_data(args.work, args.deb, args.images, args.kind, args.method)
    counts = json.loads((data / "dataset.json").read_text())["counts"]
    if args.data_only:
        print(json.dumps({"data": str(data), "counts": counts}))
        return
    from pix2pix.config import Config

    steps = args.steps or Config.load(CONFIG).train.max_steps
    on = {m: build_data(args.work, args.deb, args.images, args.kind, m) for m in args.eval_on}
    result: dict[str, Any] = {"data": str(data), "counts": counts, "config": str(CONFIG), "kind": args.kind}
    if args.only != "fine_tuned":
        name = f"scratch{'' if args.kind == 'flat' else '_' + args.kind}{args.tag}"
        result["scratch"] = train_and_evaluate(data, args.work / "runs", name, steps, args.train_args, on)
    if args.base is not None and args.only != "scratch":
        lr = [] if args.fine_tune_lr is None else ["--lr", str(args.fine_tune_lr)]
        result["fine_tuned"] = train_and_evaluate(
            data,
            args.work / "runs",
            f"fine_tuned{'' if args.kind == 'flat' else '_' + args.kind}{args.tag}",
            steps,
            ["--init-from", str(args.base), *lr, *args.train_args],
            on,
        )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
