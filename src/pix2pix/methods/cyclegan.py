"""CycleGAN (Zhu et al. 2017): two generators and two discriminators learn from unpaired images.

G: A -> B and F: B -> A are trained so that F(G(a)) ~ a and G(F(b)) ~ b (the cycle losses), so
that D_B cannot tell G(a) from real B images and D_A cannot tell F(b) from real A images, and
(identity loss) so that G leaves B images alone and F leaves A images alone. Each discriminator
learns from a pool of recent fakes rather than only the newest ones (Shrivastava et al. 2017).

Networks: "generator" is G (A -> B, what inference uses by default), "generator_ba" is F,
"discriminator_b" judges B images (the reference's D_A), "discriminator_a" judges A images.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

from .. import seeding
from ..images import from_uint8, to_unit
from ..losses import gradient_penalty
from ..networks import CycleGANNetworks
from ..optim import make_adam
from .base import Method, StepInfo, Translate, eval_mode, no_sync, set_requires_grad
from .registry import register_method


class ImagePool:
    """A buffer of up to `size` past fakes (the reference's ImagePool, with seeded draws).

    For each new fake: while the pool is not full, store it and return it; once full, with
    probability 1/2 return a stored fake and store the new one in its place, else return the new
    one. Draws come from a generator the caller seeds from (seed, step), and the pool is part of
    the checkpoint, so a resumed run queries it exactly as an uninterrupted one.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.images: list[torch.Tensor] = []

    def query(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """(N, C, H, W) fakes -> (N, C, H, W) fakes for the discriminator, new or from the pool."""
        if self.size == 0:
            return images
        n = len(images)
        swap = (torch.rand(n, generator=generator) < 0.5).tolist()
        slots = torch.randint(0, self.size, (n,), generator=generator).tolist()
        out = []
        for img, use_old, j in zip(images.detach(), swap, slots):
            if len(self.images) < self.size:
                self.images.append(img.clone())
                out.append(img)
            elif use_old:
                out.append(self.images[j].clone())
                self.images[j] = img.clone()
            else:
                out.append(img)
        return torch.stack(out)

    def state_dict(self) -> dict[str, Any]:
        return {"images": torch.stack(self.images).cpu() if self.images else torch.zeros(0)}

    def load_state_dict(self, state: dict[str, Any], device: torch.device) -> None:
        stored = state["images"]
        self.images = [img.to(device) for img in stored] if stored.numel() else []


def all_gather_batch(x: torch.Tensor) -> torch.Tensor:
    """The global batch from every rank's share, in rank order (x itself without a process group)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts)


@register_method("cyclegan")
class CycleGANMethod(CycleGANNetworks, Method):
    """Generators G (A -> B) and F (B -> A) share one Adam; discriminators D_A and D_B share another."""

    shown_losses = ("G_GAN_AB", "G_GAN_BA", "cycle_A", "cycle_B", "idt_A", "idt_B", "D")
    loss_panels = {
        "generators: adversarial": ("G_GAN_AB", "G_GAN_BA"),
        "generators: cycle and identity": ("cycle_A", "cycle_B", "idt_A", "idt_B"),
        "discriminators": ("D_A", "D_B"),
    }

    def __init__(self, config: Any, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.pools = {"a": ImagePool(config.train.pool_size), "b": ImagePool(config.train.pool_size)}

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        tc, nets = self.config.train, self.networks
        gens = [*nets["generator"].parameters(), *nets["generator_ba"].parameters()]
        discs = [*nets["discriminator_b"].parameters(), *nets["discriminator_a"].parameters()]
        return {"generators": make_adam(gens, tc, self.device), "discriminators": make_adam(discs, tc, self.device)}

    def extra_state(self) -> dict[str, Any]:
        return {"pools": {k: pool.state_dict() for k, pool in self.pools.items()}}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        for k, pool_state in state.get("pools", {}).items():
            self.pools[k].load_state_dict(pool_state, self.device)

    def train_step(self, real_a: torch.Tensor, real_b: torch.Tensor, info: StepInfo) -> dict[str, torch.Tensor]:
        tc, p = self.config.train, self.precision
        g_ab, g_ba = self.live["generator"], self.live["generator_ba"]
        d_b, d_a = self.live["discriminator_b"], self.live["discriminator_a"]
        frozen_b, frozen_a = self.frozen["discriminator_b"], self.frozen["discriminator_a"]
        accum = tc.grad_accum
        totals: dict[str, torch.Tensor] = {}

        def add(losses: dict[str, torch.Tensor]) -> None:
            for k, v in losses.items():
                totals[k] = totals.get(k, 0) + v.detach() / accum

        # Update generators G and F (discriminators frozen): adversarial + cycle + identity losses.
        set_requires_grad([frozen_b, frozen_a], False)
        opt_g, opt_d = self.optimizers["generators"], self.optimizers["discriminators"]
        opt_g.zero_grad(set_to_none=True)
        fakes_b, fakes_a = [], []
        for i, (a, b) in enumerate(zip(real_a.chunk(accum), real_b.chunk(accum))):
            last = i == accum - 1
            with no_sync(g_ab, last=last), no_sync(g_ba, last=last), p.autocast():
                fake_b = g_ab(a)  # G(a)
                fake_a = g_ba(b)  # F(b)
                losses = {
                    "G_GAN_AB": self.gan(frozen_b(fake_b), True, for_discriminator=False),
                    "G_GAN_BA": self.gan(frozen_a(fake_a), True, for_discriminator=False),
                    "cycle_A": F.l1_loss(g_ba(fake_b), a),  # F(G(a)) ~ a
                    "cycle_B": F.l1_loss(g_ab(fake_a), b),  # G(F(b)) ~ b
                }
                total = (
                    losses["G_GAN_AB"]
                    + losses["G_GAN_BA"]
                    + tc.lambda_cycle_a * losses["cycle_A"]
                    + tc.lambda_cycle_b * losses["cycle_B"]
                )
                if tc.lambda_identity > 0:
                    losses["idt_B"] = F.l1_loss(g_ab(b), b)  # G leaves B images alone
                    losses["idt_A"] = F.l1_loss(g_ba(a), a)
                    total = total + tc.lambda_identity * (
                        tc.lambda_cycle_b * losses["idt_B"] + tc.lambda_cycle_a * losses["idt_A"]
                    )
                losses["G"] = total
                p.backward(total / accum)
            add(losses)
            fakes_b.append(fake_b.detach())
            fakes_a.append(fake_a.detach())
        p.step(opt_g)

        # Update discriminators D_B and D_A on real images and pooled fakes. The pools see the
        # global batch (gathered from every rank) and draw from (seed, step), so N ranks keep the
        # same pools as one process; each rank then judges its own share.
        set_requires_grad([frozen_b, frozen_a], True)
        opt_d.zero_grad(set_to_none=True)
        n = len(real_a)
        pooled = {}
        for key, fakes in (("b", fakes_b), ("a", fakes_a)):
            g = seeding.generator("pool", tc.seed, info.step, int(key == "a"))
            everyone = all_gather_batch(torch.cat(fakes))
            pooled[key] = self.pools[key].query(everyone, g)[info.offset : info.offset + n]
        for i, (a, b, fb, fa) in enumerate(
            zip(real_a.chunk(accum), real_b.chunk(accum), pooled["b"].chunk(accum), pooled["a"].chunk(accum))
        ):
            last = i == accum - 1
            with no_sync(d_b, last=last), no_sync(d_a, last=last), p.autocast():
                losses = {"D_B": self._d_loss(d_b, b, fb), "D_A": self._d_loss(d_a, a, fa)}
                losses["D"] = losses["D_B"] + losses["D_A"]
                p.backward(losses["D"] / accum)
            add(losses)
        p.step(opt_d)
        p.update()
        return totals

    def _d_loss(self, discriminator: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """Real images judged real, pooled fakes judged fake, halved (the reference's backward_D_basic)."""
        loss = (self.gan(discriminator(real), True) + self.gan(discriminator(fake.detach()), False)) * 0.5
        if self.gan.mode == "wgan-gp":
            empty = real[:, :0]  # an unconditional critic: no condition channels
            loss = loss + self.config.train.lambda_gp * gradient_penalty(discriminator, empty, real, fake)
        return loss

    # --- validation ---------------------------------------------------------------------------

    def translators(self, nets: dict[str, nn.Module]) -> dict[str, Translate]:
        g = nets["generator"]
        return {"": lambda a, b, names: g(a)}

    @torch.no_grad()
    def validate(
        self, nets: dict[str, nn.Module], dataset: Any, *, lpips: nn.Module | None = None, batch_size: int = 16
    ) -> dict[str, float]:
        """Paired val data: L1 / PSNR / SSIM of G(a) against b, as for pix2pix. Either way, the
        cycle errors: mean |F(G(a)) - a| and |G(F(b)) - b| in [0, 1] units."""
        out = (
            super().validate(nets, dataset, lpips=lpips, batch_size=batch_size)
            if getattr(dataset, "paired", True)
            else {}
        )
        with eval_mode(nets):
            out.update(
                cycle_errors(
                    nets["generator"], nets["generator_ba"], dataset, device=self.device, batch_size=batch_size
                )
            )
        return out

    @torch.no_grad()
    def sample_grid(
        self, nets: dict[str, nn.Module], a_u8: torch.Tensor, b_u8: torch.Tensor, names: list[str] | None = None
    ) -> torch.Tensor:
        """(3, 2N*S, 3S): for each sample, a row A -> G(A) -> F(G(A)) and a row B -> F(B) -> G(F(B))."""
        with eval_mode(nets):
            g_ab, g_ba = nets["generator"], nets["generator_ba"]
            a, b = from_uint8(a_u8.to(self.device)), from_uint8(b_u8.to(self.device))
            fake_b, fake_a = g_ab(a), g_ba(b)
            rows_a = [a, fake_b, g_ba(fake_b)]
            rows_b = [b, fake_a, g_ab(fake_a)]
        three = lambda t: to_unit(t).float().cpu().expand(-1, 3, -1, -1)  # noqa: E731
        row_a = torch.cat([three(t) for t in rows_a], dim=3)  # (N, 3, S, 3S)
        row_b = torch.cat([three(t) for t in rows_b], dim=3)
        rows = torch.stack([row_a, row_b], dim=1).flatten(0, 1)  # (2N, 3, S, 3S): A row, B row, ...
        return torch.cat(list(rows), dim=1)


@torch.no_grad()
def cycle_errors(
    g_ab: nn.Module, g_ba: nn.Module, dataset: Any, *, device: torch.device, batch_size: int = 16
) -> dict[str, float]:
    """Mean cycle-consistency errors over a split: {'cycle_a': |F(G(a)) - a|, 'cycle_b': |G(F(b)) - b|}
    as L1 in [0, 1] units, over every A image and every B image of `dataset`."""
    sums = {"cycle_a": 0.0, "cycle_b": 0.0}
    for key, images, there, back in (
        ("cycle_a", dataset.images_a, g_ab, g_ba),
        ("cycle_b", dataset.images_b, g_ba, g_ab),
    ):
        n = images.count
        for start in range(0, n, batch_size):
            x = from_uint8(images.batch(torch.arange(start, min(start + batch_size, n))).to(device))
            rec = back(there(x))
            sums[key] += float((to_unit(rec) - to_unit(x)).abs().flatten(1).mean(1).sum())
        sums[key] /= max(n, 1)
    return sums
