"""The pix2pix training step as the field's reference computes it, for a side-by-side speed figure.

Written from the paper (Isola et al. 2017, appendix 6.1) and the reference repository's documented
defaults, not copied from it: a U-Net of skip-connection blocks (C64-C128-C256-C512-C512-C512-C512
-C512 down, mirrored up, batch norm, dropout 0.5 in the three innermost decoder blocks, no bias
before a batch norm), the 70x70 PatchGAN (C64-C128-C256-C512, batch norm), the vanilla GAN loss
on logits plus 100 x L1, and PyTorch's default Adam (the per-parameter for-loop implementation on
CPU) with lr 2e-4, betas (0.5, 0.999). The step is the reference's: generate, update D on
(A, fake B) and (A, B) with the loss halved, then update G. Plain eager float32, no fused kernels,
no GEMM layers: what a user of the reference runs on a CPU (or, with `device`, a GPU).

Only benchmarks/bench.py uses this file; nothing in the package depends on it.
"""

from __future__ import annotations

import torch
import torch.nn as nn


class SkipBlock(nn.Module):
    """One U-Net level: down, the inner levels, up, and the skip concatenation (except outermost)."""

    def __init__(
        self,
        outer: int,
        inner: int,
        *,
        in_nc: int | None = None,
        sub: nn.Module | None = None,
        outermost: bool = False,
        innermost: bool = False,
        dropout: bool = False,
    ) -> None:
        super().__init__()
        self.outermost = outermost
        in_nc = outer if in_nc is None else in_nc
        down_conv = nn.Conv2d(in_nc, inner, 4, 2, 1, bias=False)
        if outermost:
            layers = [down_conv, sub, nn.ReLU(True), nn.ConvTranspose2d(inner * 2, outer, 4, 2, 1), nn.Tanh()]
        elif innermost:
            layers = [
                nn.LeakyReLU(0.2, True),
                down_conv,
                nn.ReLU(True),
                nn.ConvTranspose2d(inner, outer, 4, 2, 1, bias=False),
                nn.BatchNorm2d(outer),
            ]
        else:
            layers = [
                nn.LeakyReLU(0.2, True),
                down_conv,
                nn.BatchNorm2d(inner),
                sub,
                nn.ReLU(True),
                nn.ConvTranspose2d(inner * 2, outer, 4, 2, 1, bias=False),
                nn.BatchNorm2d(outer),
            ]
            if dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x) if self.outermost else torch.cat([x, self.model(x)], 1)


def unet_256(in_nc: int = 3, out_nc: int = 3, ngf: int = 64) -> nn.Module:
    block = SkipBlock(ngf * 8, ngf * 8, innermost=True)
    for _ in range(3):
        block = SkipBlock(ngf * 8, ngf * 8, sub=block, dropout=True)
    for mult in (4, 2, 1):
        block = SkipBlock(ngf * mult, ngf * mult * 2, sub=block)
    return SkipBlock(out_nc, ngf, in_nc=in_nc, sub=block, outermost=True)


def patchgan_70(in_nc: int = 6, ndf: int = 64) -> nn.Module:
    layers: list[nn.Module] = [nn.Conv2d(in_nc, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
    for prev, mult, stride in ((1, 2, 2), (2, 4, 2), (4, 8, 1)):
        layers += [
            nn.Conv2d(ndf * prev, ndf * mult, 4, stride, 1, bias=False),
            nn.BatchNorm2d(ndf * mult),
            nn.LeakyReLU(0.2, True),
        ]
    layers.append(nn.Conv2d(ndf * 8, 1, 4, 1, 1))
    return nn.Sequential(*layers)


def init_normal(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class ReferenceStep:
    """Networks, optimizers and one `step()` on a fixed batch, as the reference trains pix2pix."""

    def __init__(self, batch: int = 1, size: int = 256, seed: int = 0, device: str | torch.device = "cpu") -> None:
        torch.manual_seed(seed)
        self.g, self.d = unet_256().to(device), patchgan_70().to(device)
        init_normal(self.g)
        init_normal(self.d)
        # PyTorch's default Adam: on CPU tensors the per-parameter for-loop implementation, on CUDA foreach.
        self.opt_g = torch.optim.Adam(self.g.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(self.d.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.bce = nn.BCEWithLogitsLoss()
        self.l1 = nn.L1Loss()
        self.a = (torch.rand(batch, 3, size, size) * 2 - 1).to(device)
        self.b = (torch.rand(batch, 3, size, size) * 2 - 1).to(device)

    def gan(self, pred: torch.Tensor, real: bool) -> torch.Tensor:
        return self.bce(pred, torch.full_like(pred, 1.0 if real else 0.0))

    def step(self) -> None:
        fake = self.g(self.a)
        # Update D.
        for p in self.d.parameters():
            p.requires_grad = True
        self.opt_d.zero_grad()
        loss_d = (
            self.gan(self.d(torch.cat([self.a, fake.detach()], 1)), False)
            + self.gan(self.d(torch.cat([self.a, self.b], 1)), True)
        ) * 0.5
        loss_d.backward()
        self.opt_d.step()
        # Update G.
        for p in self.d.parameters():
            p.requires_grad = False
        self.opt_g.zero_grad()
        loss_g = self.gan(self.d(torch.cat([self.a, fake], 1)), True) + self.l1(fake, self.b) * 100.0
        loss_g.backward()
        self.opt_g.step()
