"""Judge a trained run on a split: the model against copying the input through and against an
untrained model of the same architecture, per image and on average."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from . import seeding
from .config import apply_overrides
from .data.layouts import dataset_for
from .images import from_uint8, from_unit, tensor_to_pil, to_unit
from .inference import Pix2Pix
from .io import atomic_write_text
from .metrics.image import METRICS, image_metrics
from .options import HINT_SHAPES

log = logging.getLogger(__name__)

MODEL, COPY, UNTRAINED = "model", "copy_input", "untrained"


def hinted(count: int) -> str:
    """The table entry of the model given `count` simulated hints: 'model_h10'."""
    return f"{MODEL}_h{count}"


@dataclass
class Evaluation:
    split: str
    names: list[str]
    per_image: dict[str, dict[str, list[float]]]  # entry (a row of the table) -> metric -> values
    mean: dict[str, dict[str, float]] = field(default_factory=dict)
    run_dir: str = ""
    checkpoint: str = "auto"
    step: int | None = None
    size: int = 0
    scale: str = "native"  # how the model met `size` (Pix2Pix.translate_full); native at the training size
    paired: bool = True  # scored against targets; False: an unpaired split (cycle errors, FID / KID)
    hints: int = 0  # simulated hints per image of the hinted model's entry (0: none)
    spread: str = "fill"  # how the hints were spread (options.HINT_SPREADS; Pix2Pix.from_pretrained)
    hint_shape: str = "dots"  # the simulated hints' shape (options.HINT_SHAPES): dots, the standard protocol
    # Hints models: metric means of the model against the number of simulated hints.
    curve: dict[int, dict[str, float]] = field(default_factory=dict)
    curve_per_image: dict[int, dict[str, list[float]]] = field(default_factory=dict)
    # With evaluate(stroke_curve=True): the same curve with strokes through the dots' centres.
    stroke_curve: dict[int, dict[str, float]] = field(default_factory=dict)
    stroke_curve_per_image: dict[int, dict[str, list[float]]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        rows = [
            {"name": n, **{m: {k: v[i] for k, v in self.per_image[m].items()} for m in self.per_image}}
            for i, n in enumerate(self.names)
        ]
        out = {
            "run_dir": self.run_dir,
            "checkpoint": self.checkpoint,
            "step": self.step,
            "split": self.split,
            "paired": self.paired,
            "size": self.size,
            "scale": self.scale,
            "n_images": len(self.names),
            "mean": self.mean,
            "per_image": rows,
        }
        if self.hints or self.curve:
            out["spread"] = self.spread
            out["hint_shape"] = self.hint_shape
        if self.curve:
            out["hints"] = self.hints
            out["hint_curve"] = _curve_json(self.curve, self.curve_per_image)
        if self.stroke_curve:
            out["hint_curve_strokes"] = _curve_json(self.stroke_curve, self.stroke_curve_per_image)
        return out


def _curve_json(curve: dict[int, dict[str, float]], per_image: dict[int, dict[str, list[float]]]) -> dict[str, Any]:
    return {
        "counts": sorted(curve),
        "mean": {str(c): curve[c] for c in sorted(curve)},
        "per_image": {str(c): per_image[c] for c in sorted(per_image)},
        "seeded_by": "image name (the same hints for every run)",
    }


EVAL_PIXELS = 16 * 256 * 256  # at most this many pixels per evaluation batch (16 images at 256 px)


@torch.no_grad()
def evaluate(
    run_dir: str | Path,
    *,
    split: str = "test",
    data_root: str | Path | None = None,
    checkpoint: str = "auto",
    weights: str = "auto",
    batch_size: int = 16,
    with_untrained: bool = True,
    image_dir: str | Path | None = None,
    output_subdir: str = "outputs",
    lpips: torch.nn.Module | None = None,
    inception: torch.nn.Module | None = None,
    progress: bool = False,
    hints: int = 0,
    curve: bool = True,
    direction: str = "AtoB",
    size: int | None = None,
    scale: str = "auto",
    spread: str = "fill",
    hint_shape: str = "dots",
    stroke_curve: bool = False,
) -> Evaluation:
    """Metrics of the run's generator on `split`, beside the copy and untrained baselines.

    Test images are resized to the training crop size, with no jitter; with `size` N, to N x N
    (targets too), the model meeting N as `Pix2Pix.translate_full` does with `scale`. With
    `image_dir`, each image's input, output and target go under it in inputs/, outputs/, targets/.
    A hints model is scored without hints and, with `hints` N > 0, with N hints per image simulated
    from the target (seeded by the image's name); `curve` adds the metrics against the number of
    hints (hints.EVAL_COUNTS), spread as `spread` says (Pix2Pix.from_pretrained), shaped as `hint_shape`
    says (dots, the standard protocol, or strokes through the same centres); `stroke_curve` adds the
    curve with strokes beside the dots' (`Evaluation.stroke_curve`). A CycleGAN run is
    scored in `direction`; an unpaired split by `evaluate_unpaired`."""
    from .hints import EVAL_COUNTS
    from .run_folder import checkpoint_dir, load_config, resolve_data_root

    # Check the arguments, before any weights are read.
    if hints < 0:
        raise ValueError(f"hints must be >= 0, got {hints}")
    if size is not None and size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    if hint_shape not in HINT_SHAPES:
        raise ValueError(f"unknown hint shape {hint_shape!r}; valid: {', '.join(HINT_SHAPES)}")
    if stroke_curve and (hint_shape != "dots" or not curve):
        raise ValueError(
            "stroke_curve adds the strokes curve beside the dots' curve: it needs hint_shape 'dots' and curve"
        )
    if hints and not load_config(checkpoint_dir(run_dir, checkpoint)).model.hints:
        raise ValueError(f"--hints {hints}: this model was trained without hints")

    # The model and the split, at the size it is scored at.
    pipe = Pix2Pix.from_pretrained(run_dir, checkpoint=checkpoint, weights=weights, direction=direction, spread=spread)
    cfg = pipe.config
    root = data_root if data_root is not None else resolve_data_root(pipe.meta["checkpoint_dir"], cfg)
    load = cfg.data.crop_size if size is None else size
    batch_size = max(1, min(batch_size, EVAL_PIXELS // (load * load)))  # large sizes: fewer images at once
    ds = dataset_for(apply_overrides(cfg, {"root": str(root)}), split, load_size=load, cache=False)
    if not ds.paired:
        return evaluate_unpaired(
            run_dir, ds, pipe, split, checkpoint, weights, batch_size, image_dir, inception, progress
        )

    # The entries of the table: the model (with hints), copying the input, an untrained model.
    entries = [MODEL] + ([hinted(hints)] if hints else []) + ([COPY] if pipe.in_nc == pipe.out_nc else [])
    untrained = _untrained(cfg, direction) if with_untrained else None
    entries += [UNTRAINED] if untrained is not None else []
    counts = sorted(set(EVAL_COUNTS) | {hints}) if pipe.takes_hints and curve else []
    scores = _Scores(entries, counts, lpips=lpips, inception=inception, shape=hint_shape, strokes=stroke_curve)
    names, saved = [ds.name(i) for i in range(len(ds))], image_dir and _ImageFolders(image_dir, output_subdir, hints)

    # Score the split batch by batch (and keep each image's pictures where asked).
    for start in tqdm(range(0, len(ds), batch_size), desc=f"evaluate {split}", unit="batch", disable=not progress):
        idx = torch.arange(start, min(start + batch_size, len(ds)))
        a_u8, b_u8 = ds.batch(idx)
        if direction == "BtoA":
            a_u8, b_u8 = b_u8, a_u8
        real_a, real_b = from_uint8(a_u8), from_uint8(b_u8)
        batch_names = [names[i] for i in idx.tolist()]
        outputs, hint_maps = scores.add(pipe, untrained, real_a, real_b, batch_names, hints=hints, scale=scale)
        if saved:
            saved.write(batch_names, real_a, real_b, outputs, hint_maps)

    scale = scale if load != cfg.data.crop_size else "native"
    return scores.result(split, names, run_dir, checkpoint, pipe.meta.get("step"), load, scale, hints, pipe.spread)


def _untrained(cfg: Any, direction: str) -> Pix2Pix:
    """The generator the run started from: the same seed, and what was built before it drawn first."""
    from .networks import family_for

    seeding.seed_everything(cfg.train.seed)
    family = family_for(cfg)
    name = family.generator_name(direction)
    for earlier in family.network_names[: family.network_names.index(name)]:
        family.build_network(cfg.model, earlier)  # draw what came first, as training did
    return Pix2Pix(family.build_network(cfg.model, name), cfg, direction=direction)


class _Scores:
    """Per-image metrics of every entry, the hints curve, and Inception features for FID."""

    def __init__(
        self,
        entries: list[str],
        counts: list[int],
        *,
        lpips: torch.nn.Module | None,
        inception: torch.nn.Module | None,
        shape: str = "dots",
        strokes: bool = False,
    ) -> None:
        self.entries, self.counts, self.lpips, self.inception = entries, counts, lpips, inception
        self.shape = shape
        keys = METRICS + (("lpips",) if lpips is not None else ())
        self.per_image: dict[str, dict[str, list[float]]] = {m: {k: [] for k in keys} for m in entries}
        self.curve: dict[int, dict[str, list[float]]] = {c: {k: [] for k in METRICS} for c in counts}
        # The strokes curve (evaluate's stroke_curve), beside the dots': the same counts.
        self.strokes: dict[int, dict[str, list[float]]] = {c: {k: [] for k in METRICS} for c in counts if strokes}
        self.features: dict[str, list[torch.Tensor]] = {m: [] for m in [*entries, "target"]}

    def add(
        self,
        pipe: Pix2Pix,
        untrained: Pix2Pix | None,
        real_a: torch.Tensor,
        real_b: torch.Tensor,
        names: list[str],
        *,
        hints: int,
        scale: str,
    ) -> tuple[dict[str, torch.Tensor], dict[int, torch.Tensor]]:
        """Score one batch; returns each entry's outputs in [0, 1] and the simulated hint maps by count."""
        from .hints import eval_hints, hint_worth

        target = to_unit(real_b)
        counts = sorted(set(self.counts) | {hints})
        worth = hint_worth(real_a, real_b).to(real_b.device) if any(counts) else None  # labelled once per batch
        hint_maps = {c: eval_hints(real_a, real_b, names, c, worth=worth, shape=self.shape) for c in counts if c}
        outputs = {MODEL: to_unit(pipe.translate_full(real_a, scale=scale))}
        if hints:
            outputs[hinted(hints)] = to_unit(
                pipe.translate_full(real_a, hints=hint_maps[hints], scale=scale, carry=False)
            )
        if COPY in self.entries:
            outputs[COPY] = to_unit(real_a)
        if untrained is not None:
            outputs[UNTRAINED] = to_unit(untrained.translate_full(real_a, scale=scale))
        for m, out in outputs.items():
            values = image_metrics(out, target)
            if self.lpips is not None:
                values["lpips"] = self.lpips(out, target)
            for k, v in values.items():
                self.per_image[m][k] += v.tolist()
            if self.inception is not None:
                self.features[m].append(self.inception(out))
        for c in self.counts:
            out = outputs[MODEL] if c == 0 else outputs.get(hinted(c))
            if out is None:
                out = to_unit(pipe.translate_full(real_a, hints=hint_maps[c], scale=scale, carry=False))
            for k, v in image_metrics(out, target).items():
                self.curve[c][k] += v.tolist()
        for c in self.strokes:  # 0 strokes is the model without hints
            out = outputs[MODEL]
            if c:
                maps = eval_hints(real_a, real_b, names, c, worth=worth, shape="strokes")
                out = to_unit(pipe.translate_full(real_a, hints=maps, scale=scale, carry=False))
            for k, v in image_metrics(out, target).items():
                self.strokes[c][k] += v.tolist()
        if self.inception is not None:
            self.features["target"].append(self.inception(target))
        return outputs, hint_maps

    def result(
        self,
        split: str,
        names: list[str],
        run_dir: Any,
        checkpoint: str,
        step: int | None,
        size: int,
        scale: str,
        hints: int,
        spread: str = "fill",
    ) -> Evaluation:
        """The evaluation these scores make, of `split` (`names`) at `size`, hints spread by `spread`."""
        return Evaluation(
            split=split,
            names=names,
            per_image=self.per_image,
            mean=self.means(),
            run_dir=str(run_dir),
            checkpoint=checkpoint,
            step=step,
            size=size,
            scale=scale,
            hints=hints,
            spread=spread,
            hint_shape=self.shape,
            curve=_means(self.curve),
            curve_per_image=self.curve,
            stroke_curve=_means(self.strokes),
            stroke_curve_per_image=self.strokes,
        )

    def means(self) -> dict[str, dict[str, float]]:
        mean = _means({m: self.per_image[m] for m in self.entries})
        if self.inception is not None:
            from .metrics.fid import fid_from_features

            real = torch.cat(self.features["target"])
            for m in self.entries:
                mean[m]["fid"] = fid_from_features(real, torch.cat(self.features[m]))
        return mean


def _means(curve: dict[Any, dict[str, list[float]]]) -> dict[Any, dict[str, float]]:
    return {c: {k: sum(v) / len(v) for k, v in vals.items()} for c, vals in curve.items()}


class _ImageFolders:
    """Each image's input, output and target (and with hints, the hints drawn and the hinted output)."""

    def __init__(self, image_dir: str | Path, output_subdir: str, hints: int) -> None:
        self.dir, self.output_subdir, self.hints = Path(image_dir), output_subdir, hints
        subdirs = ["inputs", output_subdir, "targets"] + (
            [f"hints_h{hints}", f"{output_subdir}_h{hints}"] if hints else []
        )
        for sub in subdirs:
            (self.dir / sub).mkdir(parents=True, exist_ok=True)

    def write(
        self,
        names: list[str],
        real_a: torch.Tensor,
        real_b: torch.Tensor,
        outputs: dict[str, torch.Tensor],
        hint_maps: dict[int, torch.Tensor],
    ) -> None:
        from .hints import draw_hints

        h, out_dir = self.hints, self.output_subdir
        for j, name in enumerate(names):
            stem = _safe_name(name)
            tensor_to_pil(real_a[j]).save(self.dir / "inputs" / f"{stem}.png")
            tensor_to_pil(from_unit(outputs[MODEL][j])).save(self.dir / out_dir / f"{stem}.png")
            tensor_to_pil(real_b[j]).save(self.dir / "targets" / f"{stem}.png")
            if h:
                shown = draw_hints(real_a[j : j + 1], hint_maps[h][j : j + 1])[0]
                tensor_to_pil(shown).save(self.dir / f"hints_h{h}" / f"{stem}.png")
                tensor_to_pil(from_unit(outputs[hinted(h)][j])).save(self.dir / f"{out_dir}_h{h}" / f"{stem}.png")


@torch.no_grad()
def evaluate_unpaired(
    run_dir: str | Path,
    ds: Any,
    pipe: Pix2Pix,
    split: str,
    checkpoint: str,
    weights: str,
    batch_size: int,
    image_dir: str | Path | None,
    inception: torch.nn.Module | None,
    progress: bool,
) -> Evaluation:
    """An unpaired split has no targets: score the cycle errors, |F(G(a)) - a| per A image and
    |G(F(b)) - b| per B image (L1 in [0, 1] units), and, with Inception weights, FID and KID
    between G(A) and the real B images, beside copying A through (FID and KID of A against B).
    """
    from .metrics.fid import fid_from_features, kid_from_features

    back = Pix2Pix.from_pretrained(
        run_dir, checkpoint=checkpoint, weights=weights, direction="BtoA" if pipe.direction == "AtoB" else "AtoB"
    )
    src, dst = (ds.images_a, ds.images_b) if pipe.direction == "AtoB" else (ds.images_b, ds.images_a)
    names = [src.name(i) for i in range(src.count)]
    cycle_src: list[float] = []
    cycle_dst: list[float] = []
    feats: dict[str, list[torch.Tensor]] = {"fake": [], "copy": [], "real": []}
    if image_dir is not None:
        image_dir = Path(image_dir)
        for sub in ("inputs", "outputs", "reconstructions"):
            (image_dir / sub).mkdir(parents=True, exist_ok=True)
    for start in tqdm(range(0, src.count, batch_size), desc=f"evaluate {split}", unit="batch", disable=not progress):
        x = from_uint8(src.batch(torch.arange(start, min(start + batch_size, src.count))))
        fake = pipe.translate_tensor(x)
        rec = back.translate_tensor(fake)
        cycle_src += (to_unit(rec) - to_unit(x)).abs().flatten(1).mean(1).tolist()
        if inception is not None:
            feats["fake"].append(inception(to_unit(fake)))
            feats["copy"].append(inception(to_unit(x)))
        if image_dir is not None:
            for j in range(len(x)):
                stem = _safe_name(names[start + j])
                tensor_to_pil(x[j]).save(image_dir / "inputs" / f"{stem}.png")
                tensor_to_pil(fake[j]).save(image_dir / "outputs" / f"{stem}.png")
                tensor_to_pil(rec[j]).save(image_dir / "reconstructions" / f"{stem}.png")
    for start in range(0, dst.count, batch_size):
        y = from_uint8(dst.batch(torch.arange(start, min(start + batch_size, dst.count))))
        rec = pipe.translate_tensor(back.translate_tensor(y))
        cycle_dst += (to_unit(rec) - to_unit(y)).abs().flatten(1).mean(1).tolist()
        if inception is not None:
            feats["real"].append(inception(to_unit(y)))
    mean: dict[str, dict[str, float]] = {
        MODEL: {"cycle_a": sum(cycle_src) / len(cycle_src), "cycle_b": sum(cycle_dst) / max(len(cycle_dst), 1)}
    }
    if inception is not None:
        real = torch.cat(feats["real"])
        mean[COPY] = {}
        for key, entry in (("fake", MODEL), ("copy", COPY)):
            mean[entry]["fid"] = fid_from_features(real, torch.cat(feats[key]))
            mean[entry]["kid"], mean[entry]["kid_std"] = kid_from_features(real, torch.cat(feats[key]))
    return Evaluation(
        split=split,
        names=names,
        per_image={MODEL: {"cycle_a": cycle_src}},
        mean=mean,
        run_dir=str(run_dir),
        checkpoint=checkpoint,
        step=pipe.meta.get("step"),
        size=pipe.config.data.crop_size,
        paired=False,
    )


def write_metrics(evaluation: Evaluation, path: str | Path) -> Path:
    path = Path(path)
    atomic_write_text(path, json.dumps(evaluation.to_json(), indent=2) + "\n")
    return path


def beats_baseline(evaluation: Evaluation, baseline: str = COPY, *, model: str = MODEL) -> dict[str, bool]:
    """For each metric, whether the model's mean is better than the baseline's."""
    from .metrics.image import HIGHER_IS_BETTER

    m, b = evaluation.mean[model], evaluation.mean[baseline]
    return {k: (m[k] > b[k]) if HIGHER_IS_BETTER[k] else (m[k] < b[k]) for k in m if k in b and k in HIGHER_IS_BETTER}


def _safe_name(name: str) -> str:
    return name.replace("/", "__").replace("\\", "__")
