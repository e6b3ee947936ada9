"""CycleGAN on the same engine: defaults, networks, image pool, unpaired data, resume, DDP, CLI."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from safetensors.torch import load_file

from pix2pix.cli import main
from pix2pix.config import Config, build_config
from pix2pix.data.datasets.openmoji import base_key, build_openmoji, domain_of
from pix2pix.data.layouts import dataset_for
from pix2pix.data.loader import iterate_batches
from pix2pix.data.paired import PairedDataset
from pix2pix.data.unpaired import UnpairedDataset
from pix2pix.inference import Pix2Pix
from pix2pix.methods import StepInfo, get_method
from pix2pix.methods.cyclegan import ImagePool
from pix2pix.training.loop import resume, train

from .conftest import assert_adam_close
from .test_distributed import config_file, torchrun

NETWORKS = ("generator", "generator_ba", "discriminator_b", "discriminator_a")


def tiny_cyclegan(root: Path | str, **overrides: object) -> Config:
    base = {
        "method": "cyclegan",
        "root": str(root),
        "generator": "resnet_6blocks",
        "ngf": 8,
        "ndf": 8,
        "n_layers_d": 2,
        "load_size": 36,
        "crop_size": 32,
        "batch_size": 2,
        "max_steps": 6,
        "n_epochs": 1,
        "n_epochs_decay": 1,
        "log_every": 2,
        "save_every": 100,
        "pool_size": 3,
        "amp": "off",
        "val_every": 0,
        "sample_every": 0,
        "tensorboard": False,
        "html": False,
    }
    return build_config({**base, **overrides})


@pytest.fixture(scope="session")
def unpaired_data(tmp_path_factory: pytest.TempPathFactory, svg_dir: Path) -> Path:
    """OpenMoji's unpaired task at 32 px: train/A line art and train/B colour from disjoint emojis."""
    out = tmp_path_factory.mktemp("openmoji_unpaired")
    build_openmoji(out, size=32, svg_dir=svg_dir, workers=1, progress=False, unpaired=True)
    return out


def weights(run: Path, name: str) -> dict[str, torch.Tensor]:
    return load_file(str(run / "checkpoints" / "last" / f"{name}.safetensors"))


def test_defaults_are_the_references() -> None:
    c = Config.for_method("cyclegan")
    m, t = c.model, c.train
    assert (m.method, m.generator, m.discriminator, m.n_layers_d, m.norm, m.dropout) == (
        "cyclegan",
        "resnet_9blocks",
        "patch",
        3,
        "instance",
        False,
    )
    assert (t.gan_mode, t.lambda_cycle_a, t.lambda_cycle_b, t.lambda_identity, t.pool_size) == (
        "lsgan",
        10,
        10,
        0.5,
        50,
    )
    assert (t.lr, t.beta1, t.beta2, t.batch_size, t.lr_policy, t.n_epochs, t.n_epochs_decay) == (
        2e-4,
        0.5,
        0.999,
        1,
        "linear",
        100,
        100,
    )
    assert c.data.dataset_mode == "unpaired" and (c.data.load_size, c.data.crop_size) == (286, 256)
    # The family's defaults sit under a file's values and options: --model cyclegan --norm batch works.
    assert build_config({"norm": "batch"}, {"method": "cyclegan"}).model.norm == "batch"
    with pytest.raises(ValueError, match="dataset_mode 'aligned' does not fit method 'cyclegan'"):
        build_config({"method": "cyclegan", "dataset_mode": "aligned"})
    with pytest.raises(ValueError, match="hints are a pix2pix feature"):
        build_config({"method": "cyclegan", "hints": True})
    with pytest.raises(ValueError, match="unknown method 'cyclegun'; valid: cyclegan, pix2pix"):
        build_config({"method": "cyclegun"})


def test_every_family_has_a_trainer_and_its_defaults_live_on_it() -> None:
    from pix2pix.methods import METHODS
    from pix2pix.networks import FAMILIES

    assert FAMILIES.names() == METHODS.names() == ["cyclegan", "pix2pix"]
    for name in METHODS.names():
        assert issubclass(get_method(name), FAMILIES.get(name))  # a trainer is its family's networks + a step
        assert Config.for_method(name).model.method == name
    assert Config.for_method("cyclegan").model.generator == FAMILIES.get("cyclegan").defaults["generator"]
    with pytest.raises(ValueError, match="unknown method 'pix2pixhd'; valid: cyclegan, pix2pix"):
        Config.for_method("pix2pixhd")


@pytest.mark.parametrize("gan_mode", ["lsgan", "vanilla", "hinge", "wgan-gp"])
def test_one_step_trains_all_four_networks(tiny_data: Path, gan_mode: str) -> None:
    cfg = tiny_cyclegan(tiny_data, gan_mode=gan_mode, dataset_mode="unpaired")
    torch.manual_seed(0)
    method = get_method("cyclegan")(cfg, device=torch.device("cpu"))
    assert tuple(method.networks) == NETWORKS
    assert method.networks["discriminator_b"].model[0].in_channels == 3  # unconditional: B images alone
    before = {k: {n: p.detach().clone() for n, p in net.named_parameters()} for k, net in method.networks.items()}
    a, b = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    losses = method.train_step(a, b, StepInfo(step=0, offset=0, global_batch=2))
    assert {"G_GAN_AB", "G_GAN_BA", "cycle_A", "cycle_B", "idt_A", "idt_B", "G", "D_A", "D_B", "D"} <= set(losses)
    assert all(torch.isfinite(v) for v in losses.values())
    for k, net in method.networks.items():
        # Every weight of every network got an update. (A bias may not: under hinge, D's last bias
        # has equal and opposite gradients from real and fake at the start.)
        moved = [not torch.equal(p, before[k][n]) for n, p in net.named_parameters() if n.endswith("weight")]
        assert moved and all(moved), k
    assert len(method.pools["a"].images) == len(method.pools["b"].images) == 2


def test_image_pool_fills_swaps_half_and_restores() -> None:
    pool = ImagePool(4)
    g = torch.Generator().manual_seed(0)
    first = torch.arange(4.0).view(4, 1, 1, 1)
    assert torch.equal(pool.query(first, g), first)  # filling: the new fakes come straight back
    assert len(pool.images) == 4
    returned_old = 0
    for step in range(200):
        new = torch.full((1, 1, 1, 1), 100.0 + step)
        out = pool.query(new, g)
        returned_old += int(out.item() != new.item())
        assert len(pool.images) == 4
    assert 70 < returned_old < 130  # about half the time an older fake instead of the new one
    # The state round-trips: a restored pool answers as the original does.
    clone = ImagePool(4)
    clone.load_state_dict(pool.state_dict(), torch.device("cpu"))
    x = torch.full((3, 1, 1, 1), -1.0)
    ga, gb = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
    assert torch.equal(pool.query(x, ga), clone.query(x, gb))
    assert torch.equal(ImagePool(0).query(x, ga), x)


def test_openmoji_unpaired_domains_are_disjoint(unpaired_data: Path) -> None:
    a = {p.stem for p in (unpaired_data / "train" / "A").glob("*.png")}
    b = {p.stem for p in (unpaired_data / "train" / "B").glob("*.png")}
    assert a and b and not ({base_key(s) for s in a} & {base_key(s) for s in b})
    assert all(domain_of(base_key(s)) == "A" for s in a) and all(domain_of(base_key(s)) == "B" for s in b)
    with Image.open(next((unpaired_data / "train" / "A").glob("*.png"))) as img:
        assert img.size == (32, 32)  # one side only, no pair
    assert not list((unpaired_data / "train").glob("*.png"))
    test = PairedDataset(unpaired_data, "test", load_size=32)  # evaluation splits stay paired
    assert len(test) > 0
    meta = json.loads((unpaired_data / "dataset.json").read_text())
    assert meta["unpaired"] and meta["counts"]["train/A"] == len(a) and meta["counts"]["train/B"] == len(b)


def write_images(folder: Path, n: int, colour: tuple[int, int, int], size: tuple[int, int] = (20, 16)) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.new("RGB", size, tuple(min(255, c + i) for c in colour)).save(folder / f"{i:02d}.png")


@pytest.mark.parametrize("layout", ["split/A", "trainA"])
def test_unpaired_loader_reads_both_layouts(tmp_path: Path, layout: str) -> None:
    dir_a, dir_b = (
        (tmp_path / "train" / "A", tmp_path / "train" / "B")
        if layout == "split/A"
        else (tmp_path / "trainA", tmp_path / "trainB")
    )
    write_images(dir_a, 5, (10, 10, 10))
    write_images(dir_b, 3, (200, 0, 0), size=(30, 40))  # other sizes and counts: no matching
    ds = UnpairedDataset(tmp_path, "train", load_size=8)
    assert len(ds) == 5 and ds.n_b == 3 and not ds.paired
    a, b = ds.batch([(4, 2), (0, 1)])
    assert a.shape == b.shape == (2, 3, 8, 8) and a[0, 0, 0, 0] == 14 and b[1, 0, 0, 0] == 201
    swapped = UnpairedDataset(tmp_path, "train", load_size=8, direction="BtoA")
    assert len(swapped) == 3 and swapped.n_b == 5
    with pytest.raises(FileNotFoundError, match="an unpaired dataset needs"):
        UnpairedDataset(tmp_path, "test")


def test_unpaired_batches_are_seeded_and_b_is_drawn_on_its_own(tmp_path: Path) -> None:
    write_images(tmp_path / "train" / "A", 8, (0, 0, 0))
    write_images(tmp_path / "train" / "B", 5, (100, 0, 0))
    ds = UnpairedDataset(tmp_path, "train", load_size=8)
    kw = dict(batch_size=4, seed=3, start_step=0, total_steps=6)
    run1 = list(iterate_batches(ds, **kw))
    run2 = list(iterate_batches(ds, **kw))
    assert all(torch.equal(x[1], y[1]) and torch.equal(x[2], y[2]) for x, y in zip(run1, run2))
    resumed = list(iterate_batches(ds, **{**kw, "start_step": 3}))
    assert all(torch.equal(x[2], y[2]) for x, y in zip(run1[3:], resumed))
    # Two ranks hold the two halves of each global batch, for A and for B.
    halves = [list(iterate_batches(ds, **kw, rank=r, world_size=2)) for r in (0, 1)]
    for whole, h0, h1 in zip(run1, *halves):
        assert torch.equal(torch.cat([h0[1], h1[1]]), whole[1]) and torch.equal(torch.cat([h0[2], h1[2]]), whole[2])
    # B's draw does not follow A's order: another seed for A's permutation alone would not move B.
    firsts = {tuple(b[:, 0, 0, 0].tolist()) for _, _, b in run1}
    assert len(firsts) > 1
    uncached = UnpairedDataset(tmp_path, "train", load_size=8, cache=False)
    for (_, a1, b1), (_, a2, b2) in zip(run1, iterate_batches(uncached, **kw, num_workers=0)):
        assert torch.equal(a1, a2) and torch.equal(b1, b2)


def test_resume_gives_the_same_weights_and_pools(tmp_path: Path, unpaired_data: Path) -> None:
    cfg = tiny_cyclegan(unpaired_data, max_steps=8, n_epochs_decay=2)
    train(cfg, tmp_path / "whole", progress=False)
    train(cfg, tmp_path / "cut", stop_at_step=3, progress=False)
    state = torch.load(tmp_path / "cut" / "checkpoints" / "last" / "training_state.pt", weights_only=True)
    assert state["method"]["pools"]["a"]["images"].shape[0] == 3  # the pool filled and was saved
    resume(tmp_path / "cut", progress=False)
    for name in NETWORKS:
        a, b = weights(tmp_path / "whole", name), weights(tmp_path / "cut", name)
        for k in a:
            torch.testing.assert_close(a[k], b[k], atol=1e-6, rtol=0, msg=f"{name}.{k}")


def test_two_ranks_match_one_process(tmp_path: Path, unpaired_data: Path) -> None:
    """As pix2pix's test: instance norm and no dropout (CycleGAN's defaults), global batch 4. Both runs go
    through torchrun with oneDNN held to its AVX2 kernels: on AVX-512 CPUs its convolutions sum a batch of 2
    and one of 4 in other orders, and through Adam that float-order noise moves this ResNet's weights by
    ~lr/300 on average after 3 steps (3e-6, measured), past the bound; with the AVX2 kernels the two agree
    to 1e-9. (On an AVX2-only CPU the setting changes nothing.)"""
    cfg = tiny_cyclegan(unpaired_data, batch_size=4, max_steps=3, lr=1e-3, ema_decay=0.9)
    isa = {"ONEDNN_MAX_CPU_ISA": "AVX2"}
    for name, nproc in (("one", 1), ("ddp", 2)):
        args = ["train", "--config", str(config_file(tmp_path, cfg)), "--out", str(tmp_path / name)]
        proc = torchrun(args, nproc=nproc, env=isa)
        assert proc.returncode == 0, proc.stderr[-3000:]
    for name in (*NETWORKS, "generator_ema", "generator_ba_ema"):
        assert_adam_close(weights(tmp_path / "one", name), weights(tmp_path / "ddp", name), lr=1e-3)
    one = torch.load(tmp_path / "one" / "checkpoints" / "last" / "training_state.pt", weights_only=True)["method"]
    ddp = torch.load(tmp_path / "ddp" / "checkpoints" / "last" / "training_state.pt", weights_only=True)["method"]
    for key in ("a", "b"):
        torch.testing.assert_close(one["pools"][key]["images"], ddp["pools"][key]["images"], atol=1e-4, rtol=0)


@pytest.fixture(scope="module")
def cyclegan_run(tmp_path_factory: pytest.TempPathFactory, unpaired_data: Path) -> Path:
    run = tmp_path_factory.mktemp("cyclegan") / "run"
    train(tiny_cyclegan(unpaired_data, val_every=3, sample_every=3, html=True, n_samples=2), run, progress=False)
    return run


def test_validation_and_live_rows_go_both_ways(cyclegan_run: Path) -> None:
    records = [json.loads(line) for line in (cyclegan_run / "log.jsonl").read_text().splitlines()]
    val = [r for r in records if "val_ssim" in r]
    assert [r["step"] for r in val] == [3, 6] and all(0 < r["val_cycle_a"] < 1 for r in val)
    with Image.open(cyclegan_run / "live" / "samples.png") as img:
        assert img.size == (3 * 32, 2 * 2 * 32)  # per sample: A -> B -> A and B -> A -> B, 32 px each


def test_translate_both_ways(cyclegan_run: Path, unpaired_data: Path, tmp_path: Path) -> None:
    src = next((unpaired_data / "train" / "B").glob("*.png"))
    for direction, net in (("AtoB", "generator"), ("BtoA", "generator_ba")):
        r = CliRunner().invoke(
            main,
            [
                "--no-progress",
                "translate",
                str(cyclegan_run),
                str(src),
                "--direction",
                direction,
                "--weights",
                "raw",
                "--out",
                str(tmp_path / direction),
            ],
        )
        assert r.exit_code == 0, r.output
        pipe = Pix2Pix.from_pretrained(cyclegan_run, direction=direction, weights="raw")
        saved = weights(cyclegan_run, net)
        assert all(torch.equal(v, saved[k]) for k, v in pipe.generator.state_dict().items())  # the right network
        with Image.open(src) as img:
            want = np.asarray(pipe(img))
        assert np.array_equal(np.asarray(Image.open(tmp_path / direction / src.name)), want)
    a = np.asarray(Image.open(tmp_path / "AtoB" / src.name))
    assert not np.array_equal(a, np.asarray(Image.open(tmp_path / "BtoA" / src.name)))  # two different generators


def test_export_both_directions_with_parity(cyclegan_run: Path) -> None:
    pytest.importorskip("onnxruntime")
    r = CliRunner().invoke(main, ["export", str(cyclegan_run), "--direction", "both"])
    assert r.exit_code == 0, r.output
    for name, direction in (("generator", "AtoB"), ("generator_ba", "BtoA")):
        side = json.loads((cyclegan_run / "export" / f"{name}.onnx.json").read_text())
        assert side["translates"] == direction and side["model"] == "cyclegan"
        assert side["parity"]["max_abs_diff_vs_pytorch"] <= 1e-4


def test_serve_a_cyclegan_run_either_way(cyclegan_run: Path) -> None:
    pytest.importorskip("fastapi")
    import io

    from fastapi.testclient import TestClient

    from pix2pix.serve.app import create_app

    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 40, 40)).save(buf, format="PNG")
    outs = []
    for direction in ("AtoB", "BtoA"):
        with TestClient(create_app(cyclegan_run, direction=direction)) as c:
            assert c.get("/v1/model").json()["translates"] == direction
            r = c.post("/v1/translate", content=buf.getvalue(), headers={"content-type": "image/png"})
            assert r.status_code == 200
            outs.append(np.asarray(Image.open(io.BytesIO(r.content))))
    assert not np.array_equal(*outs)


def test_evaluate_on_an_unpaired_split_reports_cycle_errors(
    cyclegan_run: Path, unpaired_data: Path, tmp_path: Path
) -> None:
    # The reference's layout: testA/ and testB/ with no pairs.
    data = tmp_path / "h2z"
    shutil.copytree(unpaired_data / "train" / "A", data / "testA")
    shutil.copytree(unpaired_data / "train" / "B", data / "testB")
    r = CliRunner().invoke(
        main, ["--no-progress", "evaluate", str(cyclegan_run), "--data", str(data), "--out", str(tmp_path / "ev")]
    )
    assert r.exit_code == 0, r.output
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert metrics["paired"] is False and set(metrics["mean"]["model"]) == {"cycle_a", "cycle_b"}
    assert 0 < metrics["mean"]["model"]["cycle_a"] < 1 and metrics["n_images"] == len(list((data / "testA").iterdir()))
    assert len(list((tmp_path / "ev" / "reconstructions").glob("*.png"))) == metrics["n_images"]
    assert "unpaired" in r.output and "CYCLE_A" in r.output


def test_end_to_end_unpaired_data_train_translate_evaluate(tmp_path: Path, svg_dir: Path) -> None:
    data, run = tmp_path / "data", tmp_path / "run"
    r = CliRunner().invoke(
        main,
        [
            "--no-progress",
            "data",
            "openmoji",
            "--unpaired",
            "--out",
            str(data),
            "--size",
            "32",
            "--svg-dir",
            str(svg_dir),
            "--workers",
            "1",
        ],
    )
    assert r.exit_code == 0 and "disjoint" in r.output, r.output
    r = CliRunner().invoke(
        main,
        [
            "--no-progress",
            "train",
            "--model",
            "cyclegan",
            "--data",
            str(data),
            "--out",
            str(run),
            "--generator",
            "resnet_6blocks",
            "--ngf",
            "8",
            "--ndf",
            "8",
            "--load-size",
            "32",
            "--crop-size",
            "32",
            "--max-steps",
            "3",
            "--pool-size",
            "2",
        ],
    )
    assert r.exit_code == 0 and "step 3/3" in r.output, r.output
    saved = json.loads((run / "config.json").read_text())
    assert saved["model"]["method"] == "cyclegan" and saved["model"]["norm"] == "instance"
    test_img = next((data / "test").glob("*.png"))
    r = CliRunner().invoke(main, ["--no-progress", "translate", str(run), str(test_img), "--out", str(tmp_path / "t")])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["--no-progress", "evaluate", str(run), "--out", str(tmp_path / "ev")])
    assert r.exit_code == 0, r.output
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert metrics["paired"] and set(metrics["mean"]) == {"model", "copy_input", "untrained"}
    assert metrics["n_images"] == len(dataset_for(build_config(saved), "test", load_size=32))


def test_a_cyclegan_runs_bar_and_loss_plots_show_its_cycle_identity_and_gan_losses(
    tmp_path: Path, unpaired_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pix2pix.methods.cyclegan import CycleGANMethod
    from pix2pix.training.logging import read_jsonl
    from pix2pix.training.plots import panels_for

    run = tmp_path / "run"
    train(tiny_cyclegan(unpaired_data, max_steps=4, log_every=2, val_every=0, sample_every=0, html=True), run)
    bar = capsys.readouterr().err.splitlines()[-1]  # the progress bar's last state
    for loss in ("G_GAN_AB", "G_GAN_BA", "cycle_A", "cycle_B", "idt_A", "idt_B", "D"):
        assert f"{loss}=" in bar, (loss, bar)
    panels = panels_for(read_jsonl(run / "log.jsonl"), CycleGANMethod.loss_panels)
    assert panels["generators: adversarial"] == ["G_GAN_AB", "G_GAN_BA"]
    assert panels["generators: cycle and identity"] == ["cycle_A", "cycle_B", "idt_A", "idt_B"]
    assert panels["discriminators"] == ["D_A", "D_B"]
    assert (run / "live" / "losses.png").stat().st_size > 1000  # the live page's curves were drawn


@pytest.mark.parametrize("name", ["pix2pix", "cyclegan"])
def test_every_method_shows_and_plots_the_losses_its_step_returns(
    name: str, tiny_data: Path, unpaired_data: Path
) -> None:
    """No phantom losses in the bar or the plots (a bar once listed one no method produces), and every
    loss a step returns is plotted, but the weighted totals G and D."""
    from pix2pix.images import from_uint8

    from .conftest import tiny_config

    if name == "pix2pix":  # every optional loss on: SSIM and the gradient penalty
        cfg = tiny_config(tiny_data, lambda_ssim=1.0, gan_mode="wgan-gp")
    else:
        cfg = tiny_cyclegan(unpaired_data)
    method = get_method(name)(cfg, device=torch.device("cpu"))
    ds = dataset_for(cfg, "train", load_size=32)
    _, a_u8, b_u8 = next(iterate_batches(ds, batch_size=2, seed=0, start_step=0, total_steps=1))
    returned = set(method.train_step(from_uint8(a_u8), from_uint8(b_u8), StepInfo(step=0, global_batch=2)))
    plotted = {loss for losses in method.loss_panels.values() for loss in losses}
    assert set(method.shown_losses) <= returned and plotted <= returned
    assert returned - plotted == {"G", "D"}
