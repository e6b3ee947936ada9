import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from pix2pix.losses import GANLoss, discriminator_loss, generator_loss, gradient_penalty


def test_vanilla_is_bce_with_logits() -> None:
    pred = torch.zeros(2, 1, 4, 4)  # sigmoid(0) = 0.5
    assert GANLoss("vanilla")(pred, True).item() == pytest.approx(math.log(2))
    assert GANLoss("vanilla")(pred, False).item() == pytest.approx(math.log(2))


def test_lsgan_is_mse_to_targets() -> None:
    pred = torch.full((1, 1, 2, 2), 0.25)
    assert GANLoss("lsgan")(pred, True).item() == pytest.approx(0.75**2)
    assert GANLoss("lsgan")(pred, False).item() == pytest.approx(0.25**2)


def test_hinge_for_d_and_g() -> None:
    pred = torch.tensor([-2.0, 0.0, 0.5, 3.0])
    gan = GANLoss("hinge")
    assert gan(pred, True).item() == pytest.approx((3 + 1 + 0.5 + 0) / 4)
    assert gan(pred, False).item() == pytest.approx((0 + 1 + 1.5 + 4) / 4)
    assert gan(pred, True, for_discriminator=False).item() == pytest.approx(-pred.mean().item())


def test_unknown_gan_mode() -> None:
    with pytest.raises(ValueError, match="unknown gan_mode 'wgan'"):
        GANLoss("wgan")


class LinearCritic(nn.Module):
    """D(cond, x) = sum(k * x): its gradient with respect to x is k everywhere."""

    def __init__(self, k: float) -> None:
        super().__init__()
        self.k = k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.k * x[:, 3:]).sum(dim=(1, 2, 3))


@pytest.mark.parametrize("k", [0.01, 0.05, 0.2])
def test_gradient_penalty_matches_closed_form(k: float) -> None:
    cond, real, fake = torch.randn(3, 2, 3, 4, 4).unbind(0)
    gp = gradient_penalty(LinearCritic(k), cond, real, fake)
    norm = k * math.sqrt(3 * 4 * 4)  # ||grad|| = |k| * sqrt(number of pixels)
    assert gp.item() == pytest.approx((norm - 1) ** 2, rel=1e-5)


def test_wgan_gp_discriminator_loss_applies_the_penalty() -> None:
    torch.manual_seed(0)
    cond, real, fake = torch.randn(3, 2, 3, 4, 4).unbind(0)
    critic = LinearCritic(0.5)
    out = discriminator_loss(critic, GANLoss("wgan-gp"), cond, real, fake, lambda_gp=10.0)
    base = 0.5 * (critic(torch.cat([cond, fake], 1)).mean() - critic(torch.cat([cond, real], 1)).mean())
    assert out["D_gp"].item() == pytest.approx((0.5 * math.sqrt(48) - 1) ** 2, rel=1e-5)
    assert out["D"].item() == pytest.approx(base.item() + 10 * out["D_gp"].item(), rel=1e-5)


def test_generator_loss_weights_l1() -> None:
    d = nn.Conv2d(6, 1, 1)
    a, b = torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8)
    fake = torch.full((1, 3, 8, 8), 0.5)
    out = generator_loss(d, GANLoss("vanilla"), a, b, fake, lambda_l1=100.0)
    assert out["G_L1"].item() == pytest.approx(0.5)
    assert out["G"].item() == pytest.approx(out["G_GAN"].item() + 50.0)


def test_discriminator_loss_is_halved_and_does_not_reach_generator() -> None:
    d = nn.Conv2d(6, 1, 1)
    a, b = torch.randn(2, 1, 3, 8, 8).unbind(0)
    fake = torch.randn(1, 3, 8, 8, requires_grad=True)
    out = discriminator_loss(d, GANLoss("vanilla"), a, b, fake)
    assert out["D"].item() == pytest.approx(0.5 * (out["D_real"].item() + out["D_fake"].item()))
    out["D"].backward()
    assert fake.grad is None  # the fake is detached for the D step


def test_ssim_term_is_off_by_default_and_weighted_when_on() -> None:
    d = nn.Conv2d(6, 1, 1)
    gen = torch.Generator().manual_seed(0)
    a, b = torch.zeros(2, 3, 16, 16), torch.rand(2, 3, 16, 16, generator=gen) * 2 - 1
    fake = (b + 0.3 * torch.randn(2, 3, 16, 16, generator=gen)).clamp(-1, 1)
    plain = generator_loss(d, GANLoss("vanilla"), a, b, fake)
    assert "G_SSIM" not in plain
    out = generator_loss(d, GANLoss("vanilla"), a, b, fake, lambda_ssim=50.0)
    assert 0.02 < out["G_SSIM"].item() < 1.0
    assert out["G"].item() == pytest.approx(plain["G"].item() + 50.0 * out["G_SSIM"].item(), rel=1e-5)


def test_ssim_loss_is_the_evaluation_ssim_and_prefers_flat_over_noisy() -> None:
    from pix2pix.losses import ssim_loss
    from pix2pix.metrics.image import image_metrics

    gen = torch.Generator().manual_seed(1)
    target = torch.full((1, 3, 64, 64), 0.2)  # a flat fill in [-1, 1]
    noisy = target + 0.05 * torch.randn(1, 3, 64, 64, generator=gen)
    flat_wrong = torch.full((1, 3, 64, 64), 0.35)  # worse L1 than `noisy`, no texture
    assert F.l1_loss(flat_wrong, target) > F.l1_loss(noisy, target)
    assert ssim_loss(flat_wrong, target) < ssim_loss(noisy, target)
    ssim = image_metrics((noisy + 1) / 2, (target + 1) / 2)["ssim"]
    assert ssim_loss(noisy, target).item() == pytest.approx(1 - ssim.item(), abs=5e-3)  # border handling differs
    x = noisy.clone().requires_grad_(True)
    ssim_loss(x, target).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_ssim_equals_pytorch_msssim_in_value_and_gradient() -> None:
    from pytorch_msssim import ssim as reference

    from pix2pix.losses import ssim

    gen = torch.Generator().manual_seed(0)
    x = torch.rand(3, 3, 40, 48, generator=gen, requires_grad=True)
    y = torch.rand(3, 3, 40, 48, generator=gen)
    ours, theirs = ssim(x, y), reference(x, y, data_range=1.0, win_size=11, win_sigma=1.5)
    torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=0)
    (g_ours,) = torch.autograd.grad(ours, x)
    (g_theirs,) = torch.autograd.grad(theirs, x)
    torch.testing.assert_close(g_ours, g_theirs, atol=1e-9, rtol=1e-4)


def test_ssim_loss_stays_float32_under_bf16_autocast() -> None:
    from pix2pix.losses import ssim_loss

    gen = torch.Generator().manual_seed(0)
    real = torch.rand(2, 3, 32, 32, generator=gen) * 2 - 1
    fake = (real + 0.1 * torch.randn(2, 3, 32, 32, generator=gen)).clamp(-1, 1)
    plain = ssim_loss(fake, real)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = ssim_loss(fake.bfloat16(), real)  # a bf16 generator output, as autocast gives
    assert mixed.dtype == torch.float32
    torch.testing.assert_close(mixed, ssim_loss(fake.bfloat16().float(), real), atol=1e-6, rtol=1e-5)
    assert abs(float(mixed) - float(plain)) < 0.01
