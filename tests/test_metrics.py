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


def test_metrics_json_on_known_images(tmp_path) -> None:
    """evaluate's copy-input column, read back from metrics.json, against values worked out by hand:
    an image against itself, a known constant error, and a shift."""
    import json

    import numpy as np
    from click.testing import CliRunner
    from PIL import Image

    from pix2pix.cli import main
    from pix2pix.config import Config, apply_overrides
    from pix2pix.networks import make_generator
    from pix2pix.run_folder import save_checkpoint

    rng = np.random.default_rng(0)
    base = rng.integers(40, 216, (32, 32, 3), dtype=np.uint8)
    stripes = np.zeros((32, 32, 3), dtype=np.uint8)
    stripes[:, ::4] = 255  # vertical lines every 4 pixels
    pairs = {
        "same": (base, base),
        "offset": (base, base + 20),  # |error| = 20/255 everywhere: L1 = 20/255, PSNR = 20 log10(255/20)
        "shift": (stripes, np.roll(stripes, 2, axis=1)),  # lines moved by half their period
    }
    (tmp_path / "data" / "test").mkdir(parents=True)
    for name, (a, b) in pairs.items():
        Image.fromarray(np.concatenate([a, b], axis=1)).save(tmp_path / "data" / "test" / f"{name}.png")
    cfg = apply_overrides(
        Config(),
        {"root": str(tmp_path / "data"), "generator": "unet_32", "ngf": 4, "ndf": 4, "load_size": 32, "crop_size": 32},
    )
    save_checkpoint(
        tmp_path / "run" / "checkpoints" / "last", config=cfg, networks={"generator": make_generator(cfg.model)}
    )
    r = CliRunner().invoke(main, ["--no-progress", "evaluate", str(tmp_path / "run"), "--out", str(tmp_path / "ev")])
    assert r.exit_code == 0, r.output
    rows = {
        row["name"]: row["copy_input"]
        for row in json.loads((tmp_path / "ev" / "metrics.json").read_text())["per_image"]
    }

    assert rows["same"]["l1"] == 0.0 and rows["same"]["ssim"] == pytest.approx(1.0)
    assert rows["same"]["psnr"] == pytest.approx(PSNR_CAP)
    assert rows["offset"]["l1"] == pytest.approx(20 / 255, abs=1e-6)
    assert rows["offset"]["psnr"] == pytest.approx(20 * math.log10(255 / 20), abs=1e-3)
    assert 0.9 < rows["offset"]["ssim"] < 1.0  # a small brightness change: structure intact
    # Half the columns of the shifted stripes disagree by 255 on all channels: the lines are 1/4 of
    # the columns, so 2 * 1/4 = 1/2 of pixels differ by 1.0 -> L1 0.5, MSE 0.5, PSNR 10 log10(2).
    assert rows["shift"]["l1"] == pytest.approx(0.5, abs=1e-6)
    assert rows["shift"]["psnr"] == pytest.approx(10 * math.log10(2), abs=1e-4)
    assert rows["shift"]["ssim"] < 0.1  # the structure moved


@pytest.mark.parametrize(("shape", "noise"), [((3, 3, 32, 32), 0.2), ((2, 3, 64, 48), 0.05), ((1, 1, 17, 90), 0.5)])
def test_ssim_is_torchmetrics_ssim(shape: tuple[int, ...], noise: float) -> None:
    from torchmetrics.functional.image import structural_similarity_index_measure

    from pix2pix.metrics.image import ssim

    g = torch.Generator().manual_seed(sum(shape))
    x = torch.rand(shape, generator=g, dtype=torch.float64)
    y = (x + noise * torch.randn(shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    ours = ssim(x, y)
    theirs = structural_similarity_index_measure(x, y, data_range=1.0, reduction="none")
    assert ours.shape == (shape[0],)
    torch.testing.assert_close(ours, theirs, atol=1e-10, rtol=0)
    assert 0 < float(ours.min()) <= float(ours.max()) < 1  # noisy images: neither identical nor unrelated
