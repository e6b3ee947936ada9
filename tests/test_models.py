import pytest
import torch
import torch.nn as nn

from pix2pix.models import DISCRIMINATORS, GENERATORS, build_discriminator, build_generator, init_weights, size_multiple
from pix2pix.models.generators import UnetGenerator


@pytest.mark.parametrize("name", GENERATORS.names())
@pytest.mark.parametrize("norm", ["batch", "instance", "none"])
def test_every_generator_forward_backward(name: str, norm: str) -> None:
    torch.manual_seed(0)
    g = build_generator(name, input_nc=1, output_nc=3, ngf=4, norm=norm)
    s = size_multiple(name) if name.startswith("unet") else 16
    x = torch.randn(2, 1, s, s)
    y = g(x)
    assert y.shape == (2, 3, s, s)
    assert y.abs().max() <= 1.0  # Tanh output
    y.mean().backward()
    grads = [p.grad for p in g.parameters() if p.requires_grad]
    assert grads and all(gr is not None and torch.isfinite(gr).all() for gr in grads)
    assert any(gr.abs().sum() > 0 for gr in grads)


@pytest.mark.parametrize("name", DISCRIMINATORS.names())
@pytest.mark.parametrize("n_layers", [1, 3])
def test_every_discriminator_forward_backward(name: str, n_layers: int) -> None:
    d = build_discriminator(name, input_nc=6, ndf=4, n_layers=n_layers, norm="batch")
    x = torch.randn(2, 6, 64, 64, requires_grad=True)
    y = d(x)
    assert y.shape[:2] == (2, 1)
    y.mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is not None for p in d.parameters())


def test_patchgan_70_receptive_field_output_shape() -> None:
    # The paper's 70x70 PatchGAN gives a 30x30 map on 256x256 inputs; pixel keeps the full size.
    assert build_discriminator("patch", input_nc=6, n_layers=3)(torch.zeros(1, 6, 256, 256)).shape == (1, 1, 30, 30)
    assert build_discriminator("pixel", input_nc=6)(torch.zeros(1, 6, 32, 32)).shape == (1, 1, 32, 32)


@pytest.mark.parametrize("norm", ["batch", "instance"])
def test_pixel_discriminator_channels_last_path_matches_plain_layers(norm: str) -> None:
    # Converted for CPU training (cpu.convert), the pixel D runs its 1x1 convolutions on channels_last
    # activations: the same scores, input gradients, weight gradients and batch-norm running
    # statistics as the plain NCHW layers.
    from pix2pix import cpu

    results = []
    for fast in (True, False):
        torch.manual_seed(0)
        d = build_discriminator("pixel", input_nc=6, ndf=8, norm=norm).train()
        if fast:
            d = cpu.convert(d)
        x = (torch.rand(3, 6, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 - 1).requires_grad_(True)
        seen = []
        d.model[2].register_forward_pre_hook(lambda m, args, seen=seen: seen.append(args[0].is_contiguous()))
        score = d(x) if fast else d.model(x)
        assert seen == [not fast]  # the inner activations are channels_last on the fast path only
        (score * torch.linspace(-1, 1, score.numel()).view_as(score)).sum().backward()
        results.append([score.detach().contiguous(), x.grad, *(q.grad for q in d.parameters()), *d.buffers()])
    assert any(r.abs().sum() > 0 for r in results[0][2:])
    for got, want in zip(*results):
        torch.testing.assert_close(got.contiguous(), want.contiguous(), atol=1e-4, rtol=1e-3)


@pytest.mark.parametrize("norm", ["batch", "instance"])
def test_patch_discriminator_runs_channels_last_on_cpu_and_matches_plain_layers(norm: str) -> None:
    # Converted for CPU training (cpu.convert), the PatchGAN runs in channels_last: its input,
    # activations and weights; the head multiplies the channels_last rows. Same scores, input and
    # weight gradients and running statistics as NCHW layers; the generator's layout is left as it is.
    from pix2pix import cpu

    assert all(p.is_contiguous() for p in cpu.convert(build_generator("unet_32", ngf=4)).parameters())
    results = []
    for fast in (True, False):
        torch.manual_seed(0)
        d = build_discriminator("patch", input_nc=6, ndf=8, n_layers=2, norm=norm).train()
        if fast:
            d = cpu.convert(d)
        conv = d.model[2]
        assert conv.weight.is_contiguous(memory_format=torch.channels_last) == fast
        x = (torch.rand(2, 6, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1).requires_grad_(True)
        seen = []
        conv.register_forward_pre_hook(lambda m, args, seen=seen: seen.append(args[0].is_contiguous()))
        score = d(x) if fast else d.model(x)
        assert seen == [not fast]
        (score * torch.linspace(-1, 1, score.numel()).view_as(score)).sum().backward()
        results.append([score.detach(), x.grad, *(q.grad for q in d.parameters()), *d.buffers()])
    assert all(r.abs().sum() > 0 for r in results[0][:-1])
    for got, want in zip(*results):
        torch.testing.assert_close(got.contiguous(), want.contiguous(), atol=1e-5, rtol=1e-4)


def test_unet_depth_from_name_and_paper_parameter_count() -> None:
    for size in (32, 64, 128, 256):
        g = build_generator(f"unet_{size}", ngf=4)
        assert len(g.downs) == size.bit_length() - 1
    # unet_256 with ngf 64 and batch norm has exactly the reference implementation's parameters.
    assert sum(p.numel() for p in build_generator("unet_256").parameters()) == 54_413_955


def test_unet_bottleneck_is_1x1_and_dropout_in_three_innermost_decoders() -> None:
    g = UnetGenerator(num_downs=8, ngf=4)
    h = torch.zeros(1, 3, 256, 256)
    for down in g.downs:
        h = down(h)
    assert h.shape[-2:] == (1, 1)
    with_dropout = [i for i, up in enumerate(g.ups) if any(isinstance(m, nn.Dropout) for m in up)]
    assert with_dropout == [5, 6, 7]
    assert not any(isinstance(m, nn.Dropout) for m in UnetGenerator(num_downs=8, ngf=4, dropout=False).modules())


def test_resnet_generators_have_their_block_counts_and_reflect_padding() -> None:
    for n in (6, 9):
        g = build_generator(f"resnet_{n}blocks", ngf=4)
        blocks = [m for m in g.modules() if type(m).__name__ == "ResnetBlock"]
        assert len(blocks) == n
        assert any(isinstance(m, nn.ReflectionPad2d) for m in g.modules())


def test_unknown_names_list_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="unknown generator 'unet_99'.*unet_256"):
        build_generator("unet_99")
    with pytest.raises(ValueError, match="unknown discriminator 'huge'.*patch, pixel"):
        build_discriminator("huge")


@pytest.mark.parametrize("init_type", ["normal", "xavier", "kaiming", "orthogonal"])
def test_init_types(init_type: str) -> None:
    torch.manual_seed(0)
    g = build_generator("unet_32", ngf=8)
    init_weights(g, init_type, 0.02)
    w = g.downs[1][1].weight.detach()
    assert w.std() > 0
    if init_type == "normal":
        assert abs(w.std().item() - 0.02) < 0.004
        assert abs(w.mean().item()) < 0.003
    with pytest.raises(ValueError, match="unknown init_type 'uniform'"):
        init_weights(g, "uniform")


def test_determinism_same_seed_same_weights_and_outputs() -> None:
    outs = []
    for _ in range(2):
        torch.manual_seed(3)
        g = build_generator("unet_32", ngf=8)
        init_weights(g)
        g.eval()
        outs.append(g(torch.ones(1, 3, 32, 32)))
    assert torch.equal(outs[0], outs[1])
