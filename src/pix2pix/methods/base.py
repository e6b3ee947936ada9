"""What a model family trains, as the one generic run (training/loop.py) sees it.

A method owns its networks (saved as NAME.safetensors), its optimizers (one learning-rate schedule
each, made by the loop) and its step, written in the paper's stanzas. The loop owns everything
around the step: data order, augmentation, precision, DDP, schedules, EMA, checkpoints with exact
resume, logging, validation and best-checkpoint selection.

Subclasses set `name`, `paired`, `network_names` and `generators` (which network translates in
which direction), build their networks in `build_network`, and implement `train_step`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch
import torch.nn as nn

from ..losses import GANLoss
from ..optim import Adam
from ..precision import Precision
from .scoring import paired_metrics, sample_rows

if TYPE_CHECKING:
    from ..config import Config, ModelConfig
    from ..data.paired import PairedDataset

FP32 = Precision(device=torch.device("cpu"), dtype=None, scaler=None, channels_last=False)
# (real A, real B, image names) -> fake B, all in [-1, 1]; B and the names seed a hints model's simulated hints.
Translate = Callable[[torch.Tensor, torch.Tensor, list[str]], torch.Tensor]


@dataclass(frozen=True)
class StepInfo:
    """Where a step's images sit: rank r holds images offset..offset+B of a global batch."""

    step: int
    offset: int = 0
    global_batch: int = 0


def make_adam(params: Any, cfg: Any, device: torch.device | None = None) -> torch.optim.Adam:
    """Adam with the fused kernel where this torch has one for the device, else foreach.

    The fused and foreach kernels compute the same update as the default for-loop one and skip
    its per-parameter Python overhead (about 0.19 s of a 256-px step on a 2-core CPU). The class
    also updates weights kept as bf16 copies in CPU bf16 training (optim.py).
    """
    kwargs: dict[str, Any] = {"lr": cfg.lr, "betas": (cfg.beta1, cfg.beta2)}
    params = list(params)
    try:
        return Adam(params, fused=True, **kwargs)
    except (RuntimeError, TypeError, ValueError):
        return Adam(params, foreach=True, **kwargs)


def set_requires_grad(modules: nn.Module | list[nn.Module], flag: bool) -> None:
    for module in modules if isinstance(modules, list) else [modules]:
        for p in module.parameters():
            p.requires_grad_(flag)


def no_sync(module: nn.Module, *, last: bool) -> Any:
    """DDP's no_sync for all but the last micro-batch: gradients are all-reduced once per step."""
    inner = getattr(module, "_orig_mod", module)
    if not last and isinstance(inner, nn.parallel.DistributedDataParallel):
        return inner.no_sync()
    return contextlib.nullcontext()


class Method:
    """One model family: its networks, optimizers and training step."""

    name: ClassVar[str] = ""
    paired: ClassVar[bool] = True  # trains on pairs (A and B cropped alike) or on unpaired images
    network_names: ClassVar[tuple[str, ...]] = ("generator",)  # in the order they are initialised
    generators: ClassVar[dict[str, str]] = {"AtoB": "generator"}  # direction -> network that translates it

    def __init__(self, config: Config, *, device: torch.device, precision: Precision | None = None) -> None:
        self.config = config
        self.device = device
        self.precision = precision or FP32
        self.gan = GANLoss(config.train.gan_mode).to(device)
        # Built in a fixed order from the seeded RNG, so a run's initial weights depend on the seed alone.
        self.networks: dict[str, nn.Module] = {
            name: self.precision.prepare(self.build_network(config.model, name).to(device)) for name in self.network_names
        }
        self.optimizers: dict[str, torch.optim.Optimizer] = self.build_optimizers()
        # What the step runs: the same modules, or their DDP / compiled wrappers after `distribute`.
        self.live: dict[str, nn.Module] = dict(self.networks)
        # Modules run with their weights frozen (a discriminator in the generator's phase): outside
        # DDP, so they register no backward pass with its reducer.
        self.frozen: dict[str, nn.Module] = dict(self.networks)

    # --- what a subclass states -----------------------------------------------------------------

    @classmethod
    def build_network(cls, mc: ModelConfig, name: str, *, init: bool = True) -> nn.Module:
        raise NotImplementedError

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError

    def train_step(self, real_a: torch.Tensor, real_b: torch.Tensor, info: StepInfo) -> dict[str, torch.Tensor]:
        """One optimisation step on a batch (B, C, H, W) in [-1, 1]; returns mean losses (on device)."""
        raise NotImplementedError

    @classmethod
    def generator_channels(cls, mc: ModelConfig, direction: str) -> tuple[int, int, int]:
        """(image channels in, extra conditioning channels, channels out) of the generator for `direction`."""
        return (mc.input_nc, 0, mc.output_nc) if direction == "AtoB" else (mc.output_nc, 0, mc.input_nc)

    def example_inputs(self, batch: int, size: int) -> dict[str, torch.Tensor]:
        """A zero input of each generator's shape in training (what the CPU kernel timing runs)."""
        out = {}
        for direction, name in self.generators.items():
            in_nc, extra, _ = self.generator_channels(self.config.model, direction)
            out[name] = self.precision.to_memory_format(torch.zeros(batch, in_nc + extra, size, size, device=self.device))
        return out

    def extra_state(self) -> dict[str, Any]:
        """What a checkpoint holds beyond weights, optimizers and schedules (e.g. image pools)."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        pass

    # --- the generic parts ----------------------------------------------------------------------

    @classmethod
    def generator_name(cls, direction: str) -> str:
        if direction not in cls.generators:
            raise ValueError(f"a {cls.name} model translates {' and '.join(cls.generators)}, not {direction!r}")
        return cls.generators[direction]

    def distribute(self, *, world: int, compile: bool) -> None:
        """Wrap the trained networks in DDP (world > 1) and torch.compile (if asked for)."""
        mc = self.config.model
        if world > 1:
            if mc.norm == "syncbatch":
                self.networks = {k: nn.SyncBatchNorm.convert_sync_batchnorm(v) for k, v in self.networks.items()}
                self.frozen = dict(self.networks)
            ids = [self.device.index] if self.device.type == "cuda" else None
            # gradient_as_bucket_view: gradients live in the all-reduce buckets, no extra copy.
            # static_graph stays off: discriminators run more than once per step and the graphs differ by phase.
            self.live = {
                k: nn.parallel.DistributedDataParallel(v, device_ids=ids, gradient_as_bucket_view=True)
                for k, v in self.networks.items()
            }
        if compile:
            # Compiled copies share parameters with the modules that are saved; only the step uses them.
            self.live = {k: torch.compile(v) for k, v in self.live.items()}
            self.frozen = {k: torch.compile(v) for k, v in self.frozen.items()}

    def train(self) -> None:
        for net in self.networks.values():
            net.train()

    def translators(self, nets: dict[str, nn.Module]) -> dict[str, Translate]:
        """How validation translates: view suffix ('' for the plain one) -> function. `nets` holds
        the networks to judge (EMA weights where kept)."""
        g = nets[self.generators["AtoB"]]
        return {"": lambda a, b, names: g(a)}

    @torch.no_grad()
    def validate(self, nets: dict[str, nn.Module], dataset: PairedDataset, *, lpips: nn.Module | None = None,
                 batch_size: int = 16) -> dict[str, float]:  # fmt: skip
        """Mean val metrics of every translator: {'l1', 'psnr', 'ssim', 'h10_ssim', ...}."""
        with eval_mode(nets):
            out: dict[str, float] = {}
            for suffix, fn in self.translators(nets).items():
                metrics = paired_metrics(fn, dataset, device=self.device, batch_size=batch_size, lpips=lpips)
                out.update({f"{suffix}_{k}" if suffix else k: v for k, v in metrics.items()})
        return out

    @torch.no_grad()
    def sample_grid(self, nets: dict[str, nn.Module], a_u8: torch.Tensor, b_u8: torch.Tensor,
                    names: list[str] | None = None) -> torch.Tensor:  # fmt: skip
        """(3, N*S, K*S) in [0, 1]: one row per val image, input | output(s) | target."""
        with eval_mode(nets):
            return sample_rows(self.translators(nets), a_u8, b_u8, device=self.device, names=names)


@contextlib.contextmanager
def eval_mode(nets: dict[str, nn.Module]) -> Any:
    """Eval mode for the block (running BatchNorm statistics, no dropout), then back as they were."""
    was = {k: n.training for k, n in nets.items()}
    for n in nets.values():
        n.eval()
    try:
        yield
    finally:
        for k, n in nets.items():
            n.train(was[k])
