"""`pix2pix train` and `pix2pix plot`: train or resume a run, draw its loss curves."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ..config import build_config, field_index, read_config_file
from .common import _stoppable, main, user_errors

# --- train -----------------------------------------------------------------------------------

RESERVED = {"root"}  # set through --data
ALIASES = {"method": ("--model",)}  # the field reads better in code; users say --model cyclegan


# How `train --help` groups its options (issue 42): a config field's group by its name, else its section's.
HELP_GROUPS = ("run", "data", "model", "training", "hints", "precision and devices", "logging and checkpoints")
_GROUP_OF = {
    **dict.fromkeys(("device", "amp", "channels_last", "compile", "cpu_kernels"), "precision and devices"),
    **dict.fromkeys(
        ("save_every", "log_every", "val_every", "sample_every", "n_samples", "select_by", "tensorboard", "html"),
        "logging and checkpoints",
    ),
}


def help_group(name: str, section: str | None) -> str:
    """The `train --help` group of an option (its parameter name; `section`: its config section, if any)."""
    if section is None:
        return "run"
    if name in _GROUP_OF:
        return _GROUP_OF[name]
    if name.startswith("hint"):
        return "hints"
    return {"train": "training"}.get(section, section)


class GroupedCommand(click.Command):
    """A command whose --help lists its options under headings (HELP_GROUPS) instead of one long list."""

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        index = field_index()
        groups: dict[str, list[tuple[str, str]]] = {g: [] for g in HELP_GROUPS}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is not None:
                section = index[param.name][0] if param.name in index else None
                groups[help_group(str(param.name), section)].append(record)
        for group, records in groups.items():
            if records:
                with formatter.section(f"{group[0].upper()}{group[1:]} options"):
                    formatter.write_dl(records)


def config_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Add one option per config field; unset options leave the file's or default value."""
    for name, (_, f) in reversed(list(field_index().items())):
        if name in RESERVED:
            continue
        flags = [f"--{name.replace('_', '-')}", *ALIASES.get(name, ())]
        default = f.default if f.default is not dataclasses.MISSING else None
        help_text = f"{f.metadata.get('help', '')} [default: {default}]"
        if f.type in (bool, "bool"):
            fn = click.option(f"{flags[0]}/--no-{flags[0][2:]}", name, default=None, help=help_text)(fn)
        else:
            kind = {"int": int, "float": float, "str": str}.get(str(f.type), f.type)
            fn = click.option(*flags, name, type=kind, default=None, help=help_text)(fn)
    return fn


@main.command(cls=GroupedCommand, context_settings={"show_default": False})
@click.option("--data", "data_root", type=click.Path(path_type=Path), help="Dataset folder (with train/ val/ test/).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Run folder to create.")
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path),
    help="YAML or JSON config file, or a packaged config's name: openmoji_cpu, openmoji_cyclegan_cpu, own_art_128.",
)
@click.option("--resume", type=click.Path(file_okay=False, path_type=Path), help="Continue the run in this folder.")
@click.option("--stop-at-step", type=int, default=None, hidden=True, help="End early with a checkpoint (testing).")
@click.option(
    "--checkpoint",
    "init_checkpoint",
    default=None,
    help="With --init-from RUN: which of RUN's checkpoints to start from (default: best where it has one, else last).",
)
@config_options
@click.pass_context
@user_errors
def train(
    ctx: click.Context,
    data_root: Path | None,
    out: Path | None,
    config_file: Path | None,
    resume: Path | None,
    stop_at_step: int | None,
    init_checkpoint: str | None,
    **overrides: Any,
) -> None:
    """Train a model (pix2pix, or cyclegan with --model cyclegan), or resume one, or start from one (--init-from)."""
    from ..run_folder import checkpoint_dir
    from ..training.loop import resume as resume_run
    from ..training.loop import train as train_loop

    given = {k: v for k, v in overrides.items() if v is not None}
    if init_checkpoint is not None:
        if "init_from" not in given:
            raise click.UsageError("--checkpoint picks a checkpoint of --init-from RUN; give --init-from too")
        given["init_from"] = str(checkpoint_dir(given["init_from"], init_checkpoint))
    if resume is not None:
        if given or data_root or config_file or out:
            raise click.UsageError("--resume continues a run with its saved config; give no other options")
        summary = _stoppable(resume_run, resume, stop_at_step=stop_at_step, progress=ctx.obj["progress"])
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
        summary = _stoppable(train_loop, config, out, stop_at_step=stop_at_step, progress=ctx.obj["progress"])
        run_dir = out
    click.echo(
        f"trained {run_dir}: step {summary['steps']}/{summary['total_steps']} in {summary['seconds']:.0f} s "
        f"({summary['img_per_s']:.1f} img/s)"
    )


# --- plot ------------------------------------------------------------------------------------


@main.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="PNG to write (default: RUN_DIR/losses.png).",
)
@user_errors
def plot(run_dir: Path, out: Path | None) -> None:
    """Draw the loss curves of a run (in progress or finished) from its log.jsonl."""
    from ..methods import METHODS, method_for
    from ..run_folder import load_config
    from ..training.logging import read_jsonl
    from ..training.plots import plot_losses

    log_file = run_dir / "log.jsonl"
    if not log_file.is_file():
        raise FileNotFoundError(f"{run_dir}: no log.jsonl (is it a run folder?)")
    try:
        # The run's method names its losses; a bare log (no config.json beside it) gets every method's.
        methods = [method_for(load_config(run_dir))] if (run_dir / "config.json").is_file() else METHODS.values()
        panels = {title: losses for m in methods for title, losses in m.loss_panels.items()}
        path = plot_losses(read_jsonl(log_file), out or run_dir / "losses.png", loss_panels=panels, title=run_dir.name)
    except ImportError as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"loss curves: {path}")
