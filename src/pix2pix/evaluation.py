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

from .config import apply_overrides
from .data.images import tensor_to_pil
from .data.layouts import dataset_for
from .data.transforms import denormalize, normalize
from .inference import Pix2Pix
from .io import atomic_write_text
from .metrics.image import METRICS, image_metrics

log = logging.getLogger(__name__)

MODEL, COPY, UNTRAINED = "model", "copy_input", "untrained"


def hinted(count: int) -> str:
    """The method key of the model given `count` simulated hints: 'model_h10'."""
    return f"{MODEL}_h{count}"


@dataclass
class Evaluation:
    split: str
    names: list[str]
    per_image: dict[str, dict[str, list[float]]]  # method -> metric -> values
    mean: dict[str, dict[str, float]] = field(default_factory=dict)
    run_dir: str = ""
    checkpoint: str = "auto"
    step: int | None = None
    size: int = 0
    scale: str = "native"  # how the model met `size` (Pix2Pix.translate_full); native at the training size
    paired: bool = True  # scored against targets; False: an unpaired split (cycle errors, FID / KID)
    hints: int = 0  # simulated hints per image of the hinted model's entry (0: none)
    # Hints models: metric means of the model against the number of simulated hints.
    curve: dict[int, dict[str, float]] = field(default_factory=dict)
    curve_per_image: dict[int, dict[str, list[float]]] = field(default_factory=dict)

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
        if self.curve:
            out["hints"] = self.hints
            out["hint_curve"] = {
                "counts": sorted(self.curve),
                "mean": {str(c): self.curve[c] for c in sorted(self.curve)},
                "per_image": {str(c): self.curve_per_image[c] for c in sorted(self.curve_per_image)},
                "seeded_by": "image name (the same hints for every run)",
            }
        return out


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
) -> Evaluation:
    """Metrics of the run's generator on `split`, beside the copy and untrained baselines.

    Test images are resized to the training crop size, with no jitter; with `size` N, to N x N
    (targets too), and the model colours them as `Pix2Pix.translate_full` does with `scale`: at its
    training scale, brought back to N (the default, "auto"), plainly upsampled ("bicubic") or run at
    N as it is ("native"). With `image_dir`, each
    image's input, output and target are written under it in inputs/, outputs/ and targets/.
    A hints model is scored without hints and, with `hints` N > 0, with N hints per image
    simulated from the target (seeded by the image's name, so every run gets the same hints);
    `curve` adds its metrics against the number of hints (hints.EVAL_COUNTS). A CycleGAN run is
    scored in `direction`; on an unpaired split, by its cycle errors and, with Inception weights,
    FID and KID (see `evaluate_unpaired`).
    """
    from .hints import EVAL_COUNTS, draw_hints
    from .methods import method_for
    from .methods.pix2pix import eval_hints

    pipe = Pix2Pix.from_pretrained(run_dir, checkpoint=checkpoint, weights=weights, direction=direction)
    cfg = pipe.config
    if hints and not pipe.takes_hints:
        raise ValueError(f"--hints {hints}: this model was trained without hints")
    if hints < 0:
        raise ValueError(f"hints must be >= 0, got {hints}")
    from .training.checkpoint import resolve_data_root

    root = data_root if data_root is not None else resolve_data_root(pipe.meta["checkpoint_dir"], cfg)
    if size is not None and size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    load = cfg.data.crop_size if size is None else size
    batch_size = max(1, min(batch_size, EVAL_PIXELS // (load * load)))  # large sizes: fewer images at once
    ds = dataset_for(apply_overrides(cfg, {"root": str(root)}), split, load_size=load, cache=False)
    if not ds.paired:
        return evaluate_unpaired(
            run_dir, ds, pipe, checkpoint=checkpoint, weights=weights, batch_size=batch_size, image_dir=image_dir,
            inception=inception, progress=progress, split=split,
        )  # fmt: skip
    methods = [MODEL] + ([hinted(hints)] if hints else [])
    if pipe.in_nc == pipe.out_nc:
        methods.append(COPY)
    untrained = None
    if with_untrained:
        torch.manual_seed(cfg.train.seed)  # the weights this run started from
        method = method_for(cfg)
        name = method.generator_name(direction)
        for earlier in method.network_names[: method.network_names.index(name)]:
            method.build_network(cfg.model, earlier)  # draw what came first, as training did
        untrained = Pix2Pix(method.build_network(cfg.model, name), cfg, direction=direction)
        methods.append(UNTRAINED)
    counts = sorted(set(EVAL_COUNTS) | {hints}) if pipe.takes_hints and curve else []
    per_image_keys = METRICS + (("lpips",) if lpips is not None else ())
    per_image: dict[str, dict[str, list[float]]] = {m: {k: [] for k in per_image_keys} for m in methods}
    curve_values: dict[int, dict[str, list[float]]] = {c: {k: [] for k in METRICS} for c in counts}
    features: dict[str, list[torch.Tensor]] = {m: [] for m in [*methods, "target"]}
    names = [ds.name(i) for i in range(len(ds))]
    subdirs = ["inputs", output_subdir, "targets"] + ([f"hints_h{hints}", f"{output_subdir}_h{hints}"] if hints else [])
    if image_dir is not None:
        image_dir = Path(image_dir)
        for sub in subdirs:
            (image_dir / sub).mkdir(parents=True, exist_ok=True)
    for start in tqdm(range(0, len(ds), batch_size), desc=f"evaluate {split}", unit="batch", disable=not progress):
        idx = torch.arange(start, min(start + batch_size, len(ds)))
        batch_names = [names[i] for i in idx.tolist()]
        a_u8, b_u8 = ds.batch(idx)
        if direction == "BtoA":
            a_u8, b_u8 = b_u8, a_u8
        real_a, real_b = normalize(a_u8), normalize(b_u8)
        target = denormalize(real_b)
        outputs = {MODEL: denormalize(pipe.translate_full(real_a, scale=scale))}
        hint_maps = {c: eval_hints(real_a, real_b, batch_names, c) for c in sorted(set(counts) | {hints}) if c}
        if hints:
            outputs[hinted(hints)] = denormalize(pipe.translate_full(real_a, hints=hint_maps[hints], scale=scale))
        if COPY in methods:
            outputs[COPY] = denormalize(real_a)
        if untrained is not None:
            outputs[UNTRAINED] = denormalize(untrained.translate_full(real_a, scale=scale))
        for m, out in outputs.items():
            values = image_metrics(out, target)
            if lpips is not None:
                values["lpips"] = lpips(out, target)
            for k, v in values.items():
                per_image[m][k] += v.tolist()
            if inception is not None:
                features[m].append(inception(out))
        for c in counts:
            out = outputs[MODEL] if c == 0 else outputs.get(hinted(c))
            if out is None:
                out = denormalize(pipe.translate_full(real_a, hints=hint_maps[c], scale=scale))
            for k, v in image_metrics(out, target).items():
                curve_values[c][k] += v.tolist()
        if inception is not None:
            features["target"].append(inception(target))
        if image_dir is not None:
            for j, i in enumerate(idx.tolist()):
                stem = _safe_name(names[i])
                tensor_to_pil(real_a[j]).save(image_dir / "inputs" / f"{stem}.png")
                tensor_to_pil(outputs[MODEL][j] * 2 - 1).save(image_dir / output_subdir / f"{stem}.png")
                tensor_to_pil(real_b[j]).save(image_dir / "targets" / f"{stem}.png")
                if hints:
                    shown = draw_hints(real_a[j : j + 1], hint_maps[hints][j : j + 1])[0]
                    tensor_to_pil(shown).save(image_dir / f"hints_h{hints}" / f"{stem}.png")
                    tensor_to_pil(outputs[hinted(hints)][j] * 2 - 1).save(image_dir / f"{output_subdir}_h{hints}" / f"{stem}.png")
    mean = {m: {k: sum(v) / len(v) for k, v in per_image[m].items()} for m in methods}
    if inception is not None:
        from .metrics.fid import fid_from_features

        real = torch.cat(features["target"])
        for m in methods:
            mean[m]["fid"] = fid_from_features(real, torch.cat(features[m]))
    return Evaluation(
        split=split, names=names, per_image=per_image, mean=mean, run_dir=str(run_dir), checkpoint=checkpoint,
        step=pipe.meta.get("step"), size=load, scale=scale if load != cfg.data.crop_size else "native", hints=hints,
        curve={c: {k: sum(v) / len(v) for k, v in vals.items()} for c, vals in curve_values.items()},
        curve_per_image=curve_values,
    )  # fmt: skip


@torch.no_grad()
def evaluate_unpaired(
    run_dir: str | Path, ds: Any, pipe: Pix2Pix, *, checkpoint: str, weights: str, batch_size: int,
    image_dir: str | Path | None, inception: torch.nn.Module | None, progress: bool, split: str,
) -> Evaluation:  # fmt: skip
    """An unpaired split has no targets: score the cycle errors, |F(G(a)) - a| per A image and
    |G(F(b)) - b| per B image (L1 in [0, 1] units), and, with Inception weights, FID and KID
    between G(A) and the real B images, beside copying A through (FID and KID of A against B).
    """
    from .metrics.fid import fid_from_features, kid_from_features

    back = Pix2Pix.from_pretrained(run_dir, checkpoint=checkpoint, weights=weights,
                                   direction="BtoA" if pipe.direction == "AtoB" else "AtoB")  # fmt: skip
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
        x = normalize(src.batch(torch.arange(start, min(start + batch_size, src.count))))
        fake = pipe.translate_tensor(x)
        rec = back.translate_tensor(fake)
        cycle_src += (denormalize(rec) - denormalize(x)).abs().flatten(1).mean(1).tolist()
        if inception is not None:
            feats["fake"].append(inception(denormalize(fake)))
            feats["copy"].append(inception(denormalize(x)))
        if image_dir is not None:
            for j in range(len(x)):
                stem = _safe_name(names[start + j])
                tensor_to_pil(x[j]).save(image_dir / "inputs" / f"{stem}.png")
                tensor_to_pil(fake[j]).save(image_dir / "outputs" / f"{stem}.png")
                tensor_to_pil(rec[j]).save(image_dir / "reconstructions" / f"{stem}.png")
    for start in range(0, dst.count, batch_size):
        y = normalize(dst.batch(torch.arange(start, min(start + batch_size, dst.count))))
        rec = pipe.translate_tensor(back.translate_tensor(y))
        cycle_dst += (denormalize(rec) - denormalize(y)).abs().flatten(1).mean(1).tolist()
        if inception is not None:
            feats["real"].append(inception(denormalize(y)))
    mean: dict[str, dict[str, float]] = {MODEL: {"cycle_a": sum(cycle_src) / len(cycle_src),
                                                 "cycle_b": sum(cycle_dst) / max(len(cycle_dst), 1)}}  # fmt: skip
    if inception is not None:
        real = torch.cat(feats["real"])
        mean[COPY] = {}
        for key, method in (("fake", MODEL), ("copy", COPY)):
            mean[method]["fid"] = fid_from_features(real, torch.cat(feats[key]))
            mean[method]["kid"], mean[method]["kid_std"] = kid_from_features(real, torch.cat(feats[key]))
    return Evaluation(
        split=split, names=names, per_image={MODEL: {"cycle_a": cycle_src}}, mean=mean, run_dir=str(run_dir),
        checkpoint=checkpoint, step=pipe.meta.get("step"), size=pipe.config.data.crop_size, paired=False,
    )  # fmt: skip


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
