"""FID and LPIPS: the math on features the test controls, and the weight-loading paths."""

import logging
import math
from pathlib import Path

import pytest
import torch

from pix2pix.metrics import fid as fid_mod
from pix2pix.metrics import lpips as lpips_mod
from pix2pix.metrics import weights as weights_mod
from pix2pix.metrics.fid import FIDInceptionV3, fid_from_features, frechet_distance, gaussian_stats, load_inception
from pix2pix.metrics.lpips import LPIPS, load_lpips


@pytest.fixture(autouse=True)
def empty_caches(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No weights anywhere unless a test puts them there."""
    cache = tmp_path / "cache"
    cache.mkdir()
    monkeypatch.setattr(weights_mod, "cache_dirs", lambda: [cache])
    monkeypatch.setattr(lpips_mod, "_lpips_package_lin", lambda: None)
    return cache


def test_fid_of_identical_sets_is_zero() -> None:
    f = torch.randn(200, 16, generator=torch.Generator().manual_seed(0))
    assert abs(fid_from_features(f, f.clone())) < 1e-6


def test_frechet_distance_closed_form_for_gaussians() -> None:
    # Diagonal covariances: d = ||mu1 - mu2||^2 + sum (s1 - s2)^2 with s the standard deviations.
    mu1, mu2 = torch.tensor([0.0, 1.0, 2.0], dtype=torch.float64), torch.tensor([1.0, 1.0, 0.0], dtype=torch.float64)
    s1, s2 = torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64), torch.tensor([2.0, 2.0, 1.5], dtype=torch.float64)
    expected = float(((mu1 - mu2) ** 2).sum() + ((s1 - s2) ** 2).sum())
    assert frechet_distance(mu1, torch.diag(s1**2), mu2, torch.diag(s2**2)) == pytest.approx(expected, rel=1e-9)
    # A full covariance: rotate both; the distance is invariant.
    q, _ = torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1)))
    d = frechet_distance(q @ mu1, q @ torch.diag(s1**2) @ q.T, q @ mu2, q @ torch.diag(s2**2) @ q.T)
    assert d == pytest.approx(expected, rel=1e-7)


def test_fid_from_samples_approaches_the_closed_form() -> None:
    g = torch.Generator().manual_seed(2)
    a = torch.randn(20000, 4, generator=g, dtype=torch.float64) * 1.0
    b = torch.randn(20000, 4, generator=g, dtype=torch.float64) * 2.0 + 0.5
    expected = 4 * 0.5**2 + 4 * (2.0 - 1.0) ** 2
    assert fid_from_features(a, b) == pytest.approx(expected, rel=0.05)


def test_fid_needs_two_images() -> None:
    with pytest.raises(ValueError, match="at least 2 images"):
        gaussian_stats(torch.zeros(1, 8))


def test_inception_absent_weights_skip_with_one_line(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        assert load_inception() is None
    assert "FID skipped: no Inception weights found" in caplog.text


def test_inception_weights_load_from_a_file_and_from_the_cache(tmp_path: Path, empty_caches: Path) -> None:
    torch.manual_seed(0)
    net = FIDInceptionV3()
    state = {**net.state_dict(), "fc.weight": torch.zeros(1008, 2048), "fc.bias": torch.zeros(1008)}
    torch.save(state, tmp_path / "inception.pth")
    loaded = load_inception(tmp_path / "inception.pth")
    x = torch.rand(2, 3, 64, 64)
    feats = loaded(x)
    assert feats.shape == (2, 2048)
    torch.testing.assert_close(feats, net(x))
    torch.save(state, empty_caches / fid_mod.FID_WEIGHTS_NAMES[0])
    assert load_inception() is not None


def test_wrong_weights_are_named(tmp_path: Path) -> None:
    torch.save({"something.else": torch.zeros(3)}, tmp_path / "wrong.pth")
    with pytest.raises(ValueError, match="wrong.pth: does not fit FIDInceptionV3"):
        load_inception(tmp_path / "wrong.pth")
    with pytest.raises(FileNotFoundError, match="weights file not found"):
        load_inception(tmp_path / "missing.pth")
    (tmp_path / "junk.pth").write_bytes(b"junk")
    with pytest.raises(ValueError, match="junk.pth: unreadable weights"):
        load_inception(tmp_path / "junk.pth")


def test_lpips_math_and_combined_file(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = LPIPS()
    for i in range(5):  # non-negative heads, as trained LPIPS has
        getattr(model, f"lin{i}").model[1].weight.data.uniform_(0, 1)
    x, y = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    assert torch.allclose(model(x, x), torch.zeros(2), atol=1e-7)
    d = model(x, y)
    assert (d > 0).all() and torch.allclose(d, model(y, x))
    assert (model(x, (x + 0.02).clamp(0, 1)) < d).all()  # a small change is nearer than a new image
    torch.save(model.state_dict(), tmp_path / "lpips_full.pth")
    loaded = load_lpips(tmp_path / "lpips_full.pth")
    torch.testing.assert_close(loaded(x, y), d)


def test_lpips_from_torchvision_backbone_and_heads_in_the_cache(empty_caches: Path, caplog) -> None:
    with caplog.at_level(logging.INFO):
        assert load_lpips() is None
    assert "LPIPS skipped" in caplog.text
    torch.manual_seed(0)
    model = LPIPS()
    backbone = {k.removeprefix("net."): v for k, v in model.state_dict().items() if k.startswith("net.")}
    backbone["classifier.0.weight"] = torch.zeros(4, 4)  # torchvision's file also holds the classifier
    torch.save(backbone, empty_caches / "vgg16-397923af.pth")
    heads = {k: v for k, v in model.state_dict().items() if k.startswith("lin")}
    torch.save(heads, empty_caches / "vgg.pth")
    loaded = load_lpips()
    x, y = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    torch.testing.assert_close(loaded(x, y), model(x, y))


def test_evaluate_reports_lpips_and_fid_when_weights_exist(tmp_path: Path, tiny_data: Path) -> None:
    from pix2pix.evaluation import evaluate
    from pix2pix.networks import make_generator
    from pix2pix.run_folder import save_checkpoint

    from .conftest import tiny_config

    cfg = tiny_config(tiny_data)
    torch.manual_seed(0)
    save_checkpoint(
        tmp_path / "run" / "checkpoints" / "last", config=cfg, networks={"generator": make_generator(cfg.model)}
    )
    ev = evaluate(tmp_path / "run", lpips=LPIPS(), inception=FIDInceptionV3(), with_untrained=False)
    for method in ("model", "copy_input"):
        assert {"l1", "psnr", "ssim", "lpips", "fid"} <= set(ev.mean[method])
        assert math.isfinite(ev.mean[method]["fid"]) and ev.mean[method]["fid"] >= -1e-6
    assert len(ev.per_image["model"]["lpips"]) == len(ev.names)
