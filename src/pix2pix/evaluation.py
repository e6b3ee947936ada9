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

from .data.images import tensor_to_pil
from .data.paired import PairedDataset
from .data.transforms import denormalize, normalize
from .inference import Pix2Pix
from .io import atomic_write_text
from .metrics.image import METRICS, image_metrics
from .models import make_generator

log = logging.getLogger(__name__)

MODEL, COPY, UNTRAINED = "model", "copy_input", "untrained"
IMAGE_SUBDIRS = ("inputs", "outputs", "targets")


@dataclass
class Evaluation:
    split: str
    names: list[str]
    per_image: dict[str, dict[str, list[float]]]  # method -> metric -> values
    mean: dict[str, dict[str, float]] = field(default_factory=dict)
    run_dir: str = ""
    checkpoint: str = "last"
    step: int | None = None
    size: int = 0

    def to_json(self) -> dict[str, Any]:
        rows = [
            {"name": n, **{m: {k: v[i] for k, v in self.per_image[m].items()} for m in self.per_image}}
            for i, n in enumerate(self.names)
        ]
        return {
            "run_dir": self.run_dir,
            "checkpoint": self.checkpoint,
            "step": self.step,
            "split": self.split,
            "size": self.size,
            "n_images": len(self.names),
            "mean": self.mean,
            "per_image": rows,
        }


def evaluate(
    run_dir: str | Path,
    *,
    split: str = "test",
    data_root: str | Path | None = None,
    checkpoint: str = "last",
    batch_size: int = 16,
    with_untrained: bool = True,
    image_dir: str | Path | None = None,
    progress: bool = False,
) -> Evaluation:
    """Metrics of the run's generator on `split`, beside the copy and untrained baselines.

    Test images are resized to the training crop size, with no jitter. With `image_dir`, each
    image's input, output and target are written under it in inputs/, outputs/ and targets/.
    """
    pipe = Pix2Pix.from_pretrained(run_dir, checkpoint=checkpoint)
    cfg = pipe.config
    root = data_root if data_root is not None else cfg.data.root
    ds = PairedDataset(
        root, split, mode=cfg.data.dataset_mode, direction=cfg.data.direction, load_size=cfg.data.crop_size,
        input_nc=cfg.model.input_nc, output_nc=cfg.model.output_nc, cache=False,
    )  # fmt: skip
    methods = [MODEL]
    if cfg.model.input_nc == cfg.model.output_nc:
        methods.append(COPY)
    untrained = None
    if with_untrained:
        torch.manual_seed(cfg.train.seed)  # the weights this run started from
        untrained = Pix2Pix(make_generator(cfg.model), cfg)
        methods.append(UNTRAINED)
    per_image: dict[str, dict[str, list[float]]] = {m: {k: [] for k in METRICS} for m in methods}
    names = [ds.name(i) for i in range(len(ds))]
    if image_dir is not None:
        image_dir = Path(image_dir)
        for sub in IMAGE_SUBDIRS:
            (image_dir / sub).mkdir(parents=True, exist_ok=True)
    for start in tqdm(range(0, len(ds), batch_size), desc=f"evaluate {split}", unit="batch", disable=not progress):
        idx = torch.arange(start, min(start + batch_size, len(ds)))
        a_u8, b_u8 = ds.batch(idx)
        real_a, target = normalize(a_u8), denormalize(normalize(b_u8))
        outputs = {MODEL: denormalize(pipe.translate_tensor(real_a))}
        if COPY in methods:
            outputs[COPY] = denormalize(real_a)
        if untrained is not None:
            outputs[UNTRAINED] = denormalize(untrained.translate_tensor(real_a))
        for m, out in outputs.items():
            for k, v in image_metrics(out, target).items():
                per_image[m][k] += v.tolist()
        if image_dir is not None:
            for j, i in enumerate(idx.tolist()):
                stem = _safe_name(names[i])
                tensor_to_pil(real_a[j]).save(image_dir / "inputs" / f"{stem}.png")
                tensor_to_pil(outputs[MODEL][j] * 2 - 1).save(image_dir / "outputs" / f"{stem}.png")
                tensor_to_pil(normalize(b_u8[j])).save(image_dir / "targets" / f"{stem}.png")
    mean = {m: {k: sum(v) / len(v) for k, v in per_image[m].items()} for m in methods}
    return Evaluation(
        split=split, names=names, per_image=per_image, mean=mean, run_dir=str(run_dir), checkpoint=checkpoint,
        step=pipe.meta.get("step"), size=cfg.data.crop_size,
    )  # fmt: skip


def write_metrics(evaluation: Evaluation, path: str | Path) -> Path:
    path = Path(path)
    atomic_write_text(path, json.dumps(evaluation.to_json(), indent=2) + "\n")
    return path


def beats_baseline(evaluation: Evaluation, baseline: str = COPY) -> dict[str, bool]:
    """For each metric, whether the model's mean is better than the baseline's."""
    from .metrics.image import HIGHER_IS_BETTER

    m, b = evaluation.mean[MODEL], evaluation.mean[baseline]
    return {k: (m[k] > b[k]) if HIGHER_IS_BETTER[k] else (m[k] < b[k]) for k in m}


def _safe_name(name: str) -> str:
    return name.replace("/", "__").replace("\\", "__")
