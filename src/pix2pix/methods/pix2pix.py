"""pix2pix (Isola et al. 2017): a conditional GAN on pairs, G(A) ~ B, judged by D on (A, B) pairs.

Per batch: generate, one discriminator step, one generator step (the paper's schedule). With
`model.hints`, the generator also takes a hint map simulated from the target (see hints.py); the
discriminator still judges (line art, image) pairs: hints are the user's, not part of the
condition.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from .. import seeding
from ..config import VAL_HINTS
from ..hints import HintRecipe, draw_hints, empty_hints, eval_hints, fill_as_trained, training_hints
from ..images import from_uint8
from ..losses import GANLoss, discriminator_loss, generator_loss
from ..networks import Pix2PixNetworks
from ..optim import make_adam
from ..precision import Precision
from .base import FP32, Method, StepInfo, Translate, eval_mode, no_sync, set_requires_grad
from .registry import register_method
from .scoring import sample_rows


def train_step(
    generator: nn.Module,
    discriminator: nn.Module,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    gan: GANLoss,
    real_a: torch.Tensor,
    real_b: torch.Tensor,
    tc: Any,
    precision: Precision | None = None,
    *,
    frozen_discriminator: nn.Module | None = None,
    accum: int = 1,
    hints: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """One pix2pix step: generate, update D once, update G once. Returns the mean losses (on device).

    `hints` (B, C + 1, H, W), for a hints model, go into the generator beside `real_a`; D sees
    `real_a` alone. With `accum` > 1 the batch runs as micro-batches whose gradients add up
    before each update; the G phase then regenerates its fakes instead of keeping every
    micro-batch's graph alive. `frozen_discriminator` is D outside its DDP wrapper: the G phase
    only needs gradients with respect to D's input, so it must not register a backward pass with
    DDP's reducer.
    """
    p = precision or FP32
    d_frozen = discriminator if frozen_discriminator is None else frozen_discriminator
    g_in = real_a if hints is None else torch.cat([real_a, hints], dim=1)  # (B, in_nc [+ C + 1], H, W)
    chunks = list(zip(real_a.chunk(accum), real_b.chunk(accum), g_in.chunk(accum)))
    totals: dict[str, torch.Tensor] = {}

    def add(losses: dict[str, torch.Tensor]) -> None:
        for k, v in losses.items():
            totals[k] = totals.get(k, 0) + v.detach() / accum

    # Update discriminator.
    set_requires_grad(d_frozen, True)
    opt_d.zero_grad(set_to_none=True)
    fakes = []
    for i, (a, b, x) in enumerate(chunks):
        with p.autocast(), torch.set_grad_enabled(accum == 1):
            fake_b = generator(x)  # (B, output_nc, H, W); kept with its graph when there is one chunk
        fakes.append(fake_b)
        with no_sync(discriminator, last=i == accum - 1):
            with p.autocast():
                d_losses = discriminator_loss(discriminator, gan, a, b, fake_b, lambda_gp=tc.lambda_gp)
            p.backward(d_losses["D"] / accum)
        add(d_losses)
    p.step(opt_d)

    # Update generator (D frozen, so its weights collect no gradients).
    set_requires_grad(d_frozen, False)
    opt_g.zero_grad(set_to_none=True)
    for i, (a, b, x) in enumerate(chunks):
        with no_sync(generator, last=i == accum - 1):
            with p.autocast():
                fake_b = fakes[i] if accum == 1 else generator(x)
                g_losses = generator_loss(
                    d_frozen, gan, a, b, fake_b, lambda_l1=tc.lambda_l1, lambda_ssim=tc.lambda_ssim
                )
            p.backward(g_losses["G"] / accum)
        add(g_losses)
    p.step(opt_g)
    p.update()
    return totals


@register_method("pix2pix")
class Pix2PixMethod(Pix2PixNetworks, Method):
    """Generator and conditional discriminator, each with its own Adam."""

    shown_losses = ("G_L1", "G_SSIM", "D")
    loss_panels = {"generator": ("G_GAN", "G_L1", "G_SSIM"), "discriminator": ("D_real", "D_fake", "D_gp")}

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        tc = self.config.train
        return {name: make_adam(self.networks[name].parameters(), tc, self.device) for name in self.network_names}

    def train_step(self, real_a: torch.Tensor, real_b: torch.Tensor, info: StepInfo) -> dict[str, torch.Tensor]:
        tc = self.config.train
        hints = None
        if self.config.model.hints:
            # Drawn per image of the global batch from (seed, step, index) on the device: resume and ranks agree.
            seeds = seeding.hint_seeds(tc.seed, info.step, info.offset, len(real_a), device=real_a.device)
            real_b, hints = training_hints(
                real_a,
                real_b,
                seeds,
                recipe=HintRecipe.from_config(tc),
                model=self.config.model,
                jitter=tc.hint_jitter,
                regions=info.regions,
            )
            real_b, hints = self.precision.to_memory_format(real_b), self.precision.to_memory_format(hints)
        return train_step(
            self.live["generator"],
            self.live["discriminator"],
            self.optimizers["generator"],
            self.optimizers["discriminator"],
            self.gan,
            real_a,
            real_b,
            tc,
            self.precision,
            frozen_discriminator=self.frozen["discriminator"],
            accum=tc.grad_accum,
            hints=hints,
        )

    def translators(self, nets: dict[str, nn.Module]) -> dict[str, Translate]:
        g = nets["generator"]
        if not self.config.model.hints:
            return {"": lambda a, b, names: g(a)}
        out_nc = self.config.model.output_nc

        def no_hints(a: torch.Tensor, b: torch.Tensor, names: list[str]) -> torch.Tensor:
            return g(torch.cat([a, empty_hints(len(a), out_nc, *a.shape[-2:], device=a.device)], dim=1))

        def with_hints(a: torch.Tensor, b: torch.Tensor, names: list[str]) -> torch.Tensor:
            hints = eval_hints(a, b, names, VAL_HINTS)
            return g(torch.cat([a, fill_as_trained(hints, a, self.config.model)], dim=1))

        return {"": no_hints, f"h{VAL_HINTS}": with_hints}

    @torch.no_grad()
    def sample_grid(
        self, nets: dict[str, nn.Module], a_u8: torch.Tensor, b_u8: torch.Tensor, names: list[str] | None = None
    ) -> torch.Tensor:
        """Rows of input | output | target; a hints model adds its 10 hints drawn on the input and
        the output with them."""
        names = names or [str(i) for i in range(len(a_u8))]
        with eval_mode(nets):
            shown = None
            if self.config.model.hints:
                a, b = from_uint8(a_u8), from_uint8(b_u8)
                shown = draw_hints(a, eval_hints(a, b, names, VAL_HINTS))
            return sample_rows(self.translators(nets), a_u8, b_u8, device=self.device, names=names, hinted_input=shown)
