"""The evaluation report: one self-contained HTML page in a folder with its images.

The metrics table compares the model with copying the input through and with an untrained
model; then input | output | target for every image, worst first, so failures are seen first.
"""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, select_autoescape

from .evaluation import COPY, MODEL, UNTRAINED, Evaluation, _safe_name
from .io import atomic_write_text
from .metrics.image import HIGHER_IS_BETTER

LABELS = {MODEL: "trained model", COPY: "copy input (baseline)", UNTRAINED: "untrained model", "model_b": "run B"}
METRIC_LABELS = {"l1": "L1 ↓", "psnr": "PSNR (dB) ↑", "ssim": "SSIM ↑", "lpips": "LPIPS ↓", "fid": "FID ↓"}

TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{{ title }}</title>
<style>
 body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
 table.metrics { border-collapse: collapse; margin: 1em 0; }
 table.metrics td, table.metrics th { border: 1px solid #ccc; padding: 4px 10px; text-align: right; }
 table.metrics th:first-child, table.metrics td:first-child { text-align: left; }
 td.best { font-weight: bold; background: #e8f5e9; }
 .grid { display: grid; grid-template-columns: repeat(auto-fill, minmax({{ ncols * cell + 40 }}px, 1fr)); gap: 14px; }
 figure { margin: 0; } figure img { width: {{ cell }}px; height: {{ cell }}px; image-rendering: {{ rendering }}; border: 1px solid #ddd; }
 figcaption { font-size: 12px; color: #555; }
 .note { color: #555; max-width: 60em; }
</style></head>
<body>
<h1>{{ title }}</h1>
<p class="note">Run <code>{{ ev.run_dir }}</code>, checkpoint <code>{{ ev.checkpoint }}</code>{% if ev.step is not none %} (step {{ ev.step }}){% endif %},
split <b>{{ ev.split }}</b>: {{ ev.names|length }} images at {{ ev.size }}&times;{{ ev.size }} px, RGB in [0, 1], per-image means.
The honest baseline is <i>copy input</i>: handing the input through unchanged. A model that only redraws its input beats an untrained one but not this.</p>
<table class="metrics" id="metrics">
<tr><th>method</th>{% for k in metrics %}<th>{{ metric_labels[k] }}</th>{% endfor %}</tr>
{% for m in methods %}<tr data-method="{{ m }}"><td>{{ labels[m] }}</td>{% for k in metrics %}<td class="{{ 'best' if best[k] == m else '' }}">{{ '%.4f'|format(ev.mean[m][k]) if k not in ('psnr', 'fid') else '%.2f'|format(ev.mean[m][k]) }}</td>{% endfor %}</tr>
{% endfor %}</table>
{% if extra %}<p class="note">{{ extra }}</p>{% endif %}
<h2>Input | output{% if rows and rows[0].output_b %} A | output B{% endif %} | target, worst first (by L1)</h2>
<div class="grid" id="samples">
{% for row in rows %}<div class="sample"><div style="display:flex; gap:4px">
<figure><img src="{{ row.input }}" alt="input {{ row.name }}"></figure>
<figure><img src="{{ row.output }}" alt="output {{ row.name }}"></figure>
{% if row.output_b %}<figure><img src="{{ row.output_b }}" alt="output B {{ row.name }}"></figure>{% endif %}
<figure><img src="{{ row.target }}" alt="target {{ row.name }}"></figure></div>
<figcaption>{{ row.name }} &middot; L1 {{ '%.3f'|format(row.l1) }} &middot; PSNR {{ '%.1f'|format(row.psnr) }} &middot; SSIM {{ '%.3f'|format(row.ssim) }}</figcaption></div>
{% endfor %}</div>
</body></html>
"""


def write_report(
    evaluation: Evaluation, out_dir: str | Path, *, compare: Evaluation | None = None,
    title: str = "pix2pix evaluation", extra: str = "",
) -> Path:  # fmt: skip
    """Write out_dir/index.html for an evaluation whose images lie in out_dir/{inputs,outputs,targets}.

    With `compare` (a second run evaluated on the same images, outputs in out_dir/outputs_b),
    both runs stand side by side in the table and in every row of images.
    """
    out_dir = Path(out_dir)
    ev = evaluation
    means = dict(ev.mean)
    labels = dict(LABELS)
    if compare is not None:
        if compare.names != ev.names:
            raise ValueError(f"cannot compare {compare.run_dir} with {ev.run_dir}: they were scored on different images")
        means = {MODEL: ev.mean[MODEL], "model_b": compare.mean[MODEL], **{k: v for k, v in ev.mean.items() if k != MODEL}}
        labels[MODEL] = f"A: {Path(ev.run_dir).name}"
        labels["model_b"] = f"B: {Path(compare.run_dir).name}"
    ev_view = Evaluation(split=ev.split, names=ev.names, per_image=ev.per_image, mean=means, run_dir=ev.run_dir,
                         checkpoint=ev.checkpoint, step=ev.step, size=ev.size)  # fmt: skip
    methods = list(means)
    metrics = [k for k in METRIC_LABELS if k in means[MODEL]]
    best = {
        k: (max if HIGHER_IS_BETTER.get(k, True) else min)(methods, key=lambda m, k=k: means[m][k]) for k in metrics
    }
    order = sorted(range(len(ev.names)), key=lambda i: -ev.per_image[MODEL]["l1"][i])
    rows = []
    for i in order:
        stem = _safe_name(ev.names[i])
        rows.append(
            {
                "name": ev.names[i],
                "input": f"inputs/{stem}.png",
                "output": f"outputs/{stem}.png",
                "target": f"targets/{stem}.png",
                "output_b": f"outputs_b/{stem}.png" if compare is not None else None,
                **{k: ev.per_image[MODEL][k][i] for k in ("l1", "psnr", "ssim")},
            }
        )
    env = Environment(autoescape=select_autoescape(default=True))
    page = env.from_string(TEMPLATE).render(
        title=title, ev=ev_view, methods=methods, metrics=metrics, best=best, rows=rows, labels=labels,
        metric_labels=METRIC_LABELS, cell=max(96, min(ev.size, 256)), extra=extra,
        rendering="pixelated" if ev.size < 128 else "auto", ncols=4 if compare is not None else 3,
    )  # fmt: skip
    path = out_dir / "index.html"
    atomic_write_text(path, page)
    return path
