from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pix2pix.config import Config
from pix2pix.inference import Pix2Pix, pad_to_multiple, translate_paths
from pix2pix.networks import make_generator

from .conftest import tiny_config


@pytest.fixture
def pipe(tiny_data: Path) -> Pix2Pix:
    cfg = tiny_config(tiny_data)
    torch.manual_seed(0)
    return Pix2Pix(make_generator(cfg.model), cfg)


def test_pad_to_multiple_replicates_and_reports_size() -> None:
    x = torch.arange(6.0).reshape(1, 1, 2, 3)
    y, (h, w) = pad_to_multiple(x, 4)
    assert y.shape == (1, 1, 4, 4) and (h, w) == (2, 3)
    assert torch.equal(y[..., :2, :3], x) and y[0, 0, 3, 3] == x[0, 0, 1, 2]


@pytest.mark.parametrize("size", [(32, 32), (45, 70), (33, 17)])
def test_any_input_size_comes_back_at_its_size(pipe: Pix2Pix, size: tuple[int, int]) -> None:
    img = Image.new("RGB", size, (255, 255, 255))
    out = pipe(img)
    assert isinstance(out, Image.Image) and out.size == size


def test_padding_does_not_change_an_image_that_fits(pipe: Pix2Pix) -> None:
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        direct = pipe.generator.eval()(x)
    torch.testing.assert_close(pipe(x), direct)


def test_input_kinds_round_trip(pipe: Pix2Pix) -> None:
    arr = np.full((32, 40, 3), 255, dtype=np.uint8)
    out = pipe(arr)
    assert isinstance(out, np.ndarray) and out.shape == (32, 40, 3) and out.dtype == np.uint8
    t = torch.zeros(3, 32, 32)
    assert pipe(t).shape == (3, 32, 32)
    assert pipe(torch.zeros(5, 3, 32, 32), batch_size=2).shape == (5, 3, 32, 32)
    outs = pipe([Image.new("RGB", (32, 32)), Image.new("L", (64, 32)), Image.new("RGBA", (32, 32))])
    assert [o.size for o in outs] == [(32, 32), (64, 32), (32, 32)]
    # The same image alone or in a batch gives the same result (eval mode, no batch statistics).
    single = np.asarray(pipe(Image.new("RGB", (32, 32), (10, 200, 30))))
    batched = np.asarray(pipe([Image.new("RGB", (32, 32), (10, 200, 30)), Image.new("RGB", (32, 32))])[0])
    assert np.abs(single.astype(int) - batched.astype(int)).max() <= 1


def test_size_resizes_only_when_asked(pipe: Pix2Pix) -> None:
    assert pipe(Image.new("RGB", (50, 30)), size=64).size == (64, 64)


def test_dropout_switch_adds_noise(pipe: Pix2Pix) -> None:
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    assert torch.equal(pipe(x), pipe(x))
    torch.manual_seed(0)
    a = pipe(x, dropout=True)
    b = pipe(x, dropout=True)
    assert not torch.equal(a, b)


def test_bad_inputs(pipe: Pix2Pix, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot translate a dict: expected an image file's path, a PIL image"):
        pipe({"not": "an image"})
    with pytest.raises(FileNotFoundError, match="image not found: no_such_sketch.png"):
        pipe("no_such_sketch.png")  # a str is a path
    with pytest.raises(ValueError, match=r"expected a \(B, 3, H, W\) tensor"):
        pipe.translate_tensor(torch.zeros(1, 4, 32, 32))
    with pytest.raises(FileNotFoundError, match="input not found"):
        translate_paths(pipe, [tmp_path / "nothing.png"], tmp_path / "out")


def test_translate_paths_files_and_folders(pipe: Pix2Pix, tmp_path: Path) -> None:
    (tmp_path / "in" / "sub").mkdir(parents=True)
    Image.new("RGB", (32, 32)).save(tmp_path / "in" / "a.jpg")
    Image.new("RGB", (40, 24)).save(tmp_path / "in" / "sub" / "b.png")
    Image.new("RGB", (32, 32)).save(tmp_path / "single.webp")
    written = translate_paths(pipe, [tmp_path / "in", tmp_path / "single.webp"], tmp_path / "out", batch_size=2).written
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in written) == ["a.png", "single.png", "sub/b.png"]
    with Image.open(tmp_path / "out" / "sub" / "b.png") as img:
        assert img.size == (40, 24)


def test_from_pretrained_config_rebuilds_the_model(tmp_path: Path, tiny_cfg: Config) -> None:
    from pix2pix.run_folder import save_checkpoint

    torch.manual_seed(0)
    save_checkpoint(
        tmp_path / "r" / "checkpoints" / "last", config=tiny_cfg, networks={"generator": make_generator(tiny_cfg.model)}
    )
    p = Pix2Pix.from_pretrained(tmp_path / "r")
    assert p.config == tiny_cfg and p.size_multiple == 32
