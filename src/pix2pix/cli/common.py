"""What every command shares: the `main` group, the options several commands take, and how a
library error or a stopped run reaches the user."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from typing import Any

import click

from .. import __version__
from ..io import RunWriteError
from ..options import BACKENDS, DIRECTIONS, HINT_SPREADS, SCALES, WEIGHTS

# What a user can act on: a bad value or file, or a run folder that could not be written (a full disk).
USER_ERRORS = (ValueError, FileNotFoundError, NotADirectoryError, IsADirectoryError, RunWriteError)


def _stoppable(run: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a training function; a run stopped by Ctrl-C or SIGTERM (saved, with its resume command)
    exits with the shell's code for that signal (130, 143)."""
    from ..training.stopping import TrainingStopped

    try:
        return run(*args, **kwargs)
    except TrainingStopped as stop:
        click.echo(str(stop), err=True)
        sys.exit(stop.exit_code)


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
    "--device",
    default="auto",
    show_default=True,
    help="torch device: auto (CUDA, then Apple's MPS, then the CPU), cpu, cuda, cuda:N or mps.",
)
checkpoint_option = click.option(
    "--checkpoint",
    default="auto",
    show_default=True,
    help="Checkpoint name in RUN_DIR/checkpoints (best, last); auto: best where the run kept one, else last.",
)
weights_option = click.option(
    "--weights",
    type=click.Choice(WEIGHTS),
    default="auto",
    show_default=True,
    help="EMA or raw generator weights (auto: EMA where the run kept one).",
)
backend_option = click.option(
    "--backend",
    type=click.Choice(BACKENDS),
    default="torch",
    show_default=True,
    help="Run the generator in PyTorch or ONNX Runtime (exported once into the cache folder, by weights hash).",
)
direction_option = click.option(
    "--direction",
    type=click.Choice(DIRECTIONS),
    default="AtoB",
    show_default=True,
    help="Which way a CycleGAN run translates (pix2pix runs: AtoB).",
)
# How an input of its own size is coloured (options.SCALES; Pix2Pix.translate_full): translate, evaluate, serve.
scale_option = click.option(
    "--scale",
    type=click.Choice(SCALES),
    default="auto",
    show_default=True,
    help="auto: the generator at its training scale, the result at the input's size with the input's own "
    "strokes; bicubic: that result upsampled plainly; native: the generator on the input as it is.",
)
# How a hints model's hints are spread (options.HINT_SPREADS; Pix2Pix.from_pretrained): translate, evaluate, serve.
spread_option = click.option(
    "--spread",
    type=click.Choice(HINT_SPREADS),
    default="fill",
    show_default=True,
    help="Hints models: fill, each hint over its region as the model was trained; propagate, each hint "
    "propagated across texture and gaps but not strokes first (models trained with hint_fill; slower).",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="pix2pix")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show progress bars.")
@click.option("-v", "--verbose", is_flag=True, help="Log more detail.")
@click.pass_context
def main(ctx: click.Context, progress: bool, verbose: bool) -> None:
    """pix2pix: paired image-to-image translation with conditional GANs."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(message)s", stream=sys.stderr)
    ctx.obj = {"progress": progress}
