"""`pix2pix translate`, `export` and `serve`: use a trained run."""

from __future__ import annotations

import warnings
from pathlib import Path

import click

from ..options import DIRECTIONS, EXPORT_FORMATS, MAX_PIXELS, MAX_QUEUE, MAX_UPLOAD_BYTES
from .common import (
    backend_option,
    checkpoint_option,
    device_option,
    direction_option,
    main,
    scale_option,
    spread_option,
    user_errors,
    weights_option,
)

# --- translate -------------------------------------------------------------------------------


@main.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Output folder.")
@click.option(
    "--size",
    type=int,
    default=None,
    help="Resize inputs to SIZE x SIZE and run the generator there (default: each input keeps its size).",
)
@scale_option
@click.option("--dropout", is_flag=True, help="Keep dropout on at test time (the paper's noise).")
@checkpoint_option
@click.option("--batch-size", default=8, show_default=True, help="Images per forward pass.")
@weights_option
@backend_option
@device_option
@click.option(
    "--hints",
    "hints_file",
    type=click.Path(path_type=Path),
    default=None,
    help="Colour hints for one input (hints models): an RGBA image of its size (alpha > 0 marks a hint, "
    'RGB its colour) or a JSON list of {"x", "y", "color": "#rrggbb", "size"}.',
)
@spread_option
@direction_option
@click.option("--skip-bad", is_flag=True, help="Go past files that cannot be read and list them at the end.")
@click.pass_context
@user_errors
def translate(
    ctx: click.Context,
    run_dir: Path,
    inputs: tuple[Path, ...],
    out: Path,
    size: int | None,
    scale: str,
    dropout: bool,
    checkpoint: str,
    batch_size: int,
    weights: str,
    backend: str,
    device: str,
    hints_file: Path | None,
    spread: str,
    direction: str,
    skip_bad: bool,
) -> None:
    """Translate image files and folders with a trained run."""
    from ..fullsize import UnhonouredHint
    from ..inference import Pix2Pix, translate_paths

    pipe = Pix2Pix.from_pretrained(
        run_dir,
        checkpoint=checkpoint,
        weights=weights,
        backend=backend,
        device=device,
        direction=direction,
        spread=spread,
    )
    with warnings.catch_warnings(record=True) as unhonoured:
        warnings.simplefilter("always", UnhonouredHint)
        done = translate_paths(
            pipe,
            inputs,
            out,
            size=size,
            scale=scale,
            dropout=dropout,
            batch_size=batch_size,
            progress=ctx.obj["progress"],
            hints=hints_file,
            skip_bad=skip_bad,
        )
    click.echo(f"translated {len(done.written)} image(s) into {out}")
    for w in unhonoured:
        click.echo(f"warning: {w.message}", err=True)
    if done.skipped:
        click.echo(f"skipped {len(done.skipped)} file(s) that could not be read:")
        for path, why in done.skipped:
            click.echo(f"  {path}: {why}")


# --- export and serve -----------------------------------------------------------------------


@main.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(EXPORT_FORMATS), default="onnx", show_default=True)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="File to write (default: RUN_DIR/export/generator.onnx, .pt or .tflite).",
)
@checkpoint_option
@weights_option
@click.option(
    "--direction",
    type=click.Choice([*DIRECTIONS, "both"]),
    default="AtoB",
    show_default=True,
    help="Which generator of a CycleGAN run: one direction, or both (one file each).",
)
@click.option(
    "--images",
    "images_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Check parity on these images (default: the run's dataset, or drawings made here without it).",
)
@user_errors
def export(
    run_dir: Path, fmt: str, out: Path | None, checkpoint: str, weights: str, direction: str, images_dir: Path | None
) -> None:
    """Export the generator (ONNX, TorchScript or TFLite), check it against PyTorch, write a sidecar JSON."""
    from ..export.exporter import PARITY_TOLERANCE, export_run
    from ..run_folder import writing_into

    directions = ["AtoB", "BtoA"] if direction == "both" else [direction]
    if out is not None and len(directions) > 1:
        raise click.UsageError("--out names one file; with --direction both, leave it out (RUN/export/ holds both)")
    for d in directions:
        try:
            with writing_into(run_dir, out if out is not None else run_dir / "export"):  # one writer per run
                r = export_run(
                    run_dir,
                    fmt=fmt,
                    out=out,
                    checkpoint=checkpoint,
                    weights=weights,
                    direction=d,
                    images_dir=images_dir,
                )
        except ImportError as err:
            raise click.ClickException(str(err)) from None
        click.echo(  # one line per file: what was written, and how close it is to PyTorch
            f"exported {fmt} ({d}): {r.path} + {r.sidecar.name}; parity vs PyTorch on {r.n_images} {r.source} "
            f"(and a padded size): max |diff| {r.max_abs_diff:.2e} (tolerance {PARITY_TOLERANCE:.0e})"
        )
    if fmt == "torchscript":
        click.echo("note: PyTorch deprecates TorchScript; prefer ONNX for new deployments")


@main.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to bind (loopback unless told otherwise)."
)
@click.option("--port", default=8000, show_default=True)
@backend_option
@checkpoint_option
@click.option(
    "--size",
    type=int,
    default=None,
    help="Resize inputs to SIZE x SIZE and run the generator there (default: each input keeps its size).",
)
@scale_option
@click.option("--max-bytes", default=MAX_UPLOAD_BYTES, show_default=True, help="Largest upload in bytes.")
@click.option("--max-pixels", default=MAX_PIXELS, show_default=True, help="Largest decoded image in pixels.")
@click.option("--max-queue", default=MAX_QUEUE, show_default=True, help="Requests waiting or running before 503.")
@device_option
@direction_option
@spread_option
@user_errors
def serve(
    run_dir: Path,
    host: str,
    port: int,
    backend: str,
    checkpoint: str,
    size: int | None,
    scale: str,
    max_bytes: int,
    max_pixels: int,
    max_queue: int,
    device: str,
    direction: str,
    spread: str,
) -> None:
    """Serve the model over HTTP with a drawing page at / and the API at /v1/translate (docs at /docs)."""
    from ..serve.app import ServeSettings
    from ..serve.app import serve as run_server

    settings = ServeSettings(max_bytes=max_bytes, max_pixels=max_pixels, max_queue=max_queue, size=size, scale=scale)
    try:
        run_server(
            run_dir,
            host=host,
            port=port,
            settings=settings,
            checkpoint=checkpoint,
            backend=backend,
            device=device,
            direction=direction,
            spread=spread,
        )
    except ImportError as err:
        raise click.ClickException(str(err)) from None
