import json
from pathlib import Path

import pytest

from pix2pix.config import Config, apply_overrides, read_config_file


def test_defaults_are_the_papers() -> None:
    c = Config()
    assert (c.model.generator, c.model.discriminator, c.model.ngf, c.model.ndf, c.model.n_layers_d) == (
        "unet_256",
        "patch",
        64,
        64,
        3,
    )
    assert (c.model.norm, c.model.dropout, c.model.init_type, c.model.init_gain) == ("batch", True, "normal", 0.02)
    assert (c.data.load_size, c.data.crop_size, c.data.flip) == (286, 256, True)
    t = c.train
    assert (t.lr, t.beta1, t.beta2, t.batch_size, t.lambda_l1, t.gan_mode) == (2e-4, 0.5, 0.999, 1, 100.0, "vanilla")
    assert (t.n_epochs, t.n_epochs_decay, t.lr_policy) == (100, 100, "linear")


def test_config_is_frozen() -> None:
    with pytest.raises(AttributeError):
        Config().train.lr = 1.0  # type: ignore[misc]


def test_overrides_flat_dotted_nested_and_coerced() -> None:
    c = apply_overrides(Config(), {"ngf": "32", "train.lr": "1e-3", "data": {"flip": "false"}})
    assert c.model.ngf == 32 and c.train.lr == 1e-3 and c.data.flip is False


def test_yaml_file_plus_overrides(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(
        "model:\n  generator: unet_64\n  ngf: 16\ndata:\n  crop_size: 64\n  load_size: 72\n"
    )
    c = apply_overrides(Config(), read_config_file(tmp_path / "c.yaml"))
    c = apply_overrides(c, {"ngf": 8})
    assert (c.model.generator, c.model.ngf, c.data.crop_size) == ("unet_64", 8, 64)


def test_save_load_round_trip(tmp_path: Path) -> None:
    c = apply_overrides(Config(), {"ngf": 8, "gan_mode": "hinge", "root": "/data/x"})
    c.save(tmp_path / "config.json")
    assert Config.load(tmp_path / "config.json") == c
    assert json.loads((tmp_path / "config.json").read_text())["train"]["gan_mode"] == "hinge"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"ngff": 3}, "unknown config key 'ngff'"),
        ({"model.lr": 3}, "unknown config key 'model.lr'"),
        ({"generator": "unet_7"}, "unknown generator 'unet_7'"),
        ({"norm": "layer"}, "unknown norm 'layer'"),
        ({"gan_mode": "wgan"}, "unknown gan_mode 'wgan'"),
        ({"direction": "AtoC"}, "unknown direction 'AtoC'"),
        ({"batch_size": 0}, "batch_size must be at least 1, got 0"),
        ({"ngf": "wide"}, "ngf must be an integer, got 'wide'"),
        ({"flip": "maybe"}, "flip must be true or false"),
        ({"crop_size": 300}, "crop_size 300 is larger than load_size 286"),
        (
            {"generator": "unet_256", "crop_size": 200},
            "crop_size 200 does not fit generator 'unet_256'.*multiple of 256",
        ),
        ({"lr": -1}, "lr must be a positive number"),
        ({"lambda_ssim": -2}, "lambda_ssim must be a number >= 0, got -2"),
        ({"lambda_l1": "nan"}, "lambda_l1 must be a number >= 0, got nan"),
    ],
)
def test_bad_values_name_the_value(overrides: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        apply_overrides(Config(), overrides)


def test_bad_config_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="config file not found"):
        read_config_file(tmp_path / "none.yaml")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="bad.json: not a valid config file"):
        read_config_file(tmp_path / "bad.json")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ValueError, match="must hold a mapping"):
        read_config_file(tmp_path / "list.yaml")
