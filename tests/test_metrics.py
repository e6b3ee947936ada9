import math

import pytest
import torch

from pix2pix.metrics.image import PSNR_CAP, image_metrics


def test_an_image_against_itself() -> None:
    x = torch.rand(3, 3, 32, 32)
    m = image_metrics(x, x)
    assert m["l1"].tolist() == [0.0, 0.0, 0.0]
    assert m["psnr"].tolist() == pytest.approx([PSNR_CAP] * 3)
    assert m["ssim"].tolist() == pytest.approx([1.0] * 3, abs=1e-6)


def test_a_constant_offset_has_closed_form_l1_and_psnr() -> None:
    x = torch.full((1, 3, 16, 16), 0.4)
    m = image_metrics(x + 0.1, x)
    assert m["l1"].item() == pytest.approx(0.1, abs=1e-6)
    assert m["psnr"].item() == pytest.approx(20.0, abs=1e-4)  # 10 log10(1 / 0.01)


def test_known_noise_gives_its_psnr() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.full((1, 3, 64, 64), 0.5)
    noise = torch.where(torch.rand(x.shape, generator=g) < 0.5, -0.05, 0.05)  # |e| = 0.05 everywhere
    m = image_metrics(x + noise, x)
    assert m["l1"].item() == pytest.approx(0.05, abs=1e-6)
    assert m["psnr"].item() == pytest.approx(10 * math.log10(1 / 0.0025), abs=1e-3)
    assert 0.0 < m["ssim"].item() < 0.9


def test_a_shift_lowers_ssim_more_than_it_moves_the_mean() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, 64, 64, generator=g)
    shifted = torch.roll(x, shifts=3, dims=-1)
    m = image_metrics(shifted, x)
    assert m["ssim"].item() < 0.2  # structure moved
    assert abs(shifted.mean().item() - x.mean().item()) < 1e-6  # same pixels, same mean


def test_shape_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="differs from target shape"):
        image_metrics(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 9))
