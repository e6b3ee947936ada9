"""Issue 38: a hints step's input side as batched torch on the step's device. Regions labelled once per
image and cropped with it; the fill and the simulation with fixed shapes and nothing read back from the
device; the same regions and fill as the SciPy path they replace (benchmarks/legacy_hints.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

import pix2pix.hints.step as step_module
from pix2pix import seeding
from pix2pix.data.paired import PairedDataset
from pix2pix.data.transforms import random_crop_flip
from pix2pix.hints import (
    FILLED,
    HintRecipe,
    Regions,
    eval_hints,
    fill_regions,
    label_images,
    region_map,
    training_hints,
)
from pix2pix.images import from_uint8
from pix2pix.training.loop import train

from .conftest import make_shapes, tiny_config

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import legacy_hints  # noqa: E402  (de4f1a5's numpy path, the reference the new fill is held to)


class Model:
    """The three ModelConfig fields the hints of a step read."""

    def __init__(self, fill: bool = True, blend: bool = True, regions: str = "closed") -> None:
        self.hint_fill, self.hint_blend, self.hint_regions = fill, blend, regions


@pytest.fixture(scope="module")
def real(tiny_data: Path) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    ds = PairedDataset(tiny_data, "train", load_size=32)
    a, b = ds.batch(torch.arange(len(ds)))
    return a, b, [ds.name(i) for i in range(len(ds))]


# --- nothing read back from the device -------------------------------------------------------


def meta_regions(b: int, size: int) -> Regions:
    """Cached regions as the crop hands them to a step (float labels, bool worth), as meta tensors."""
    return Regions(
        torch.empty(b, size, size, device="meta"), torch.empty(b, size, size, dtype=torch.bool, device="meta")
    )


@pytest.mark.parametrize("size", [64, 256])
@pytest.mark.parametrize("model", [Model(), Model(blend=False), Model(regions="open"), Model(fill=False)])
@pytest.mark.parametrize("recipe", [HintRecipe(), HintRecipe(strokes=0.5, blobs=0.25)], ids=["dots", "shapes"])
def test_the_steps_hints_run_on_meta_tensors_so_they_never_wait_on_the_device(
    size: int, model: Model, recipe: HintRecipe
) -> None:
    """Meta tensors have shapes and no data: an `.item()`, a `.cpu()` read, a `.tolist()`, a boolean mask
    or any shape that depends on the data fails on them. The whole of a step's hints (jitter, simulation,
    painting, fill) runs on them, at stride 1 (64 px) and on a grid (256 px)."""
    b = 4
    a = torch.empty(b, 3, size, size, device="meta")
    target = torch.empty(b, 3, size, size, device="meta")
    regions = Regions(
        torch.empty(b, size, size, device="meta"), torch.empty(b, size, size, dtype=torch.bool, device="meta")
    )
    seeds = seeding.hint_seeds(0, 3, 0, b, device="meta")
    real_b, hints = training_hints(a, target, seeds, recipe=recipe, model=model, jitter=0.5, regions=regions)
    assert hints.shape == (b, 4, size, size) and hints.device.type == "meta" and real_b.shape == target.shape


def test_the_meta_check_catches_a_host_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check above can fail: the same step with a `.item()` added to its fill does."""
    real_fill = step_module.paint_fields

    def reads_back(regions, free, sources, **kw):  # type: ignore[no-untyped-def]
        sources.mass.sum().item()
        return real_fill(regions, free, sources, **kw)

    monkeypatch.setattr(step_module, "paint_fields", reads_back)
    a = torch.empty(2, 3, 64, 64, device="meta")
    regions = meta_regions(2, 64)
    with pytest.raises((RuntimeError, NotImplementedError)):
        training_hints(
            a, a, seeding.hint_seeds(0, 0, 0, 2, device="meta"), recipe=HintRecipe(), model=Model(), regions=regions
        )


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_the_steps_hints_never_synchronise_with_the_gpu(real: tuple) -> None:
    a_u8, b_u8, _ = real
    cached = label_images(a_u8, b_u8, "closed")
    a, b = from_uint8(a_u8.cuda()), from_uint8(b_u8.cuda())
    seeds = seeding.hint_seeds(0, 1, 0, len(a), device="cuda")
    on_gpu = Regions(*(t.cuda() for t in cached))
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        _, hints = training_hints(a, b, seeds, recipe=HintRecipe(), model=Model(), jitter=0.5, regions=on_gpu)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    cpu = training_hints(a.cpu(), b.cpu(), seeds.cpu(), recipe=HintRecipe(), model=Model(), jitter=0.5, regions=cached)
    torch.testing.assert_close(hints.cpu(), cpu[1], atol=1e-5, rtol=0)  # the same draws on both devices


# --- the same regions and fill as the SciPy path ---------------------------------------------


def drawings() -> torch.Tensor:
    """Line art the test draws (3, 3, 48, 48) in [-1, 1]: nested boxes, a box with a 2 px gap, a U inside a box."""
    art = torch.ones(3, 3, 48, 48)
    art[0, :, 4:44, 4:44] = -1
    art[0, :, 6:42, 6:42] = 1
    art[0, :, 16:30, 16:30] = -1
    art[0, :, 18:28, 18:28] = 1
    art[1, :, 10, 10:38] = art[1, :, 37, 10:38] = art[1, :, 10:38, 10] = art[1, :, 10:38, 37] = -1
    art[1, :, 10, 22:24] = 1
    art[2, :, 8:40, 8:11] = art[2, :, 8:40, 37:40] = art[2, :, 8:11, 8:40] = art[2, :, 37:40, 8:40] = -1  # a box
    art[2, :, 8:34, 20:28] = -1  # a thick stroke down from its top: inside, a U of two arms joined at the bottom
    return art


@pytest.mark.parametrize("mode", ["closed", "open"])
@pytest.mark.parametrize("blend", [True, False], ids=["blend", "nearest"])
def test_the_fill_paints_what_the_scipy_fill_painted(real: tuple, mode: str, blend: bool) -> None:
    """On the OpenMoji pairs and on drawings, with the evaluation's 10 hints: the same pixels painted as
    de4f1a5's per-pixel SciPy fill (the same regions: SciPy still labels them, once); the blend in the
    same colours (at these sizes every hint pixel is a source of its own); the nearest fill in the colour of
    the nearest hint pixel of the pixel's own region (de4f1a5 took the nearest anywhere and, where that
    lay across a line, the region's mean: a change, the same as the blend's rule)."""
    a_u8, b_u8, names = real
    art = drawings()
    for a, b, nm in (
        (from_uint8(a_u8), from_uint8(b_u8), names),
        (art, torch.rand(3, 3, 48, 48, generator=torch.Generator().manual_seed(0)) * 2 - 1, ["d0", "d1", "d2"]),
    ):
        hints = eval_hints(a, b, nm, 10, worth=torch.ones(len(a), *a.shape[-2:], dtype=torch.bool))
        new = fill_regions(hints, a, blend=blend, mode=mode)
        old = legacy_hints.fill_regions(hints, a, blend=blend, mode=mode)
        painted = new[:, 3] == FILLED
        assert torch.equal(painted, old[:, 3] == FILLED) and painted.any()
        if blend:
            torch.testing.assert_close(new, old, atol=1e-5, rtol=0)
        else:
            assert_nearest_in_region(new, hints, region_map(a, mode))


def assert_nearest_in_region(filled: torch.Tensor, hints: torch.Tensor, regions: torch.Tensor) -> None:
    """Every painted pixel holds the colour of a hint pixel of its own region at the least distance
    (brute force over all pairs)."""
    for i in range(len(filled)):
        src = ((hints[i, 3] == 1) & (regions[i] > 0)).nonzero()
        dst = (filled[i, 3] == FILLED).nonzero()
        if not len(dst):
            continue
        d2 = torch.cdist(dst.float(), src.float()) ** 2
        d2[regions[i][tuple(dst.T)][:, None] != regions[i][tuple(src.T)][None, :]] = torch.inf
        nearest = (d2 - d2.min(1, keepdim=True).values).abs() < 1e-3  # (P, S): the nearest, ties included
        got = filled[i, :3][:, dst[:, 0], dst[:, 1]].T  # (P, C)
        colours = hints[i, :3][:, src[:, 0], src[:, 1]].T  # (S, C)
        match = ((got[:, None] - colours[None]).abs().amax(2) < 1e-5) & nearest
        assert match.any(1).all(), f"image {i}: a painted pixel is not its nearest in-region hint's colour"


def test_the_nearest_fill_keeps_exact_keys_where_int32_would_overflow() -> None:
    """The nearest fill ranks sources by (squared distance in px², slot) packed in one integer key: int32
    while every key fits, int64 above that (here 200 slots on a 1,700 px image). Either way each cell takes
    its nearest source's colour (brute force over the grid's cell centres) and unused slots are ignored."""
    from pix2pix.hints.fill import Sources, _centres, field_stride, paint_fields

    size, k = 1700, 200
    gen = torch.Generator().manual_seed(3)
    mass = torch.zeros(1, k)
    mass[0, :5] = 1  # five sources used, 195 empty slots
    yx = torch.rand(1, k, 2, generator=gen) * (size - 1)
    colour = torch.rand(1, k, 3, generator=gen) * 2 - 1
    sources = Sources(yx, colour, mass, torch.ones(1, k, dtype=torch.long))
    regions = torch.ones(1, size, size, dtype=torch.int32)
    out = paint_fields(regions, torch.ones(1, size, size, dtype=torch.bool), sources, blend=False, channels=3)
    stride = field_stride(size, size)
    ys, xs = _centres(size, size, stride, torch.device("cpu"))
    for gy, gx in ((0, 0), (10, 30), (32, 32), (31, 7)):  # a grid of 33 x 33 cells
        d2 = (ys[gy] - yx[0, :5, 0]) ** 2 + (xs[gx] - yx[0, :5, 1]) ** 2
        expected = colour[0, int(d2.round().argmin())]
        torch.testing.assert_close(out[0, :3, gy * stride, gx * stride], expected)
    assert torch.all(out[0, 3] == FILLED)


def test_regions_are_labelled_once_on_the_whole_image_and_cropped_with_it() -> None:
    """The U's two arms are one region of the whole picture. A crop that cuts off the bottom that joins
    them keeps them one region (its label came from the whole image), and a region the crop pushes
    against its border is still not the page: a hint in the left arm paints the right one too, where a
    fill labelling the crop on its own (as de4f1a5 did) paints neither."""
    art = drawings()[2:]
    cached = label_images(((art + 1) * 127.5).round().byte(), torch.full_like(art, 255).byte(), "closed")
    labels = cached.labels
    assert labels[0, 20, 15] == labels[0, 20, 32] > 0  # the arms, joined along the bottom
    g = torch.Generator().manual_seed(0)
    a_u8 = ((art + 1) * 127.5).round().byte()
    crop_a, _, crop_r, _ = random_crop_flip(a_u8, a_u8, crop_size=32, flip=False, generator=g, carry=cached)
    # The carried map is cut at A's window (drawn again here from the same generator).
    g = torch.Generator().manual_seed(0)
    top = int(torch.randint(0, 17, (1,), generator=g))
    left = int(torch.randint(0, 17, (1,), generator=g))
    assert torch.equal(crop_r[0], labels[0, top : top + 32, left : left + 32])
    assert torch.equal(crop_a[0], a_u8[0, :, top : top + 32, left : left + 32])
    window = (slice(0, 24), slice(0, 48))  # the top 24 rows: the arms without the bottom that joins them
    line = art[:, :, window[0], window[1]]
    region = labels[:, window[0], window[1]]
    hints = torch.zeros(1, 4, 24, 48)
    hints[0, :3, 15, 15] = torch.tensor([0.9, -0.8, -0.8])
    hints[0, 3, 15, 15] = 1
    filled = fill_regions(hints, line, regions=region)
    assert filled[0, 3, 15, 32] == FILLED and filled[0, 0, 15, 32] > 0.8  # the right arm, through the whole picture
    alone = fill_regions(hints, line)  # labelled on the crop: both arms touch its border, so neither is painted
    assert not (alone[0, 3] == FILLED).any()


def test_cached_regions_give_the_hints_a_step_would_label_itself(real: tuple) -> None:
    a_u8, b_u8, _ = real
    a, b = from_uint8(a_u8), from_uint8(b_u8)
    seeds = seeding.hint_seeds(5, 7, 0, len(a))
    for model in (Model(), Model(blend=False), Model(regions="open")):
        regions = label_images(a_u8, b_u8, model.hint_regions)
        cached = training_hints(a, b, seeds, recipe=HintRecipe(), model=model, jitter=0.5, regions=regions)
        labelled = training_hints(a, b, seeds, recipe=HintRecipe(), model=model, jitter=0.5)
        assert torch.equal(cached[1], labelled[1]) and torch.equal(cached[0], labelled[0])
    assert regions.labels.dtype == torch.float32 and regions.worth.dtype == torch.bool
    assert torch.equal(regions.labels, region_map(a, "open").float())


def test_a_steps_hints_are_a_function_of_seed_step_and_index(real: tuple) -> None:
    """The same (seed, step) draws the same hints in two runs (and so after a resume); another step
    draws others; a rank holding images 4..7 of the global batch draws exactly their hints."""
    a_u8, b_u8, _ = real
    a, b = from_uint8(a_u8), from_uint8(b_u8)
    cached = label_images(a_u8, b_u8, "closed")
    recipe = HintRecipe(p_none=0.0)

    def hints(step: int, first: int, sl: slice) -> torch.Tensor:
        seeds = seeding.hint_seeds(3, step, first, len(a[sl]))
        return training_hints(
            a[sl], b[sl], seeds, recipe=recipe, model=Model(), jitter=0.5, regions=Regions(*(t[sl] for t in cached))
        )[1]

    whole = hints(9, 0, slice(None))
    assert torch.equal(whole, hints(9, 0, slice(None)))
    assert not torch.equal(whole, hints(10, 0, slice(None)))
    assert torch.equal(hints(9, 4, slice(4, 8)), whole[4:8])
    assert (whole[:, 3] == FILLED).any() and (whole[:, 3] == 1).any()


# --- the training loop labels once --------------------------------------------------------------


def test_training_labels_each_image_once_and_not_every_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = make_shapes(tmp_path / "shapes", 12)
    calls: list[int] = []
    real_map = step_module.region_map

    def counting(line_art, mode="closed"):  # type: ignore[no-untyped-def]
        calls.append(len(line_art))
        return real_map(line_art, mode)

    monkeypatch.setattr(step_module, "region_map", counting)
    cfg = tiny_config(
        data, hints=True, hint_fill=True, hint_blend=True, max_steps=4, load_size=36, val_every=0, sample_every=0
    )
    train(cfg, tmp_path / "run", progress=False)
    assert calls == [12]  # the 12 training images, once, before the first step


def test_the_cache_size_counts_and_data_on_device_is_checked(tmp_path: Path) -> None:
    from pix2pix.config import Config, apply_overrides

    data = make_shapes(tmp_path / "shapes", 4)
    cached = PairedDataset(data, "train", load_size=32)
    assert cached.nbytes == 2 * 4 * 3 * 32 * 32
    with pytest.raises(ValueError, match="unknown data_on_device 'gpu'; valid: auto, yes, no"):
        apply_overrides(Config(), {"data_on_device": "gpu"})
