"""The evaluation report: one self-contained HTML page in a folder with its images.

The metrics table compares the model with copying the input through and with an untrained
model; then input | output | target for every image, worst first, so failures are seen first.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from jinja2 import Environment, select_autoescape

from .evaluation import COPY, MODEL, UNTRAINED, Evaluation, _safe_name, hinted
from .io import atomic_write_text
from .metrics.image import HIGHER_IS_BETTER

LABELS = {MODEL: "trained model", COPY: "copy input (baseline)", UNTRAINED: "untrained model", "model_b": "run B"}


def entry_label(key: str) -> str:
    """The table label of an entry (a row of the table): 'model_h10' -> 'trained model, 10 hints'."""
    if key.startswith(f"{MODEL}_h") and key[len(MODEL) + 2 :].isdigit():
        return f"trained model, {key[len(MODEL) + 2 :]} hints"
    return LABELS.get(key, key)


METRIC_LABELS = {
    "l1": "L1 ↓",
    "psnr": "PSNR (dB) ↑",
    "ssim": "SSIM ↑",
    "lpips": "LPIPS ↓",
    "fid": "FID ↓",
    "kid": "KID ↓",
    "cycle_a": "cycle A→B→A L1 ↓",
    "cycle_b": "cycle B→A→B L1 ↓",
}


def _template() -> str:
    """The report page's Jinja template (package data: templates/report.html)."""
    return resources.files("pix2pix").joinpath("templates/report.html").read_text(encoding="utf-8")


def _table(ev: Evaluation, compare: Evaluation | None) -> tuple[Evaluation, dict[str, str], dict[str, str], list[str]]:
    """The metrics table: the evaluation as shown (with run B's row where compared), each entry's
    label, the best entry per metric, and the metrics shown."""
    means = dict(ev.mean)
    labels = {m: entry_label(m) for m in means}
    if ev.hints:
        labels[MODEL] = "trained model, no hints"
        how = (", as strokes" if ev.hint_shape == "strokes" else "") + (
            f", spread by {ev.spread}" if ev.spread != "fill" else ""
        )
        labels[hinted(ev.hints)] = f"trained model, {ev.hints} hints{how}"
    if compare is not None:
        if compare.names != ev.names:
            raise ValueError(
                f"cannot compare {compare.run_dir} with {ev.run_dir}: they were scored on different images"
            )
        means = {
            MODEL: ev.mean[MODEL],
            "model_b": compare.mean[MODEL],
            **{k: v for k, v in ev.mean.items() if k != MODEL},
        }
        labels[MODEL] = f"A: {Path(ev.run_dir).name}"
        labels["model_b"] = f"B: {Path(compare.run_dir).name}"
    ev_view = Evaluation(
        split=ev.split,
        names=ev.names,
        per_image=ev.per_image,
        mean=means,
        run_dir=ev.run_dir,
        checkpoint=ev.checkpoint,
        step=ev.step,
        size=ev.size,
        hints=ev.hints,
        spread=ev.spread,
        hint_shape=ev.hint_shape,
    )
    entries = list(means)
    metrics = [k for k in METRIC_LABELS if k in means[MODEL]]
    best = {
        k: (max if HIGHER_IS_BETTER.get(k, True) else min)(
            [m for m in entries if k in means[m]], key=lambda m, k=k: means[m][k]
        )
        for k in metrics
    }
    return ev_view, labels, best, metrics


def _sample_rows(ev: Evaluation, compare: Evaluation | None) -> tuple[list[dict[str, Any]], list[tuple[str, str]], str]:
    """One row of pictures per image, worst first: the rows, the columns (subfolder, label), and
    what "worst" is measured by."""
    per_image = ev.per_image[MODEL]
    worst_key = "l1" if "l1" in per_image else next(iter(per_image))
    order = sorted(range(len(ev.names)), key=lambda i: -per_image[worst_key][i])
    # Columns: (subfolder, label); one figure each per row.
    columns = [("inputs", "input"), ("outputs", "output")]
    if ev.hints:
        columns = [
            ("inputs", "input"),
            ("outputs", "output, no hints"),
            (f"hints_h{ev.hints}", f"{ev.hints} hints"),
            (f"outputs_h{ev.hints}", f"output, {ev.hints} hints"),
        ]
    if compare is not None:
        columns = [("inputs", "input"), ("outputs", "output A"), ("outputs_b", "output B")]
    columns.append(("targets", "target") if ev.paired else ("reconstructions", "back again"))
    shown = {
        "l1": ("L1", "{:.3f}"),
        "psnr": ("PSNR", "{:.1f}"),
        "ssim": ("SSIM", "{:.3f}"),
        "cycle_a": ("cycle L1", "{:.3f}"),
    }
    rows = []
    for i in order:
        stem = _safe_name(ev.names[i])
        rows.append(
            {
                "name": ev.names[i],
                "images": [(f"{sub}/{stem}.png", label) for sub, label in columns],
                "captions": [(shown[k][0], shown[k][1].format(v[i])) for k, v in per_image.items() if k in shown],
            }
        )
    return rows, columns, shown.get(worst_key, (worst_key,))[0]


def write_report(
    evaluation: Evaluation,
    out_dir: str | Path,
    *,
    compare: Evaluation | None = None,
    title: str = "pix2pix evaluation",
    extra: str = "",
) -> Path:
    """Write out_dir/index.html for an evaluation whose images lie in out_dir/{inputs,outputs,targets}.

    With `compare` (a second run evaluated on the same images, outputs in out_dir/outputs_b),
    both runs stand side by side in the table and in every row of images.
    """
    out_dir, ev = Path(out_dir), evaluation
    ev_view, labels, best, metrics = _table(ev, compare)
    rows, columns, worst_label = _sample_rows(ev, compare)
    curve_counts = sorted(ev.curve)
    curve_metrics = [k for k in ("l1", "psnr", "ssim") if ev.curve and k in ev.curve[curve_counts[0]]]
    baseline = ev.mean.get(COPY)
    env = Environment(autoescape=select_autoescape(default=True))
    page = env.from_string(_template()).render(
        title=title,
        ev=ev_view,
        entries=list(ev_view.mean),
        metrics=metrics,
        best=best,
        rows=rows,
        labels=labels,
        metric_labels=METRIC_LABELS,
        cell=max(96, min(ev.size, 256)),
        extra=extra,
        rendering="pixelated" if ev.size < 128 else "auto",
        ncols=len(columns),
        columns=[label for _, label in columns],
        worst_label=worst_label,
        curve=ev.curve,
        curve_counts=curve_counts,
        curve_metrics=curve_metrics,
        curve_svg=curve_svg(ev.curve, baseline) if ev.curve else "",
        stroke_curve=ev.stroke_curve,
        stroke_curve_svg=curve_svg(ev.stroke_curve, baseline) if ev.stroke_curve else "",
    )
    path = out_dir / "index.html"
    atomic_write_text(path, page)
    return path


def curve_svg(curve: dict[int, dict[str, float]], baseline: dict[str, float] | None) -> str:
    """Inline SVG: one small chart per metric of the model against the number of hints, the copy
    baseline dashed. No plotting library: the report stays one self-contained page."""
    counts = sorted(curve)
    panels = [
        _curve_panel(k, counts, [curve[c][k] for c in counts], baseline[k] if baseline else None)
        for k in ("l1", "psnr", "ssim")
    ]
    return '<div style="display:flex; gap:12px; flex-wrap:wrap">' + "".join(panels) + "</div>"


def _curve_panel(
    metric: str, counts: list[int], ys: list[float], base: float | None, *, width: int = 260, height: int = 180
) -> str:
    left, right, top, bottom = 46, 10, 22, 28
    lo, hi = min(ys + ([base] if base is not None else [])), max(ys + ([base] if base is not None else []))
    pad = (hi - lo) * 0.1 or abs(hi) * 0.05 or 1.0

    def x_of(i: int) -> float:
        return left + (width - left - right) * (i / max(len(counts) - 1, 1))

    def y_of(v: float) -> float:
        return top + (height - top - bottom) * (1 - (v - lo + pad) / (hi - lo + 2 * pad))

    fmt = "{:.1f}" if metric == "psnr" else "{:.3f}"
    label = METRIC_LABELS[metric]
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="{label} against hints" data-metric="{metric}">',
        f'<text x="{width / 2}" y="14" text-anchor="middle" font-size="12">{label}</text>',
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" stroke="#999"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="#999"/>',
        f'<text x="{(left + width - right) / 2}" y="{height - 2}" text-anchor="middle" font-size="10">hints per '
        "image</text>",
    ]
    for v in (lo, hi):
        parts.append(
            f'<text x="{left - 4}" y="{y_of(v) + 4:.1f}" text-anchor="end" font-size="10">{fmt.format(v)}</text>'
        )
    for i, c in enumerate(counts):
        parts.append(
            f'<text x="{x_of(i):.1f}" y="{height - bottom + 14}" text-anchor="middle" font-size="10">{c}</text>'
        )
    if base is not None:
        parts.append(
            f'<line x1="{left}" y1="{y_of(base):.1f}" x2="{width - right}" y2="{y_of(base):.1f}" '
            'stroke="#c62828" stroke-dasharray="4 3"><title>copy input</title></line>'
        )
    points = " ".join(f"{x_of(i):.1f},{y_of(v):.1f}" for i, v in enumerate(ys))
    parts.append(f'<polyline points="{points}" fill="none" stroke="#1565c0" stroke-width="2"/>')
    for i, (c, v) in enumerate(zip(counts, ys)):
        parts.append(
            f'<circle cx="{x_of(i):.1f}" cy="{y_of(v):.1f}" r="3" fill="#1565c0">'
            f"<title>{c} hints: {fmt.format(v)}</title></circle>"
        )
    parts.append("</svg>")
    return "".join(parts)
