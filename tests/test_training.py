import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from pix2pix.config import Config
from pix2pix.inference import Pix2Pix
from pix2pix.run_folder import checkpoint_dir, save_checkpoint
from pix2pix.training.loop import resume, train
from pix2pix.training.schedule import lr_lambda

from .conftest import tiny_config


def weights(run: Path, which: str = "generator") -> dict[str, torch.Tensor]:
    return load_file(str(run / "checkpoints" / "last" / f"{which}.safetensors"))


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], atol: float = 1e-6) -> None:
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=atol, rtol=0, msg=k)


def test_training_writes_a_self_describing_run(tmp_path: Path, tiny_cfg: Config) -> None:
    summary = train(tiny_cfg, tmp_path / "run", progress=False)
    run = tmp_path / "run"
    assert summary["steps"] == 6
    ckpt = run / "checkpoints" / "last"
    assert {p.name for p in ckpt.iterdir()} == {
        "config.json",
        "meta.json",
        "generator.safetensors",
        "discriminator.safetensors",
        "training_state.pt",
    }
    assert Config.load(run / "config.json") == tiny_cfg == Config.load(ckpt / "config.json")
    assert json.loads((ckpt / "meta.json").read_text())["step"] == 6
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "G_L1" in r] == [2, 4, 6]
    assert [r["step"] for r in log if "val_l1" in r] == [6]  # validation at the end of the run
    assert {"G_GAN", "G_L1", "D_real", "D_fake", "lr", "img_per_s"} <= set(log[0])
    # Training changed the generator away from its initial weights.
    torch.manual_seed(tiny_cfg.train.seed)
    from pix2pix.networks import make_generator

    init = make_generator(tiny_cfg.model).state_dict()
    trained = weights(run)
    assert any(not torch.equal(init[k], trained[k]) for k in trained if trained[k].is_floating_point())


def test_l1_falls_when_training_longer(tmp_path: Path, tiny_data: Path) -> None:
    cfg = tiny_config(tiny_data, max_steps=40, log_every=10, lr=1e-3)
    train(cfg, tmp_path / "run", progress=False)
    log = [r for r in map(json.loads, (tmp_path / "run" / "log.jsonl").read_text().splitlines()) if "G_L1" in r]
    assert log[-1]["G_L1"] < 0.6 * log[0]["G_L1"]


def test_ssim_term_trains_and_is_logged(tmp_path: Path, tiny_data: Path) -> None:
    cfg = tiny_config(tiny_data, max_steps=40, log_every=10, lr=1e-3, lambda_ssim=100.0)
    train(cfg, tmp_path / "run", progress=False)
    log = [r for r in map(json.loads, (tmp_path / "run" / "log.jsonl").read_text().splitlines()) if "G_SSIM" in r]
    assert [r["step"] for r in log] == [10, 20, 30, 40]
    assert log[-1]["G_SSIM"] < 0.8 * log[0]["G_SSIM"]


def test_same_seed_same_weights(tmp_path: Path, tiny_cfg: Config) -> None:
    train(tiny_cfg, tmp_path / "a", progress=False)
    train(tiny_cfg, tmp_path / "b", progress=False)
    assert_same_weights(weights(tmp_path / "a"), weights(tmp_path / "b"), atol=0)


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path: Path, tiny_data: Path) -> None:
    cfg = tiny_config(tiny_data, max_steps=9, n_epochs=1, n_epochs_decay=2)  # crosses epochs and lr decay
    train(cfg, tmp_path / "whole", progress=False)
    train(cfg, tmp_path / "cut", stop_at_step=4, progress=False)
    assert json.loads((tmp_path / "cut" / "checkpoints" / "last" / "meta.json").read_text())["step"] == 4
    summary = resume(tmp_path / "cut", progress=False)
    assert summary["steps"] == 9
    assert_same_weights(weights(tmp_path / "whole"), weights(tmp_path / "cut"))
    assert_same_weights(weights(tmp_path / "whole", "discriminator"), weights(tmp_path / "cut", "discriminator"))


def test_save_load_round_trip_gives_the_same_outputs(tmp_path: Path, tiny_cfg: Config) -> None:
    from pix2pix.networks import make_generator

    torch.manual_seed(1)
    g = make_generator(tiny_cfg.model)
    g(torch.randn(4, 3, 32, 32))  # move BatchNorm running statistics off their defaults
    save_checkpoint(tmp_path / "run" / "checkpoints" / "last", config=tiny_cfg, networks={"generator": g})
    pipe = Pix2Pix.from_pretrained(tmp_path / "run")
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    g.eval()
    with torch.no_grad():
        torch.testing.assert_close(pipe(x), g(x), atol=0, rtol=0)


def test_an_existing_run_is_not_overwritten(tmp_path: Path, tiny_cfg: Config) -> None:
    train(tiny_cfg, tmp_path / "run", progress=False)
    with pytest.raises(ValueError, match="already holds a run"):
        train(tiny_cfg, tmp_path / "run", progress=False)


def test_run_folder_without_weights(tmp_path: Path, tiny_cfg: Config) -> None:
    with pytest.raises(FileNotFoundError, match="run folder not found"):
        Pix2Pix.from_pretrained(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no checkpoint 'last'"):
        Pix2Pix.from_pretrained(tmp_path / "empty")
    train(tiny_cfg, tmp_path / "run", progress=False)
    (tmp_path / "run" / "checkpoints" / "last" / "generator.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="generator.safetensors is missing"):
        Pix2Pix.from_pretrained(tmp_path / "run")


def test_corrupt_weights_are_named(tmp_path: Path, tiny_cfg: Config) -> None:
    train(tiny_cfg, tmp_path / "run", progress=False)
    (tmp_path / "run" / "checkpoints" / "last" / "generator.safetensors").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="generator.safetensors: unreadable weights"):
        Pix2Pix.from_pretrained(tmp_path / "run")


def test_interrupted_save_leaves_the_previous_checkpoint(tmp_path: Path, tiny_cfg: Config, monkeypatch) -> None:
    train(tiny_cfg, tmp_path / "run", progress=False)
    before = weights(tmp_path / "run")

    def explode(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", explode)
    from pix2pix.networks import make_generator

    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(
            tmp_path / "run" / "checkpoints" / "last",
            config=tiny_cfg,
            networks={"generator": make_generator(tiny_cfg.model)},
            training_state={"step": 99},
        )
    assert_same_weights(before, weights(tmp_path / "run"), atol=0)
    leftovers = [p.name for p in (tmp_path / "run" / "checkpoints").iterdir()]
    assert leftovers == ["last"]
    assert checkpoint_dir(tmp_path / "run").name == "last"


def test_batch_larger_than_dataset(tmp_path: Path, tiny_data: Path) -> None:
    with pytest.raises(ValueError, match="batch_size 500 is larger than the .* training images"):
        train(tiny_config(tiny_data, batch_size=500), tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.parametrize("gan_mode", ["lsgan", "hinge", "wgan-gp"])
@pytest.mark.parametrize("norm", ["instance"])
def test_other_gan_modes_train(tmp_path: Path, tiny_data: Path, gan_mode: str, norm: str) -> None:
    cfg = tiny_config(tiny_data, gan_mode=gan_mode, norm=norm, max_steps=2, discriminator="pixel")
    train(cfg, tmp_path / "run", progress=False)
    log = [r for r in map(json.loads, (tmp_path / "run" / "log.jsonl").read_text().splitlines()) if "G_L1" in r]
    assert all(v == v for v in log[-1].values())  # no NaN
    assert ("D_gp" in log[-1]) == (gan_mode == "wgan-gp")


def test_linear_schedule_constant_then_to_zero() -> None:
    f = lr_lambda("linear", total_steps=100, constant_fraction=0.5)
    assert [f(0), f(49), f(50), f(75), f(99)] == [1.0, 1.0, 1.0, 0.5, pytest.approx(0.02)]
    c = lr_lambda("cosine", total_steps=100, constant_fraction=0.5)
    assert c(50) == 1.0 and c(75) == pytest.approx(0.5) and c(100) == pytest.approx(0.0)
    s = lr_lambda("step", total_steps=90, constant_fraction=0.0)
    assert [s(0), s(30), s(60)] == [1.0, pytest.approx(0.1), pytest.approx(0.01)]
