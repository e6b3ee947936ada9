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
from .data.paired import PairedDataset, dataset_for
from .data.transforms import denormalize, normalize
from .inference import Pix2Pix
from .io import atomic_write_text
from .metrics.image import METRICS, image_metrics
from .models import make_generator

log = logging.getLogger(__name__)

MODEL, COPY, UNTRAINED = "model", "copy_input", "untrained"


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


@torch.no_grad()
def evaluate(
    run_dir: str | Path,
    *,
    split: str = "test",
    data_root: str | Path | None = None,
    checkpoint: str = "last",
    weights: str = "auto",
    batch_size: int = 16,
    with_untrained: bool = True,
    image_dir: str | Path | None = None,
    output_subdir: str = "outputs",
    lpips: torch.nn.Module | None = None,
    inception: torch.nn.Module | None = None,
    progress: bool = False,
) -> Evaluation:
    """Metrics of the run's generator on `split`, beside the copy and untrained baselines.

    Test images are resized to the training crop size, with no jitter. With `image_dir`, each
    image's input, output and target are written under it in inputs/, outputs/ and targets/.
    """
    pipe = Pix2Pix.from_pretrained(run_dir, checkpoint=checkpoint, weights=weights)
    cfg = pipe.config
    root = data_root if data_root is not None else cfg.data.root
    ds = dataset_for(apply_overrides(cfg, {"root": str(root)}), split, load_size=cfg.data.crop_size, cache=False)
    methods = [MODEL]
    if cfg.model.input_nc == cfg.model.output_nc:
        methods.append(COPY)
    untrained = None
    if with_untrained:
        torch.manual_seed(cfg.train.seed)  # the weights this run started from
        untrained = Pix2Pix(make_generator(cfg.model), cfg)
        methods.append(UNTRAINED)
    per_image_keys = METRICS + (("lpips",) if lpips is not None else ())
    per_image: dict[str, dict[str, list[float]]] = {m: {k: [] for k in per_image_keys} for m in methods}
    features: dict[str, list[torch.Tensor]] = {m: [] for m in [*methods, "target"]}
    names = [ds.name(i) for i in range(len(ds))]
    if image_dir is not None:
        image_dir = Path(image_dir)
        for sub in ("inputs", output_subdir, "targets"):
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
            values = image_metrics(out, target)
            if lpips is not None:
                values["lpips"] = lpips(out, target)
            for k, v in values.items():
                per_image[m][k] += v.tolist()
            if inception is not None:
                features[m].append(inception(out))
        if inception is not None:
            features["target"].append(inception(target))
        if image_dir is not None:
            for j, i in enumerate(idx.tolist()):
                stem = _safe_name(names[i])
                tensor_to_pil(real_a[j]).save(image_dir / "inputs" / f"{stem}.png")
                tensor_to_pil(outputs[MODEL][j] * 2 - 1).save(image_dir / output_subdir / f"{stem}.png")
                tensor_to_pil(normalize(b_u8[j])).save(image_dir / "targets" / f"{stem}.png")
    mean = {m: {k: sum(v) / len(v) for k, v in per_image[m].items()} for m in methods}
    if inception is not None:
        from .metrics.fid import fid_from_features

        real = torch.cat(features["target"])
        for m in methods:
            mean[m]["fid"] = fid_from_features(real, torch.cat(features[m]))
    return Evaluation(
        split=split, names=names, per_image=per_image, mean=mean, run_dir=str(run_dir), checkpoint=checkpoint,
        step=pipe.meta.get("step"), size=cfg.data.crop_size,
    )  # fmt: skip


@torch.no_grad()
def validate(
    generator: torch.nn.Module, dataset: PairedDataset, *, device: torch.device, batch_size: int = 16,
    lpips: torch.nn.Module | None = None,
) -> dict[str, float]:  # fmt: skip
    """Mean L1 / PSNR / SSIM (and LPIPS when given) of `generator` in eval mode over `dataset`."""
    was_training = generator.training
    generator.eval()
    sums: dict[str, float] = {}
    for start in range(0, len(dataset), batch_size):
        a_u8, b_u8 = dataset.batch(torch.arange(start, min(start + batch_size, len(dataset))))
        out = denormalize(generator(normalize(a_u8.to(device)))).float().cpu()
        target = denormalize(normalize(b_u8))
        values = image_metrics(out, target)
        if lpips is not None:
            values["lpips"] = lpips(out, target)
        for k, v in values.items():
            sums[k] = sums.get(k, 0.0) + float(v.sum())
    generator.train(was_training)
    return {k: v / len(dataset) for k, v in sums.items()}


def sample_grid(generator: torch.nn.Module, a_u8: torch.Tensor, b_u8: torch.Tensor, device: torch.device) -> torch.Tensor:
    """(3, N*S, 3*S) grid in [0, 1]: one row per image, input | output | target."""
    was_training = generator.training
    generator.eval()
    with torch.no_grad():
        out = denormalize(generator(normalize(a_u8.to(device)))).float().cpu()
    generator.train(was_training)
    a, b = denormalize(normalize(a_u8)), denormalize(normalize(b_u8))
    if a.shape[1] == 1:
        a = a.expand(-1, 3, -1, -1)
    if out.shape[1] == 1:
        out, b = out.expand(-1, 3, -1, -1), b.expand(-1, 3, -1, -1)
    rows = torch.cat([a, out, b], dim=3)  # (N, 3, S, 3S)
    return torch.cat(list(rows), dim=1)  # (3, N*S, 3S)


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
