from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pix2pix.data.paired import PairedDataset
from pix2pix.data.transforms import random_crop_flip
from pix2pix.images import from_uint8, load_image


def write_aligned(folder: Path, name: str, a_color: tuple, b_color: tuple, size: int = 16) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    img = Image.new("RGB", (2 * size, size), a_color)
    img.paste(Image.new("RGB", (size, size), b_color), (size, 0))
    path = folder / name
    img.save(path)
    return path


# --- image modes -------------------------------------------------------------------------


def test_greyscale_loads_as_rgb(tmp_path: Path) -> None:
    Image.new("L", (4, 4), 77).save(tmp_path / "g.png")
    img = load_image(tmp_path / "g.png")
    assert img.mode == "RGB" and img.getpixel((0, 0)) == (77, 77, 77)


def test_rgba_composites_on_white(tmp_path: Path) -> None:
    im = Image.new("RGBA", (4, 4), (255, 0, 0, 0))  # fully transparent red
    im.putpixel((0, 0), (0, 0, 255, 255))
    im.putpixel((1, 0), (0, 0, 0, 128))
    im.save(tmp_path / "a.png")
    img = load_image(tmp_path / "a.png")
    assert img.getpixel((3, 3)) == (255, 255, 255)
    assert img.getpixel((0, 0)) == (0, 0, 255)
    assert all(abs(c - 127) <= 1 for c in img.getpixel((1, 0)))


def test_palette_with_transparency(tmp_path: Path) -> None:
    im = Image.new("P", (4, 4), 0)
    im.putpalette([10, 20, 30, 200, 100, 50] + [0] * 762)
    im.putpixel((1, 1), 1)
    im.info["transparency"] = 0
    im.save(tmp_path / "p.png", transparency=0)
    img = load_image(tmp_path / "p.png")
    assert img.getpixel((0, 0)) == (255, 255, 255)
    assert img.getpixel((1, 1)) == (200, 100, 50)


def test_16bit_greyscale_is_scaled_not_clipped(tmp_path: Path) -> None:
    arr = np.array([[0, 65535], [32768, 1000]], dtype=np.uint16)
    Image.fromarray(arr).save(tmp_path / "d.png")
    img = load_image(tmp_path / "d.png")
    px = np.asarray(img)[:, :, 0]
    assert px[0, 0] == 0 and px[0, 1] == 255 and px[1, 0] == 128 and px[1, 1] == 4


# --- bad input: each names the file ------------------------------------------------------


def test_missing_image(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.png"):
        load_image(tmp_path / "nope.png")


def test_zero_byte_image(tmp_path: Path) -> None:
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty.png: empty file \(0 bytes\)"):
        load_image(tmp_path / "empty.png")


def test_corrupt_image(tmp_path: Path) -> None:
    (tmp_path / "bad.png").write_bytes(b"this is not a png at all")
    with pytest.raises(ValueError, match="bad.png: not a readable image"):
        load_image(tmp_path / "bad.png")


def test_truncated_image(tmp_path: Path) -> None:
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "t.png")
    data = (tmp_path / "t.png").read_bytes()
    (tmp_path / "t.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="t.png: corrupt or truncated"):
        load_image(tmp_path / "t.png")


def test_non_image_file_in_data_folder(tmp_path: Path) -> None:
    write_aligned(tmp_path / "train", "x.png", (0, 0, 0), (255, 0, 0))
    (tmp_path / "train" / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match="notes.txt: not an image file"):
        PairedDataset(tmp_path, "train", load_size=16)


def test_hidden_files_are_ignored(tmp_path: Path) -> None:
    write_aligned(tmp_path / "train", "x.png", (0, 0, 0), (255, 0, 0))
    (tmp_path / "train" / ".DS_Store").write_bytes(b"\0")
    assert len(PairedDataset(tmp_path, "train", load_size=16)) == 1


def test_odd_width_aligned_image(tmp_path: Path) -> None:
    (tmp_path / "train").mkdir()
    Image.new("RGB", (33, 16)).save(tmp_path / "train" / "odd.png")
    with pytest.raises(ValueError, match="odd.png: aligned image has odd width 33"):
        PairedDataset(tmp_path, "train", load_size=16)


def test_a_and_b_of_different_sizes(tmp_path: Path) -> None:
    for sub, size in (("A", (16, 16)), ("B", (20, 16))):
        (tmp_path / "train" / sub).mkdir(parents=True)
        Image.new("RGB", size).save(tmp_path / "train" / sub / "x.png")
    with pytest.raises(ValueError, match=r"A/x.png is 16x16 but .*B/x.png is 20x16"):
        PairedDataset(tmp_path, "train", mode="folders", load_size=16)


def test_unmatched_files_in_folders_mode(tmp_path: Path) -> None:
    for sub in ("A", "B"):
        (tmp_path / "train" / sub).mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(tmp_path / "train" / sub / "both.png")
    Image.new("RGB", (8, 8)).save(tmp_path / "train" / "A" / "lonely.png")
    with pytest.raises(ValueError, match="unmatched files.*lonely.png"):
        PairedDataset(tmp_path, "train", mode="folders", load_size=8)


def test_empty_split(tmp_path: Path) -> None:
    (tmp_path / "val").mkdir()
    with pytest.raises(ValueError, match="the 'val' split is empty"):
        PairedDataset(tmp_path, "val")


def test_missing_split_and_missing_root(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="split 'test' not found"):
        PairedDataset(tmp_path, "test")
    with pytest.raises(FileNotFoundError, match="dataset folder not found"):
        PairedDataset(tmp_path / "nothing", "train")


def test_corrupt_file_inside_a_dataset_is_named(tmp_path: Path) -> None:
    write_aligned(tmp_path / "train", "good.png", (0, 0, 0), (255, 0, 0))
    (tmp_path / "train" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(ValueError, match="broken.png"):
        PairedDataset(tmp_path, "train", load_size=16)


# --- pairing, direction, transforms ------------------------------------------------------


@pytest.mark.parametrize("cache", [True, False])
def test_aligned_direction(tmp_path: Path, cache: bool) -> None:
    write_aligned(tmp_path / "train", "x.png", (0, 0, 0), (255, 0, 0))
    a, b = PairedDataset(tmp_path, "train", load_size=8, cache=cache)[0]
    assert a.shape == (3, 8, 8) and a.dtype == torch.uint8
    assert a.max() == 0 and b[0].min() == 255
    a2, b2 = PairedDataset(tmp_path, "train", load_size=8, direction="BtoA", cache=cache)[0]
    assert torch.equal(a2, b) and torch.equal(b2, a)


def test_folders_mode_matches_by_relative_path(tmp_path: Path) -> None:
    for sub, color in (("A", (10, 10, 10)), ("B", (200, 0, 0))):
        (tmp_path / "test" / sub / "nested").mkdir(parents=True)
        Image.new("RGB", (8, 8), color).save(tmp_path / "test" / sub / "nested" / "x.png")
    (tmp_path / "test" / "B" / "nested" / "x.png").rename(tmp_path / "test" / "B" / "nested" / "x.jpg")
    Image.new("RGB", (8, 8), (200, 0, 0)).save(tmp_path / "test" / "B" / "nested" / "x.jpg", format="PNG")
    ds = PairedDataset(tmp_path, "test", mode="folders", load_size=8)
    assert ds.name(0) == "nested/x"
    a, b = ds[0]
    assert a[0, 0, 0] == 10 and b[0, 0, 0] == 200


def test_crop_and_flip_are_identical_for_a_and_b() -> None:
    x = torch.arange(2 * 3 * 10 * 10, dtype=torch.int64).reshape(2, 3, 10, 10).to(torch.uint8)
    g = torch.Generator().manual_seed(0)
    a, b = random_crop_flip(x, x.clone(), crop_size=6, flip=True, generator=g)
    assert a.shape == (2, 3, 6, 6) and torch.equal(a, b)
    # The same generator seed gives the same crops.
    a2, _ = random_crop_flip(x, x.clone(), crop_size=6, flip=True, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, a2)


def test_a_crop_by_rows_of_the_cache_is_the_crop_of_the_gathered_batch() -> None:
    """Training crops a cached dataset straight from the cache by the batch's rows, A and B into floats
    (the crop is the conversion), the hint regions with them: the same values as gathering the batch,
    cropping it and converting, bit for bit, flips and an identity crop included."""
    g = torch.Generator().manual_seed(3)
    cache_a = torch.randint(0, 256, (9, 3, 12, 12), dtype=torch.uint8, generator=g)
    cache_b = torch.randint(0, 256, (9, 3, 12, 12), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, 50, (9, 12, 12), generator=g).float()
    worth = torch.rand(9, 12, 12, generator=g) < 0.5
    rows = [7, 2, 2, 5, 0, 8]
    for crop in (8, 12):
        kw = {"crop_size": crop, "flip": True}
        index = torch.tensor(rows)
        gathered = [t.index_select(0, index) for t in (cache_a, cache_b, labels, worth)]
        want = random_crop_flip(*gathered[:2], carry=gathered[2:], generator=torch.Generator().manual_seed(0), **kw)
        got = random_crop_flip(
            cache_a,
            cache_b,
            carry=(labels, worth),
            rows=rows,
            dtype=torch.float32,
            generator=torch.Generator().manual_seed(0),
            **kw,
        )
        assert got[0].dtype == torch.float32 and got[3].dtype == torch.bool
        assert torch.equal(got[0], want[0].float()) and torch.equal(got[1], want[1].float())  # still 0..255
        assert torch.equal(from_uint8(got[0].clone()), from_uint8(want[0]))  # then scaled in place, exactly
        assert torch.equal(got[2], want[2]) and torch.equal(got[3], want[3])
    flipped = random_crop_flip(cache_a, cache_b, rows=rows, crop_size=12, flip=True, generator=torch.Generator())
    assert any(
        not torch.equal(x, cache_a[r]) for x, r in zip(flipped[0], rows)
    )  # some flipped: not the rows as they are


def test_flip_off_never_flips() -> None:
    x = torch.arange(8, dtype=torch.uint8).reshape(1, 1, 1, 8).expand(32, 1, 1, 8).contiguous()
    out, _ = random_crop_flip(
        x.expand(32, 1, 8, 8).contiguous(),
        x.expand(32, 1, 8, 8).contiguous(),
        crop_size=8,
        flip=False,
        generator=torch.Generator().manual_seed(1),
    )
    assert torch.equal(out[:, :, :1], x)


def test_normalize_range() -> None:
    x = torch.tensor([0, 255], dtype=torch.uint8)
    assert from_uint8(x).tolist() == [-1.0, 1.0]
