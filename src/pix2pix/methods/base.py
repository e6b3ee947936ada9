"""What a model family trains, as the one generic run (training/loop.py) sees it.

A method is its family's architecture (networks.py: which networks, built how) plus what it
trains with them: its optimizers (one learning-rate schedule each, made by the loop), its step,
written in the paper's stanzas, and the losses it logs. The loop owns everything around the step:
data order, augmentation, precision, DDP, schedules, EMA, checkpoints with exact resume, logging,
validation and best-checkpoint selection.

Subclasses derive from their family's networks class and this one, build their optimizers,
implement `train_step` and name the losses they log (`shown_losses`, `loss_panels`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch
import torch.nn as nn

from ..losses import GANLoss
from ..networks import Family
from ..precision import Precision
from .scoring import paired_metrics, sample_rows

if TYPE_CHECKING:
    from ..config import Config
    from ..data.paired import PairedDataset
    from ..hints import Regions

FP32 = Precision(device=torch.device("cpu"), dtype=None, scaler=None, channels_last=False)
# (real A, real B, image names) -> fake B, all in [-1, 1]; B and the names seed a hints model's simulated hints.
Translate = Callable[[torch.Tensor, torch.Tensor, list[str]], torch.Tensor]


@dataclass(frozen=True)
class StepInfo:
    """Where a step's images sit: rank r holds images offset..offset+B of a global batch; and, for a
    hints model on cached data, the images' hint regions cropped with them (hints.Regions)."""

    step: int
    offset: int = 0
    global_batch: int = 0
    regions: Regions | None = None


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


class Method(Family):
    """One model family's training: its networks, optimizers, training step and logged losses."""

    # What the progress bar shows, and the loss curves' panels {title: losses} (training/plots.py
    # adds validation's): every loss the step returns that a person watches.
    shown_losses: ClassVar[tuple[str, ...]] = ()
    loss_panels: ClassVar[dict[str, tuple[str, ...]]] = {}

    def __init__(self, config: Config, *, device: torch.device, precision: Precision | None = None) -> None:
        self.config = config
        self.device = device
        self.precision = precision or FP32
        self.gan = GANLoss(config.train.gan_mode).to(device)
        # Built in a fixed order from the seeded RNG, so a run's initial weights depend on the seed alone.
        self.networks: dict[str, nn.Module] = {
            name: self.precision.prepare(self.build_network(config.model, name).to(device))
            for name in self.network_names
        }
        self.optimizers: dict[str, torch.optim.Optimizer] = self.build_optimizers()
        # What the step runs: the same modules, or their DDP / compiled wrappers after `distribute`.
        self.live: dict[str, nn.Module] = dict(self.networks)
        # Modules run with their weights frozen (a discriminator in the generator's phase): outside
        # DDP, so they register no backward pass with its reducer.
        self.frozen: dict[str, nn.Module] = dict(self.networks)

    # --- what a subclass states -----------------------------------------------------------------

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError

    def train_step(self, real_a: torch.Tensor, real_b: torch.Tensor, info: StepInfo) -> dict[str, torch.Tensor]:
        """One optimisation step on a batch (B, C, H, W) in [-1, 1]; returns mean losses (on device)."""
        raise NotImplementedError

    def example_inputs(self, batch: int, size: int) -> dict[str, torch.Tensor]:
        """A zero input of each generator's shape in training (what the CPU kernel timing runs)."""
        out = {}
        for direction, name in self.generators.items():
            in_nc, extra, _ = self.generator_channels(self.config.model, direction)
            out[name] = self.precision.to_memory_format(
                torch.zeros(batch, in_nc + extra, size, size, device=self.device)
            )
        return out

    def extra_state(self) -> dict[str, Any]:
        """What a checkpoint holds beyond weights, optimizers and schedules (e.g. image pools)."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        pass

    # --- the generic parts ----------------------------------------------------------------------

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
    def validate(
        self,
        nets: dict[str, nn.Module],
        dataset: PairedDataset,
        *,
        lpips: nn.Module | None = None,
        batch_size: int = 16,
    ) -> dict[str, float]:
        """Mean val metrics of every translator: {'l1', 'psnr', 'ssim', 'h10_ssim', ...}."""
        with eval_mode(nets):
            out: dict[str, float] = {}
            for suffix, fn in self.translators(nets).items():
                metrics = paired_metrics(fn, dataset, device=self.device, batch_size=batch_size, lpips=lpips)
                out.update({f"{suffix}_{k}" if suffix else k: v for k, v in metrics.items()})
        return out

    @torch.no_grad()
    def sample_grid(
        self, nets: dict[str, nn.Module], a_u8: torch.Tensor, b_u8: torch.Tensor, names: list[str] | None = None
    ) -> torch.Tensor:
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
