"""`pix2pix evaluate`: score a run against copying its input; write metrics and a report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..options import HINT_SHAPES
from .common import checkpoint_option, direction_option, main, scale_option, spread_option, user_errors, weights_option

# --- evaluate --------------------------------------------------------------------------------


@main.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--split", default="test", show_default=True, help="Split to evaluate.")
@click.option(
    "--data", "data_root", type=click.Path(path_type=Path), default=None, help="Dataset (default: the run's)."
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Report folder (default: RUN_DIR/eval-SPLIT).",
)
@checkpoint_option
@weights_option
@click.option("--untrained/--no-untrained", default=True, show_default=True, help="Also score an untrained model.")
@click.option(
    "--compare",
    "compare_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="A second run to show side by side on the same images.",
)
@click.option(
    "--lpips-weights",
    type=click.Path(path_type=Path),
    default=None,
    help="LPIPS weights: a combined file, or torchvision's vgg16 file (heads from the cache).",
)
@click.option(
    "--inception-weights",
    type=click.Path(path_type=Path),
    default=None,
    help="FID Inception weights (pt_inception-2015-12-05-6726825d.pth).",
)
@click.option(
    "--hints",
    default=0,
    show_default=True,
    type=click.IntRange(0, 32),
    help="Hints models: also score the model given N hints per image, simulated from the target with a "
    "fixed seed (the same hints for every run); 0 is the plain evaluation.",
)
@click.option(
    "--curve/--no-curve",
    default=True,
    show_default=True,
    help="Hints models: score 0, 1, 2, 5, 10 and 20 hints for the report's curve.",
)
@click.option(
    "--hint-shape",
    type=click.Choice(HINT_SHAPES),
    default="dots",
    show_default=True,
    help="Hints models: the simulated hints as square dots (the standard protocol) or as short strokes through "
    "the same centres, each kept inside one colour area.",
)
@click.option(
    "--stroke-curve",
    is_flag=True,
    help="Hints models: score the curve with strokes as well as with dots (metrics.json's hint_curve_strokes; "
    "the report shows both).",
)
@direction_option
@click.option(
    "--size",
    type=int,
    default=None,
    help="Score at SIZE x SIZE: inputs and targets resized to it, the model meeting it as --scale says "
    "(default: the training size).",
)
@scale_option
@spread_option
@click.pass_context
@user_errors
def evaluate(ctx: click.Context, run_dir: Path, split: str, out: Path | None, **options: Any) -> None:
    """Score a run on a split against the copy-input baseline; write metrics.json and a report."""
    from ..run_folder import writing_into

    out = out if out is not None else run_dir / f"eval-{split}"
    with writing_into(run_dir, out):  # a report written into the run: one writer per run
        _evaluate(ctx, run_dir=run_dir, split=split, out=out, **options)


def _evaluate(
    ctx: click.Context,
    run_dir: Path,
    split: str,
    data_root: Path | None,
    out: Path,
    checkpoint: str,
    weights: str,
    untrained: bool,
    compare_dir: Path | None,
    lpips_weights: Path | None,
    inception_weights: Path | None,
    hints: int,
    curve: bool,
    hint_shape: str,
    stroke_curve: bool,
    direction: str,
    size: int | None,
    scale: str,
    spread: str,
) -> None:
    """The evaluate command's work, with its run locked where it writes into it."""
    from ..evaluation import evaluate as run_evaluation
    from ..evaluation import write_metrics
    from ..metrics.fid import load_inception
    from ..metrics.lpips import load_lpips
    from ..report import write_report
    from ..run_folder import checkpoint_path

    lpips, inception = load_lpips(lpips_weights), load_inception(inception_weights)
    common = dict(
        split=split,
        checkpoint=checkpoint,
        weights=weights,
        lpips=lpips,
        inception=inception,
        progress=ctx.obj["progress"],
        direction=direction,
        size=size,
        scale=scale,
        spread=spread,
        hint_shape=hint_shape,
    )
    ev = run_evaluation(
        run_dir,
        data_root=data_root,
        with_untrained=untrained,
        image_dir=out,
        hints=hints,
        curve=curve,
        stroke_curve=stroke_curve,
        **common,
    )
    compare = None
    if compare_dir is not None:
        # Run B is scored on A's images, from the same checkpoint name where it has one.
        b_common = {**common, "checkpoint": checkpoint if checkpoint_path(compare_dir, checkpoint).is_dir() else "auto"}
        compare = run_evaluation(
            compare_dir,
            data_root=data_root or ev_data_root(run_dir),
            with_untrained=False,
            image_dir=out,
            output_subdir="outputs_b",
            **b_common,
        )
    write_metrics(ev, out / "metrics.json")
    if compare is not None:
        write_metrics(compare, out / "metrics_b.json")
    page = write_report(ev, out, compare=compare)
    _print_evaluation(ev, compare, compare_dir)
    click.echo(f"report: {page}")
    click.echo(f"metrics: {out / 'metrics.json'}")


def _print_evaluation(ev: Any, compare: Any, compare_dir: Path | None) -> None:
    """The evaluation's table, the verdict against copying the input, and the hints curve."""
    from ..evaluation import COPY, beats_baseline
    from ..report import METRIC_LABELS, entry_label

    metrics = [k for k in METRIC_LABELS if k in ev.mean["model"]]
    kind = "per-image means, RGB in [0, 1]" if ev.paired else "unpaired: no targets; cycle errors are L1 in [0, 1]"
    how = f", scale {ev.scale}" if ev.scale != "native" else ""
    how += f", hints spread by {ev.spread}" if ev.spread != "fill" else ""
    how += f", hints as {ev.hint_shape}" if ev.hint_shape != "dots" else ""
    click.echo(f"{ev.split}: {len(ev.names)} images at {ev.size}px{how} ({kind})")
    click.echo(f"  {'':26s}" + "".join(f"{k.upper():>9s}" for k in metrics))
    rows = [
        (entry_label(m) if not (ev.hints and m == "model") else "trained model, no hints", vals)
        for m, vals in ev.mean.items()
    ]
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
            click.echo(f"  {entry_label(key)} {verdict} the copy-input baseline (better on: {better})")
    for curve, what in ((ev.curve, ""), (ev.stroke_curve, "strokes ")):
        if not curve:
            continue
        click.echo(f"  {what}hints per image:" + "".join(f"{c:>8d}" for c in sorted(curve)))
        for k in ("l1", "psnr", "ssim"):
            click.echo(
                f"  {what}{k.upper():>16s}"
                + "".join(f"{curve[c][k]:8.2f}" if k == "psnr" else f"{curve[c][k]:8.4f}" for c in sorted(curve))
            )


def ev_data_root(run_dir: Path) -> str:
    """The dataset a run was trained on, so a compared run is scored on the same images."""
    from ..run_folder import checkpoint_dir, load_config, resolve_data_root

    folder = checkpoint_dir(run_dir)
    return resolve_data_root(folder, load_config(folder))
