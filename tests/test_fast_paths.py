"""Every fast path gives what the plain path gives: cached data, fused Adam, ONNX, channels_last."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from pix2pix.data.loader import iterate_batches
from pix2pix.data.paired import PairedDataset
from pix2pix.inference import Pix2Pix, translate_paths
from pix2pix.losses import GANLoss
from pix2pix.methods.pix2pix import train_step
from pix2pix.networks import make_discriminator, make_generator
from pix2pix.optim import make_adam
from pix2pix.precision import Precision, cpu_has_native_bf16, resolve_precision
from pix2pix.training.loop import resume, train

from .conftest import assert_adam_close, tiny_config


@pytest.mark.parametrize("workers", [0, 2])
def test_cached_and_uncached_data_give_the_same_batches(tiny_data: Path, workers: int) -> None:
    cached = PairedDataset(tiny_data, "train", load_size=36, cache=True)
    plain = PairedDataset(tiny_data, "train", load_size=36, cache=False)
    kwargs = dict(batch_size=4, seed=3, start_step=1, total_steps=7)
    got_cached = list(iterate_batches(cached, **kwargs))
    got_plain = list(iterate_batches(plain, num_workers=workers, **kwargs))
    assert [s for s, _, _ in got_cached] == list(range(1, 7))
    for (s1, a1, b1), (s2, a2, b2) in zip(got_cached, got_plain):
        assert s1 == s2 and torch.equal(a1, a2) and torch.equal(b1, b2)


def test_ranks_take_disjoint_shares_of_the_global_batch(tiny_data: Path) -> None:
    ds = PairedDataset(tiny_data, "train", load_size=36)
    whole = [a for _, a, _ in iterate_batches(ds, batch_size=4, seed=0, start_step=0, total_steps=3)]
    halves = [
        [a for _, a, _ in iterate_batches(ds, batch_size=4, seed=0, start_step=0, total_steps=3, rank=r, world_size=2)]
        for r in (0, 1)
    ]
    for w, h0, h1 in zip(whole, *halves):
        assert torch.equal(torch.cat([h0, h1]), w)


def run_steps(cfg, opt_kind: str, precision: Precision | None = None, steps: int = 3) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    g, d = make_generator(cfg.model), make_discriminator(cfg.model)
    if precision is not None:
        g, d = precision.prepare(g), precision.prepare(d)
    if opt_kind == "fused":
        opt_g, opt_d = (
            make_adam(g.parameters(), cfg.train, torch.device("cpu")),
            make_adam(d.parameters(), cfg.train, torch.device("cpu")),
        )
    else:
        kw = dict(lr=cfg.train.lr, betas=(0.5, 0.999), foreach=False, fused=False)
        opt_g, opt_d = torch.optim.Adam(g.parameters(), **kw), torch.optim.Adam(d.parameters(), **kw)
    gen = torch.Generator().manual_seed(5)
    a = torch.rand(4, 3, 32, 32, generator=gen) * 2 - 1
    b = torch.rand(4, 3, 32, 32, generator=gen) * 2 - 1
    if precision is not None:
        a, b = precision.to_memory_format(a), precision.to_memory_format(b)
    gan = GANLoss("vanilla")
    for _ in range(steps):
        train_step(g, d, opt_g, opt_d, gan, a, b, cfg.train, precision)
    return {k: v.contiguous() for k, v in g.state_dict().items()}


def test_fused_adam_matches_the_plain_for_loop_adam(tiny_cfg) -> None:
    fused = run_steps(tiny_cfg, "fused")
    plain = run_steps(tiny_cfg, "plain")
    assert_adam_close(fused, plain, lr=tiny_cfg.train.lr)
    assert any(not torch.equal(fused[k], run_steps(tiny_cfg, "plain", steps=0)[k]) for k in fused if "weight" in k)


def test_fused_adam_is_what_training_uses(tiny_cfg) -> None:
    opt = make_adam(make_generator(tiny_cfg.model).parameters(), tiny_cfg.train, torch.device("cpu"))
    assert opt.defaults.get("fused") or opt.defaults.get("foreach")


def test_adam_state_is_laid_out_as_its_weight_after_loading(tiny_cfg) -> None:
    """torch's fused and foreach Adam mix up elements when a weight and its moments lie in different
    memory layouts: a run saved with one layout (channels_last on a GPU, a PatchGAN on CPU) and
    resumed with the other. Loading lays each moment out as its weight, so the resumed steps are
    the uninterrupted run's."""
    import copy

    cl = torch.channels_last
    gen = torch.Generator().manual_seed(0)
    nchw = torch.nn.Parameter(torch.randn(8, 4, 3, 3, generator=gen))
    grads = [torch.randn(8, 4, 3, 3, generator=gen) for _ in range(2)]
    opt = make_adam([nchw], tiny_cfg.train, torch.device("cpu"))
    nchw.grad = grads[0].clone()
    opt.step()  # one step in NCHW, saved, then resumed in channels_last
    saved, resumed = copy.deepcopy(opt.state_dict()), torch.nn.Parameter(nchw.detach().contiguous(memory_format=cl))
    nchw.grad = grads[1].clone()
    opt.step()  # the uninterrupted run's second step
    opt_cl = make_adam([resumed], tiny_cfg.train, torch.device("cpu"))
    opt_cl.load_state_dict(saved)
    assert all(v.is_contiguous(memory_format=cl) for v in opt_cl.state[resumed].values() if v.dim() == 4)
    resumed.grad = grads[1].contiguous(memory_format=cl)
    opt_cl.step()
    torch.testing.assert_close(resumed.detach().contiguous(), nchw.detach(), atol=0, rtol=0)


def test_channels_last_matches_contiguous(tiny_data: Path) -> None:
    # Forward outputs and gradients; dropout off, since its masks are drawn in memory order.
    cfg = tiny_config(tiny_data, dropout=False)
    cl = Precision(device=torch.device("cpu"), dtype=None, scaler=None, channels_last=True)
    results = []
    for p in (None, cl):
        torch.manual_seed(0)
        g, d = make_generator(cfg.model), make_discriminator(cfg.model)
        x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
        if p is not None:
            g, d, x = p.prepare(g), p.prepare(d), p.to_memory_format(x)
            assert x.is_contiguous(memory_format=torch.channels_last)
        out = g(x)
        score = d(torch.cat([x, out], 1))
        (out.square().mean() + score.mean()).backward()
        results.append((out.detach().contiguous(), [q.grad.contiguous() for q in g.parameters()]))
    torch.testing.assert_close(results[0][0], results[1][0], atol=1e-5, rtol=1e-4)
    for ga, gb in zip(results[0][1], results[1][1]):
        torch.testing.assert_close(ga, gb, atol=1e-6, rtol=1e-3)


def test_cpu_stays_float32_and_refuses_slow_bf16() -> None:
    p = resolve_precision("auto", "auto", torch.device("cpu"))
    assert p.dtype is None and p.scaler is None and not p.channels_last
    if not cpu_has_native_bf16():
        with pytest.raises(ValueError, match="amp 'bf16' on this CPU .* no native support"):
            resolve_precision("bf16", "auto", torch.device("cpu"))
    with pytest.raises(ValueError, match="amp 'fp16' on this CPU"):
        resolve_precision("fp16", "auto", torch.device("cpu"))


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory, tiny_data: Path) -> Path:
    run = tmp_path_factory.mktemp("onnxrun") / "run"
    train(
        tiny_config(tiny_data, max_steps=4, lr=1e-3, val_every=0, sample_every=0, tensorboard=False, html=False),
        run,
        progress=False,
    )
    return run


def test_onnx_backend_matches_torch_on_real_images(
    trained_run: Path, tiny_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ONNX backend reads the run and writes nothing into it (issue 42, item 4): the export goes to
    pix2pix's cache folder, named by the weights' hash, once; a read-only run folder works."""
    import pix2pix.onnx_runtime as onnx_runtime
    from pix2pix.io import cache_dir

    folder = trained_run / "checkpoints" / "last"
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    exports = set((cache_dir() / "onnx").glob("*.onnx"))
    folder.chmod(0o555)  # (root ignores it; the listing below is the real check)
    try:
        torch_pipe = Pix2Pix.from_pretrained(trained_run)
        onnx_pipe = Pix2Pix.from_pretrained(trained_run, backend="onnx")
        assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before
        assert len(set((cache_dir() / "onnx").glob("*.onnx")) - exports) == 1
        monkeypatch.setattr(onnx_runtime, "export_onnx", lambda *a, **k: pytest.fail("exported twice"))
        Pix2Pix.from_pretrained(trained_run, backend="onnx")  # the cached file, no second export
    finally:
        folder.chmod(0o755)
    ds = PairedDataset(tiny_data, "test", load_size=32)
    x = ds.batch(torch.arange(len(ds)))[0].float() / 127.5 - 1
    diff = (torch_pipe(x) - onnx_pipe(x)).abs().max().item()
    assert diff <= 1e-4
    odd = torch.rand(2, 3, 40, 70) * 2 - 1  # dynamic batch and spatial axes, padded and cropped back
    assert (torch_pipe(odd) - onnx_pipe(odd)).abs().max().item() <= 1e-4
    with pytest.raises(ValueError, match="test-time dropout needs the torch backend"):
        onnx_pipe(odd, dropout=True)


def test_batched_folder_translation_equals_one_by_one(trained_run: Path, tmp_path: Path, tiny_data: Path) -> None:
    pipe = Pix2Pix.from_pretrained(trained_run)
    src = tmp_path / "in"
    src.mkdir()
    for i, f in enumerate(sorted((tiny_data / "test").glob("*.png"))):
        with Image.open(f) as img:
            img.crop((0, 0, 32, 32)).save(src / f"{i}.png")
    batched = translate_paths(pipe, [src], tmp_path / "b", batch_size=8).written
    single = translate_paths(pipe, [src], tmp_path / "s", batch_size=1).written
    for x, y in zip(batched, single):
        with Image.open(x) as a, Image.open(y) as b:
            assert np.abs(np.asarray(a, dtype=int) - np.asarray(b, dtype=int)).max() <= 1


@pytest.mark.slow
def test_torch_compile_flag_trains_like_eager(tmp_path: Path, tiny_data: Path) -> None:
    base = dict(max_steps=2, val_every=0, sample_every=0, tensorboard=False, html=False)
    train(tiny_config(tiny_data, **base), tmp_path / "eager", progress=False)
    train(tiny_config(tiny_data, compile=True, **base), tmp_path / "compiled", progress=False)
    from safetensors.torch import load_file

    a = load_file(str(tmp_path / "eager" / "checkpoints" / "last" / "generator.safetensors"))
    b = load_file(str(tmp_path / "compiled" / "checkpoints" / "last" / "generator.safetensors"))
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=1e-4, rtol=1e-3, msg=k)


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("size", [1, 2, 4, 8])
def test_gemm_convolutions_match_oneDNN_forward_and_backward(batch: int, size: int, monkeypatch) -> None:
    import pix2pix.cpu.kernels as kernels
    from pix2pix.cpu.kernels import Conv2d, ConvTranspose2d

    gen = torch.Generator().manual_seed(size)
    layers = [ConvTranspose2d(12, 5, 4, 2, 1)]
    if size >= 2:
        layers.append(Conv2d(12, 5, 4, 2, 1, bias=False))
    for layer in layers:
        x = torch.randn(batch, 12, size, size, generator=gen, requires_grad=True)
        results = []
        for gemm in (False, True):
            layer.zero_grad(set_to_none=True)
            x.grad = None
            layer.train(gemm)  # the GEMM form is a training path; eval runs the plain layer
            monkeypatch.setattr(kernels, "GEMM_MIN_WEIGHT_RATIO", 0.0)
            y = layer(x)
            (y * torch.linspace(-1, 1, y.numel()).view_as(y)).sum().backward()
            results.append([y.detach(), x.grad] + [p.grad for p in layer.parameters()])
        for plain, fast in zip(*results):
            torch.testing.assert_close(fast, plain, atol=1e-5, rtol=1e-4)


def test_gemm_convolutions_match_oneDNN_under_bf16_autocast(monkeypatch) -> None:
    """Under CPU bf16 autocast the GEMM forms compute in bf16 as oneDNN does (bf16 out, the
    transposed layer's bias included) and agree with it to bf16 rounding, forward and backward."""
    import pix2pix.cpu.kernels as kernels
    from pix2pix.cpu.kernels import Conv2d, ConvTranspose2d

    used = []
    for name in ("conv2d_gemm", "conv_transpose2d_gemm"):
        real = getattr(kernels, name)
        monkeypatch.setattr(kernels, name, lambda *a, real=real, name=name: used.append(name) or real(*a))
    gen = torch.Generator().manual_seed(0)
    for layer, size in ((ConvTranspose2d(16, 8, 4, 2, 1), 4), (Conv2d(16, 8, 4, 2, 1, bias=False), 8)):
        x = torch.randn(2, 16, size, size, generator=gen).bfloat16().requires_grad_(True)
        weight = torch.linspace(-1, 1, 2 * 8 * (2 * size if isinstance(layer, ConvTranspose2d) else size // 2) ** 2)
        results = []
        for form in ("onednn", "gemm"):
            layer.zero_grad(set_to_none=True)
            x.grad = None
            layer.kernel_choice = {((2, 16, size, size), torch.bfloat16): form}
            with torch.autocast("cpu", dtype=torch.bfloat16):
                y = layer(x)
            assert y.dtype == torch.bfloat16
            (y.float() * weight.view_as(y)).sum().backward()
            results.append([y.detach().float(), x.grad.float()] + [p.grad for p in layer.parameters()])
        for plain, fast in zip(*results):
            assert fast.abs().max() > 0
            torch.testing.assert_close(fast, plain, atol=0.02 * plain.abs().max().item(), rtol=0.02)
    assert used == ["conv_transpose2d_gemm", "conv2d_gemm"]  # each layer took the GEMM form once


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_narrow_layers_train_per_tap_and_match_oneDNN(dtype: torch.dtype, monkeypatch) -> None:
    """Layers with an image's or a score map's channels (a PatchGAN's head, a U-Net's RGB layer) take
    the per-tap GEMM form while training on CPU, by the rule without timing, on NCHW and on
    channels_last inputs: same output and gradients as the plain layer (float32: to summation order;
    bf16 autocast: bf16 out, to bf16 rounding). Eval runs the plain layer; wide layers keep the im2col
    form; the cache key says which."""
    import pix2pix.cpu.kernels as kernels
    from pix2pix.models.discriminators import PatchDiscriminator

    used = []
    for name in ("conv2d_taps", "conv_transpose2d_taps", "conv2d_gemm", "conv_transpose2d_gemm"):
        real = getattr(kernels, name)
        monkeypatch.setattr(kernels, name, lambda *a, real=real, name=name: used.append(name) or real(*a))
    head = PatchDiscriminator(input_nc=6, ndf=8, n_layers=2).model[-1]
    assert kernels.convert_layer(head) and isinstance(head, kernels.Conv2d) and kernels.is_narrow(head)
    gen = torch.Generator().manual_seed(0)
    nchw, cl = torch.contiguous_format, torch.channels_last
    cases = [
        (head, (2, 32, 9, 9), nchw, "conv2d_taps"),  # 1 channel, 4x4, stride 1: the 70x70 PatchGAN's head
        (head, (2, 32, 9, 9), cl, "conv2d_taps"),  # as the PatchGAN runs on CPU: channels_last input
        (kernels.Conv2d(16, 3, 4, 2, 1, bias=False), (2, 16, 8, 8), nchw, "conv2d_taps"),
        (kernels.Conv2d(16, 3, 4, 2, 1), (2, 16, 8, 8), cl, "conv2d_taps"),
        (
            kernels.ConvTranspose2d(16, 3, 4, 2, 1),
            (2, 16, 6, 6),
            nchw,
            "conv_transpose2d_taps",
        ),  # the U-Net's outermost up
    ]
    bf16 = dtype == torch.bfloat16
    weights = torch.rand(2 * 3 * 12 * 12, generator=gen)  # positive: no gradient cancels to ~0
    for layer, shape, layout, form in cases:
        x = torch.randn(shape, generator=gen).to(dtype).contiguous(memory_format=layout).requires_grad_(True)
        results = []
        for training in (False, True):  # eval: the plain layer (oneDNN); training: the GEMM form
            used.clear()
            layer.train(training).zero_grad(set_to_none=True)
            x.grad = None
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                y = layer(x)
            assert y.dtype == dtype and y.is_contiguous(memory_format=layout)  # the form keeps the input's layout
            (y.float() * weights[: y.numel()].view_as(y)).sum().backward()
            results.append([y.detach().float(), x.grad.float()] + [p.grad for p in layer.parameters()])
            assert used == ([form] if training else [])
        for plain, fast in zip(*results):
            assert fast.abs().max() > 0
            if bf16:
                torch.testing.assert_close(fast, plain, atol=0.02 * plain.abs().max().item(), rtol=0.02)
            else:
                torch.testing.assert_close(fast, plain, atol=1e-5, rtol=1e-4)
    wide = kernels.Conv2d(16, 4, 4, 2, 1)
    assert not kernels.is_narrow(wide) and not kernels.rule_says_gemm(wide, (2, 16, 8, 8))
    assert "[taps]" in kernels.layer_key(head, (2, 32, 9, 9)) and "[taps]" not in kernels.layer_key(wide, (2, 16, 8, 8))


def test_kernel_choice_is_timed_and_kept_per_dtype(monkeypatch) -> None:
    """A layer's choice is made, cached and looked up per (input shape, compute dtype): the bf16
    timing under autocast does not decide the float32 form, and the two cache keys differ."""
    import pix2pix.cpu.kernels as kernels

    seen = []

    def fake_time(module, x, grad, gemm, repeat, dtype):  # GEMM "wins" in bf16 only
        seen.append((x.dtype, dtype, torch.is_autocast_enabled("cpu")))
        return (1.0 if gemm else 2.0) if dtype == torch.bfloat16 else (2.0 if gemm else 1.0)

    monkeypatch.setattr(kernels, "_time_form", fake_time)
    net = torch.nn.Sequential(kernels.Conv2d(4, 8, 4, 2, 1), torch.nn.ReLU(), kernels.ConvTranspose2d(8, 4, 4, 2, 1))
    example = torch.zeros(1, 4, 8, 8)
    cache: dict = {}
    bf16 = kernels.time_kernels(net, example, cache=cache, dtype=torch.bfloat16)
    fp32 = kernels.time_kernels(net, example, cache=cache)
    assert set(bf16.values()) == {"gemm"} and set(fp32.values()) == {"onednn"}
    assert all(k.endswith(" bfloat16") for k in bf16) and not any("bfloat16" in k for k in fp32)
    assert len(cache[kernels.cpu_signature()]) == 4
    # The first layer gets the float32 input under autocast, the second its bf16 output.
    assert seen[0] == (torch.float32, torch.bfloat16, False) and seen[2][0] == torch.bfloat16
    calls = []
    monkeypatch.setattr(kernels, "conv2d_gemm", lambda *a: calls.append(a[0].dtype) or torch.zeros(1, 8, 4, 4))
    net.train()[0](example)  # float32: oneDNN
    with torch.autocast("cpu", dtype=torch.bfloat16):
        net[0](example)  # bf16: GEMM
    assert calls == [torch.float32]
    # Timed again with a warm cache: nothing is measured.
    seen.clear()
    assert kernels.time_kernels(net, example, cache=cache, dtype=torch.bfloat16) == bf16 and not seen


def test_a_bf16_run_times_its_kernels_in_bf16(monkeypatch, tmp_path: Path, tiny_data: Path) -> None:
    import pix2pix.cpu as cpu
    import pix2pix.precision as precision

    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    dtypes = []
    # cpu.tune passes Precision.dtype, None for float32 (as choose_kernels reads it).
    monkeypatch.setattr(cpu, "choose_kernels", lambda networks, dtype: dtypes.append(dtype or torch.float32) or {})
    common = dict(max_steps=1, val_every=0, sample_every=0, tensorboard=False, html=False)
    train(tiny_config(tiny_data, amp="bf16", **common), tmp_path / "bf16", progress=False)
    train(tiny_config(tiny_data, amp="off", **common), tmp_path / "fp32", progress=False)
    assert dtypes == [torch.bfloat16, torch.float32]
    from pix2pix.cpu.choices import choose_kernels

    g = make_generator(tiny_config(tiny_data).model)
    assert choose_kernels({"generator": (g, torch.zeros(1, 3, 32, 32))}, torch.float16) == {}  # no GEMM form in fp16


def test_gemm_path_is_taken_while_training_weight_heavy_layers(monkeypatch) -> None:
    import pix2pix.cpu.kernels as kernels

    calls = []
    monkeypatch.setattr(kernels, "conv_transpose2d_gemm", lambda *a: calls.append(a[0].shape) or torch.zeros(1))
    layer = kernels.ConvTranspose2d(32, 32, 4, 2, 1)  # 16,384 weights
    layer(torch.zeros(1, 32, 4, 4))  # training, 512 inputs: weight/input 32, GEMM
    layer(torch.zeros(1, 32, 8, 8))  # 2,048 inputs: weight/input 8, oneDNN
    layer.eval()(torch.zeros(1, 32, 2, 2))  # inference: plain
    assert calls == [torch.Size([1, 32, 4, 4])]
    from pix2pix import cpu

    g = make_generator(tiny_config(Path("."), generator="unet_32").model)
    assert not any(isinstance(m, kernels.ConvTranspose2d) for m in g.modules())  # the model is plain torch
    assert any(isinstance(m, kernels.ConvTranspose2d) for m in cpu.convert(g).modules())  # until a run converts it


def test_unet_trains_the_same_with_and_without_gemm_layers(monkeypatch) -> None:
    import pix2pix.cpu.kernels as kernels
    from pix2pix import cpu

    cfg = tiny_config(Path("."), generator="unet_32", ngf=16, dropout=False)
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(3)) * 2 - 1
    results = []
    for ratio, narrow in ((float("inf"), 0), (0.0, kernels.NARROW_MAX_OUT)):  # never, always
        monkeypatch.setattr(kernels, "GEMM_MIN_WEIGHT_RATIO", ratio)
        monkeypatch.setattr(kernels, "NARROW_MAX_OUT", narrow)
        torch.manual_seed(0)
        g = cpu.convert(make_generator(cfg.model))
        out = g(x)
        out.square().mean().backward()
        results.append([out.detach()] + [p.grad for p in g.parameters()])
    for plain, fast in zip(*results):
        torch.testing.assert_close(fast, plain, atol=1e-5, rtol=1e-4)


def test_bf16_on_cpu_needs_native_support_and_auto_measures_first(monkeypatch, tiny_data: Path) -> None:
    import pix2pix.cpu.choices as choices
    import pix2pix.precision as precision

    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    assert resolve_precision("bf16", "auto", torch.device("cpu")).dtype == torch.bfloat16
    assert resolve_precision("auto", "auto", torch.device("cpu")).dtype is None  # auto decides after measuring
    g = make_generator(tiny_config(tiny_data).model)
    x = torch.zeros(2, 3, 32, 32)
    # The calibration compares real timings; with bf16 made to look slow or fast, it follows them.
    clock = iter([0.0, 1.0] * 1000)
    monkeypatch.setattr("time.perf_counter", lambda: next(clock))  # every run takes 1 s...
    assert choices.calibrate_cpu_bf16(g, x) is False  # ...so bf16 is not faster by 10%
    ticks = {"n": 0}

    def clock_fast_bf16() -> float:  # fp32 runs take 1 s, bf16 runs 0.5 s (calls alternate fp32, bf16)
        ticks["n"] += 1
        run, end = divmod(ticks["n"] - 1, 2)
        return float(run) + (0.0 if end == 0 else (1.0 if run % 2 == 0 else 0.5))

    monkeypatch.setattr("time.perf_counter", clock_fast_bf16)
    assert choices.calibrate_cpu_bf16(g, x) is True


def test_native_bf16_detection_agrees_with_the_cpu_flags() -> None:
    from pix2pix.precision import cpu_flags

    flags = cpu_flags()
    if not flags:
        pytest.skip("no /proc/cpuinfo flags to compare with")
    assert cpu_has_native_bf16() == bool(flags & {"avx512_bf16", "amx_bf16"})


@pytest.mark.parametrize("copies", [False, True])
def test_amp_auto_bf16_choice_is_kept_on_resume(copies: bool, monkeypatch, tmp_path: Path, tiny_data: Path) -> None:
    """On a CPU with native bf16, `amp auto` measures once; a resumed run keeps that choice (a new
    measurement could pick float32 and break exact resume) and ends where an uninterrupted one does,
    also where its layers multiply bf16 copies of their weights (made again from the loaded weights)."""
    import pix2pix.cpu as cpu
    import pix2pix.cpu.bf16_copies as bf16_copies
    import pix2pix.precision as precision
    from pix2pix.run_folder import load_training_state

    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    monkeypatch.setattr(cpu, "cpu_has_native_bf16", lambda: True)
    if copies:
        monkeypatch.setattr(bf16_copies, "MIN_COPIED_WEIGHTS", 0)  # the tiny U-Net is far below the size they pay at
    kept = []
    monkeypatch.setattr(
        cpu, "keep_bf16_copies", lambda *a, **k: kept.append(bf16_copies.keep_bf16_copies(*a, **k)) or kept[-1]
    )
    calls = []

    def choose(generator, x):  # bf16 "measures" faster; draws from the RNG as real dropout would
        calls.append(1)
        torch.rand(7)
        return True, "measured"

    monkeypatch.setattr(cpu, "choose_cpu_bf16", choose)
    cfg = tiny_config(
        tiny_data,
        amp="auto",
        max_steps=4,
        dropout=False,
        norm="instance",
        val_every=0,
        sample_every=0,
        tensorboard=False,
        html=False,
    )
    train(cfg, tmp_path / "whole", progress=False)
    train(cfg, tmp_path / "split", progress=False, stop_at_step=2)
    assert len(calls) == 2
    assert load_training_state(tmp_path / "split" / "checkpoints" / "last")["cpu_amp"] == "bf16"
    monkeypatch.setattr(cpu, "choose_cpu_bf16", lambda *a: pytest.fail("a resumed run chose again"))
    resume(tmp_path / "split", progress=False)
    assert len(kept) == 3 and all(n > 0 if copies else n == 0 for n in kept)
    for name in ("generator", "discriminator"):
        a = load_file(str(tmp_path / "whole" / "checkpoints" / "last" / f"{name}.safetensors"))
        b = load_file(str(tmp_path / "split" / "checkpoints" / "last" / f"{name}.safetensors"))
        for k in a:
            torch.testing.assert_close(a[k], b[k], atol=1e-6, rtol=0, msg=k)


def test_amp_auto_twice_on_one_machine_trains_the_same_weights(monkeypatch, tmp_path: Path, tiny_data: Path) -> None:
    """The same command twice on one machine gives bit-identical weights with `amp auto`: on a CPU with
    native bf16 the first run times bf16 against float32 and caches the answer (and its kernel choices)
    for this CPU, the second reads it, and both record how the precision was chosen; elsewhere
    auto is float32 by rule."""
    import json

    import pix2pix.cpu.choices as choices

    monkeypatch.setenv("PIX2PIX_CACHE_DIR", str(tmp_path / "cache"))  # a machine that has not measured yet
    timed = []
    real = choices.calibrate_cpu_bf16
    monkeypatch.setattr(choices, "calibrate_cpu_bf16", lambda *a: timed.append(1) or real(*a))
    cfg = tiny_config(tiny_data, amp="auto", max_steps=3, val_every=0, sample_every=0, tensorboard=False, html=False)
    for name in ("first", "second"):
        train(cfg, tmp_path / name, progress=False)
    metas = [json.loads((tmp_path / n / "checkpoints" / "last" / "meta.json").read_text()) for n in ("first", "second")]
    assert metas[0]["precision"] == metas[1]["precision"]
    if cpu_has_native_bf16():
        assert len(timed) == 1  # measured once, then cached
        assert metas[0]["precision_chosen"] == "amp auto: measured, now cached for this CPU"
        assert metas[1]["precision_chosen"] == "amp auto: cached for this CPU"
    else:
        assert (
            timed == [] and metas[0]["precision"].startswith("cpu fp32") and metas[1]["precision_chosen"] == "amp auto"
        )
    for name in ("generator", "discriminator"):
        a = load_file(str(tmp_path / "first" / "checkpoints" / "last" / f"{name}.safetensors"))
        b = load_file(str(tmp_path / "second" / "checkpoints" / "last" / f"{name}.safetensors"))
        assert all(torch.equal(a[k], b[k]) for k in a), name


def bf16_copy_counts(monkeypatch) -> list[int]:
    """Spy on the fused bf16-copy update: the length of every weight it updates."""
    import pix2pix.cpu.bf16_copies as bf16_copies

    assert bf16_copies.bf16_kernel_works()  # its one-off check runs before the spy
    calls: list[int] = []
    real = bf16_copies._adam_bf16_kernel
    monkeypatch.setattr(bf16_copies, "_adam_bf16_kernel", lambda: lambda *a: calls.append(a[0].numel()) or real()(*a))
    return calls


def test_bf16_weight_copies_train_as_casting_every_step(monkeypatch) -> None:
    """In CPU bf16 training the U-Net's layers can multiply bf16 copies of their weights that Adam
    updates (cpu/bf16_copies.py). A pix2pix step ends where casting every weight every step ends (to
    float noise: the bf16 values multiplied and the gradients are the same), the fused update is
    what updated the copied weights, each copy then holds its weight rounded to bf16, and the
    optimizer state is torch.optim.Adam's. (Over more steps bf16 runs drift apart from any float
    noise, as two orders of summation do: Adam's first steps move every weight by +-lr.)"""
    from pix2pix.cpu import convert
    from pix2pix.cpu.bf16_copies import keep_bf16_copies
    from pix2pix.cpu.kernels import Conv2d, ConvTranspose2d

    cfg = tiny_config(Path("."), generator="unet_32", ngf=16, dropout=False)
    cpu = torch.device("cpu")
    bf16 = Precision(device=cpu, dtype=torch.bfloat16, scaler=None, channels_last=False)
    gen = torch.Generator().manual_seed(5)
    a, b = (torch.rand(2, 3, 32, 32, generator=gen) * 2 - 1 for _ in range(2))
    calls = bf16_copy_counts(monkeypatch)
    runs = []
    for copies in (False, True):
        torch.manual_seed(0)
        g, d = (convert(net) for net in (make_generator(cfg.model), make_discriminator(cfg.model)))
        start = {k: v.clone() for k, v in g.state_dict().items()}
        opt_g, opt_d = make_adam(g.parameters(), cfg.train, cpu), make_adam(d.parameters(), cfg.train, cpu)
        layers = [m for net in (g, d) for m in net.modules() if isinstance(m, (Conv2d, ConvTranspose2d))]
        layers = [m for m in layers if m.weight.is_contiguous()]  # the PatchGAN's channels_last head keeps none
        assert keep_bf16_copies(
            [g, d], [opt_g, opt_d], device=cpu, dtype=torch.bfloat16, min_weights=0 if copies else None
        ) == (len(layers) if copies else 0)
        train_step(g, d, opt_g, opt_d, GANLoss("vanilla"), a, b, cfg.train, bf16)
        runs.append(({k: v.clone() for k, v in g.state_dict().items()}, opt_g.state_dict()))
    (cast, state_cast), (copied, state_copied) = runs
    for k in cast:
        torch.testing.assert_close(copied[k], cast[k], atol=1e-7, rtol=0, msg=k)
    assert all(not torch.equal(copied[k], start[k]) for k in copied if k.endswith("weight") and copied[k].dim() == 4)
    assert state_copied["state"].keys() == state_cast["state"].keys()
    for i, s in state_cast["state"].items():
        assert s.keys() == state_copied["state"][i].keys() and float(state_copied["state"][i]["step"]) == 1
        for key in ("exp_avg", "exp_avg_sq"):
            # D's head, updated by either kernel, may round a weight to bf16 the other way: G's
            # gradients then differ in their fifth digit.
            torch.testing.assert_close(state_copied["state"][i][key], s[key], atol=1e-9, rtol=1e-3)
    for step in range(1, 4):
        # Every copied weight was updated by the fused kernel (D's head in D's phase only), and its
        # copy, what the next forward multiplies, is the weight rounded to bf16.
        assert sorted(calls) == sorted(step * [m.weight.numel() for m in layers])
        for m in layers:
            assert m.weight.bf16_copy.grad is None and torch.equal(m.weight.bf16_copy, m.weight.detach().bfloat16())
        train_step(g, d, opt_g, opt_d, GANLoss("vanilla"), a, b, cfg.train, bf16)


def test_bf16_copies_follow_their_weights_and_stay_off_where_they_cannot_help(monkeypatch) -> None:
    import torch.nn.functional as F

    import pix2pix.cpu.bf16_copies as bf16_copies
    from pix2pix.cpu.kernels import Conv2d

    cpu = torch.device("cpu")
    layer = Conv2d(8, 8, 4, 2, 1, bias=False)
    assert bf16_copies.keep_bf16_copies([layer], [], device=cpu, dtype=torch.bfloat16, min_weights=0) == 1
    copy = layer.weight.bf16_copy
    x = torch.randn(1, 8, 8, 8)
    with torch.no_grad():
        layer.weight.mul_(-2)  # changed outside the optimizer, as loading a checkpoint does
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = layer(x)
    torch.testing.assert_close(y, F.conv2d(x.bfloat16(), layer.weight.bfloat16(), None, 2, 1))  # the new weight
    y.float().sum().backward()
    assert layer.weight.grad is None and copy.grad is not None and copy.grad.dtype == torch.bfloat16
    layer.weight.requires_grad_(False)  # frozen (a discriminator in the generator's phase): so is its copy
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not layer(x).requires_grad
    layer.weight.requires_grad_(True)
    copy.grad = None
    for y in (layer(x), layer.eval()(x)):  # float32 training and inference multiply the weight itself
        y.sum().backward()
        assert copy.grad is None and layer.weight.grad is not None
        layer.weight.grad = None
    # Off where copies cannot be used or gain nothing.
    for kwargs in ({"dtype": None}, {"world": 2}, {"grad_accum": 2}, {"compiled": True}):
        fresh = Conv2d(8, 8, 4, 2, 1)
        assert (
            bf16_copies.keep_bf16_copies(
                [fresh], [], **{"device": cpu, "dtype": torch.bfloat16, "min_weights": 0, **kwargs}
            )
            == 0
        )
        assert not hasattr(fresh.weight, "bf16_copy")
    assert (
        bf16_copies.keep_bf16_copies([Conv2d(8, 8, 4, 2, 1)], [], device=cpu, dtype=torch.bfloat16) == 0
    )  # small model
    laid_out = Conv2d(8, 8, 4, 2, 1).to(memory_format=torch.channels_last)  # the fused update reads flat weights
    assert bf16_copies.keep_bf16_copies([laid_out], [], device=cpu, dtype=torch.bfloat16, min_weights=0) == 0
    monkeypatch.setattr(bf16_copies, "bf16_kernel_works", lambda: False)  # e.g. no C++ compiler for the kernel
    assert (
        bf16_copies.keep_bf16_copies([Conv2d(8, 8, 4, 2, 1)], [], device=cpu, dtype=torch.bfloat16, min_weights=0) == 0
    )
