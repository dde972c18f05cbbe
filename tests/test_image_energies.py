"""Image energies: shapes for every supported size, options wired in, and the identities they promise."""

import pytest
import torch

from anila.energies import (
    ClassConditionalEnergy,
    ConvNetEnergy,
    MultiScaleEnergy,
    NoiseConditionalConvNet,
    ResNetEnergy,
    energy_and_grad,
)


@pytest.mark.parametrize("size,channels", [(8, 1), (16, 1), (28, 1), (32, 3)])
def test_convnet_and_resnet_shapes(size, channels):
    x = torch.randn(3, channels, size, size)
    for energy in (ConvNetEnergy(channels, 8, size), ResNetEnergy(channels, 8, 3, image_size=size)):
        e, g = energy_and_grad(energy, x)
        assert e.shape == (3,) and g.shape == x.shape and torch.isfinite(g).all()


def test_convnet_matches_the_short_run_ebm_cifar_layout():
    convs = [m for m in ConvNetEnergy(3, 64, 32).modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size[0], c.stride[0]) for c in convs] == [
        (3, 64, 3, 1), (64, 128, 4, 2), (128, 256, 4, 2), (256, 512, 4, 2), (512, 1, 4, 1)]


def test_resnet_options_are_wired_in():
    plain = ResNetEnergy(3, 8, 2)
    full = ResNetEnergy(3, 8, 2, spectral_norm=True, self_attention=True, layer_norm=True)
    names = {type(m).__name__ for m in full.modules()}
    assert {"_SelfAttention", "GroupNorm"} <= names
    assert "_SelfAttention" not in {type(m).__name__ for m in plain.modules()}
    assert any("parametrizations" in n for n, _ in full.named_parameters())


def test_multiscale_energy_is_the_sum_over_scales():
    torch.manual_seed(0)
    energy = MultiScaleEnergy(lambda s: ConvNetEnergy(3, 4, s), image_size=16)
    x = torch.randn(2, 3, 16, 16)
    expected = sum(e(torch.nn.functional.avg_pool2d(x, s)) for s, e in zip((1, 2, 4), energy.energies, strict=True))
    assert torch.allclose(energy(x), expected)
    with pytest.raises(ValueError, match=r"scales must be positive divisors of image_size 18; got \(1, 4\)"):
        MultiScaleEnergy(lambda s: ConvNetEnergy(3, 4, s), image_size=18, scales=(1, 4))


def test_class_conditional_energy_marginalises_with_logsumexp():
    energy = ClassConditionalEnergy(num_classes=4, in_channels=1, width=8, num_blocks=2, image_size=16)
    x = torch.randn(5, 1, 16, 16)
    per_class = torch.stack([energy.conditional(x, torch.full((5,), k)) for k in range(4)], 1)
    assert torch.allclose(energy(x), -torch.logsumexp(-per_class, 1), atol=1e-5)


@pytest.mark.parametrize("size,channels", [(8, 1), (16, 1), (28, 1), (32, 3)])
def test_noise_conditional_convnet_shapes_and_gradients(size, channels):
    torch.manual_seed(0)
    energy = NoiseConditionalConvNet(channels, 8, size)
    x, sigma = torch.randn(3, channels, size, size), torch.tensor([0.05, 0.3, 0.9])
    e, g = energy_and_grad(lambda z: energy(z, sigma), x)
    assert e.shape == (3,) and g.shape == x.shape and torch.isfinite(g).all() and g.abs().sum() > 0
    convs = [m for m in energy.modules() if isinstance(m, torch.nn.Conv2d)]  # the ConvNet's layout, FiLM aside
    assert [(c.in_channels, c.out_channels) for c in convs] == [
        (c.in_channels, c.out_channels) for c in ConvNetEnergy(channels, 8, size).modules()
        if isinstance(c, torch.nn.Conv2d)]


def test_noise_conditional_convnet_conditions_on_sigma_row_by_row():
    """At initialisation the FiLM read-out is zero, so ``σ E(x, σ)`` is free of σ; one optimizer step on a loss
    that depends on σ makes it depend on σ (the conditioning path carries gradient), and each row only ever sees
    its own σ."""
    torch.manual_seed(0)
    energy = NoiseConditionalConvNet(1, 8, 8)
    x = torch.randn(4, 1, 8, 8)
    low, high = torch.full((4,), 0.1), torch.full((4,), 0.8)
    assert torch.allclose(0.1 * energy(x, low), 0.8 * energy(x, high), atol=1e-6)
    optimizer = torch.optim.SGD(energy.parameters(), lr=0.1)
    (energy(x, low).mean() - energy(x, high).mean()).backward()
    film = energy.embed[-1].weight
    assert film.grad is not None and film.grad.abs().sum() > 0
    optimizer.step()
    assert not torch.allclose(0.1 * energy(x, low), 0.8 * energy(x, high), atol=1e-4)
    mixed = torch.tensor([0.1, 0.8, 0.1, 0.8])
    rows = torch.cat([energy(x[i:i + 1], mixed[i:i + 1]) for i in range(4)])
    assert torch.allclose(energy(x, mixed), rows, atol=1e-5)
    with pytest.raises(ValueError, match="embed_width must be >= 1"):
        NoiseConditionalConvNet(1, 8, 8, embed_width=0)
