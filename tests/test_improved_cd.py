"""Improved contrastive divergence (Du et al. 2021): the KL term's frozen-energy gradient, the nearest-neighbour
entropy and its bank, augmentation transitions with Algorithm 2, and the EMA of weights."""

import pytest
import torch
from torch import nn

from anila.chains.augment import Augmentation, augment_every_n
from anila.energies import MLPEnergy
from anila.objectives.improved_cd import NearestNeighbourBank, kl_term, nearest_neighbour_entropy
from anila.samplers import Langevin, run_chains
from anila.train.ema import EMA


class Quadratic(nn.Module):
    """``E_θ(x) = ½ θ ||x||²`` with a learnable scalar θ."""

    def __init__(self, theta: float):
        super().__init__()
        self.theta = nn.Parameter(torch.tensor(theta, dtype=torch.float64))

    def forward(self, x):
        return 0.5 * self.theta * x.pow(2).flatten(1).sum(1)


# --- KL term ------------------------------------------------------------------------------------------------


def test_kl_term_gradient_flows_only_through_the_sample():
    theta, h = 0.7, 0.3
    energy = Quadratic(theta)
    x0 = torch.randn(16, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    # One noiseless Langevin step kept differentiable: x_last = x0 - h/2 ∇E_θ(x0) = x0 (1 - hθ/2).
    x_last = run_chains(Langevin(step_size=h, noise_scale=0.0), energy, x0, 1, differentiable_last_step=True).x
    torch.testing.assert_close(x_last.detach(), x0 * (1 - h * theta / 2))

    loss, metrics = kl_term(energy, x_last)
    loss.backward()

    # dL/dθ with θ frozen inside E: mean_i ∇x E(x_last_i) · dx_last_i/dθ = mean_i θ x_last_i · (-h/2 x0_i).
    x_hat = x0 * (1 - h * theta / 2)
    frozen = (theta * x_hat * (-h / 2) * x0).sum(1).mean()
    direct = (0.5 * x_hat.pow(2).sum(1)).mean()  # ∂E_θ(x)/∂θ at fixed x: must not appear
    torch.testing.assert_close(energy.theta.grad, frozen)
    assert abs(direct.item()) > 0.1 and not torch.allclose(energy.theta.grad, frozen + direct)
    torch.testing.assert_close(metrics["kl_energy"], (0.5 * theta * x_hat.pow(2).sum(1)).mean())
    torch.testing.assert_close(loss.detach(), metrics["kl_energy"])  # the value is mean E(x̂), exactly
    assert metrics["entropy"] == 0 and not metrics["kl_energy"].requires_grad
    assert all(p.requires_grad for p in energy.parameters())  # the live module was never frozen


def test_kl_term_matches_functional_call_with_detached_parameters():
    torch.manual_seed(0)
    energy = MLPEnergy(dim=2, width=16, depth=2, activation="softplus").double()
    x0 = torch.randn(32, 2, dtype=torch.float64)
    g = torch.Generator().manual_seed(1)
    x_last = run_chains(Langevin(step_size=1.0), energy, x0, 3, generator=g, differentiable_last_step=True).x
    params = dict(energy.named_parameters())
    frozen = {name: p.detach() for name, p in params.items()}
    reference = torch.func.functional_call(energy, frozen, (x_last,)).mean()
    # The read-out bias moves neither ∇x E nor x_last: unused in both graphs (gradient zero).
    expected = torch.autograd.grad(reference, list(params.values()), retain_graph=True, allow_unused=True)
    loss, _ = kl_term(energy, x_last)
    got = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
    assert sum(a is not None and a.abs().max() > 1e-5 for a in got) >= len(got) - 1
    for a, b, p in zip(got, expected, params.values(), strict=True):
        zero = torch.zeros_like(p)
        torch.testing.assert_close(zero if a is None else a, zero if b is None else b, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(loss.detach(), reference.detach())


def test_kl_term_rejects_detached_samples_and_adds_weighted_entropy():
    energy = Quadratic(1.0)
    with pytest.raises(ValueError, match="differentiable_last_step"):
        kl_term(energy, torch.randn(4, 2, dtype=torch.float64))
    x = torch.randn(8, 2, dtype=torch.float64, requires_grad=True)
    bank = torch.randn(20, 2, dtype=torch.float64)
    plain, _ = kl_term(energy, x)
    loss, metrics = kl_term(energy, x, entropy_samples=bank, entropy_weight=0.3)
    torch.testing.assert_close(metrics["entropy"], nearest_neighbour_entropy(x, bank).detach())
    torch.testing.assert_close(loss.detach(), plain.detach() - 0.3 * metrics["entropy"])
    with pytest.raises(ValueError, match="event"):
        kl_term(energy, x, entropy_samples=torch.randn(20, 3))


# --- nearest-neighbour entropy and its bank -----------------------------------------------------------------


def test_nearest_neighbour_entropy_grows_with_scale():
    g = torch.Generator().manual_seed(0)
    values = []
    for sigma in (0.25, 0.5, 1.0, 2.0, 4.0):
        x, bank = sigma * torch.randn(64, 4, generator=g), sigma * torch.randn(100, 4, generator=g)
        values.append(nearest_neighbour_entropy(x, bank).item())
    assert all(b > a + 0.3 for a, b in zip(values, values[1:], strict=False)), values  # ≈ +log 2 per doubling


def test_entropy_gradient_pushes_samples_apart():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 3, 4, 4, generator=g).requires_grad_(True)
    bank = torch.randn(100, 3, 4, 4, generator=g)

    def mean_nn_distance(points):
        return torch.cdist(points.flatten(1), bank.flatten(1)).min(1).values.mean()

    loss = -nearest_neighbour_entropy(x, bank)  # the entropy half of L_KL
    (grad,) = torch.autograd.grad(loss, x)
    assert torch.isfinite(grad).all()
    moved = x.detach() - 0.5 * grad  # one gradient-descent step on the loss
    assert mean_nn_distance(moved) > mean_nn_distance(x.detach()) + 1e-3


def test_entropy_is_finite_when_a_sample_sits_on_the_bank():
    bank = torch.randn(10, 2)
    x = bank[:4].clone().requires_grad_(True)
    value = nearest_neighbour_entropy(x, bank)
    (grad,) = torch.autograd.grad(value, x)
    assert torch.isfinite(value) and torch.isfinite(grad).all()


def test_nearest_neighbour_bank_keeps_the_latest_samples_in_order():
    bank = NearestNeighbourBank(size=5)
    assert len(bank) == 0 and bank.tensor() is None
    batches = [torch.arange(3.0).view(3, 1) + 10 * i for i in range(3)]
    for b in batches:
        bank.push(b)
    torch.testing.assert_close(bank.tensor(), torch.cat(batches)[-5:])
    bank.push(torch.arange(7.0).view(7, 1))  # a batch bigger than the bank: its last rows
    torch.testing.assert_close(bank.tensor(), torch.arange(2.0, 7.0).view(5, 1))
    with pytest.raises(ValueError, match="event shape"):
        bank.push(torch.zeros(2, 3))

    restored = NearestNeighbourBank(size=5)
    restored.load_state_dict(bank.state_dict())
    torch.testing.assert_close(restored.tensor(), bank.tensor())
    empty = NearestNeighbourBank(size=5)
    empty.load_state_dict(NearestNeighbourBank(size=5).state_dict())
    assert empty.tensor() is None
    state = bank.state_dict()
    state["samples"].zero_()
    assert bank.tensor().abs().sum() > 0  # state_dict holds a copy


def test_bank_default_size_is_the_papers():
    assert NearestNeighbourBank().size == 100


# --- augmentation transitions --------------------------------------------------------------------------------


@pytest.mark.parametrize("channels", [1, 3])
def test_augmentation_keeps_shape_dtype_and_range(channels):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(6, channels, 12, 12, generator=g) * 2 - 1
    for dtype in (torch.float32, torch.float64):
        out = Augmentation()(x.to(dtype), generator=g)
        assert out.shape == x.shape and out.dtype == dtype
        assert out.min() >= -1 and out.max() <= 1 and torch.isfinite(out).all()


def test_augmentation_is_deterministic_under_a_generator_and_leaves_global_rng_alone():
    x = torch.rand(6, 3, 12, 12, generator=torch.Generator().manual_seed(0)) * 2 - 1
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a = Augmentation()(x, generator=torch.Generator().manual_seed(7))
    assert torch.equal(torch.random.get_rng_state(), before)
    torch.manual_seed(999)  # a different global state must not matter
    b = Augmentation()(x, generator=torch.Generator().manual_seed(7))
    c = Augmentation()(x, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert not torch.equal(a, x)


def test_flip_only_equals_torch_flip():
    x = torch.rand(4, 3, 6, 5) * 2 - 1
    flip = Augmentation(flip=1.0, color_jitter=None, resized_crop=None, blur=None)
    torch.testing.assert_close(flip(x, generator=torch.Generator().manual_seed(0)), torch.flip(x, dims=[-1]))
    nothing = Augmentation(flip=0.0, color_jitter=None, resized_crop=None, blur=None)
    assert torch.equal(nothing(x), x)


def test_augmentation_validates_its_fields():
    with pytest.raises(ValueError, match="flip"):
        Augmentation(flip=True)
    with pytest.raises(ValueError, match="blur"):
        Augmentation(blur=(4, 0.1, 2.0))
    with pytest.raises(ValueError, match="resized_crop"):
        Augmentation(resized_crop=(0.5, 0.1))
    assert Augmentation(resized_crop=[0.5, 1.0]).resized_crop == (0.5, 1.0)  # lists from configs
    with pytest.raises(ValueError, match="B, C, H, W"):
        Augmentation()(torch.zeros(4, 2))


def test_augment_every_n_runs_algorithm_2_deterministically():
    energy = MLPEnergy(dim=1 * 8 * 8, width=8, depth=1)
    x0 = torch.rand(5, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    sampler = Langevin(step_size=0.01, clamp=(-1.0, 1.0))

    def run(seed):
        return augment_every_n(sampler, energy, x0, num_steps=7, every=3, augmentation=Augmentation(),
                               generator=torch.Generator().manual_seed(seed))

    a, b, c = run(0), run(0), run(1)
    assert a.shape == x0.shape and not a.requires_grad
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(augment_every_n(sampler, energy, x0, 0, 3, Augmentation()), x0)
    with pytest.raises(ValueError, match="every"):
        augment_every_n(sampler, energy, x0, 5, 0, Augmentation())


# --- EMA --------------------------------------------------------------------------------------------------------


def test_ema_update_is_the_convex_combination():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 1))
    model(torch.randn(8, 3)).sum().backward()  # gives the model .grad, which the shadow must not copy
    decay = 0.9
    ema = EMA(model, decay=decay)
    p0 = {k: v.detach().clone() for k, v in model.named_parameters()}
    assert all(not p.requires_grad and p.grad is None for p in ema.shadow.parameters())
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))
        model[1].running_mean.add_(1.0)
    ema.update(model)
    for name, p1 in model.named_parameters():
        torch.testing.assert_close(dict(ema.shadow.named_parameters())[name], decay * p0[name] + (1 - decay) * p1)
    torch.testing.assert_close(ema.shadow[1].running_mean, model[1].running_mean)  # buffers copied
    assert all(not p.requires_grad and p.grad is None for p in ema.shadow.parameters())
    assert all(p.requires_grad for p in model.parameters())

    restored = EMA(model, decay=decay)
    restored.load_state_dict(ema.state_dict())
    for (_, a), (_, b) in zip(restored.shadow.state_dict().items(), ema.shadow.state_dict().items(), strict=True):
        assert torch.equal(a, b)
    assert all(not p.requires_grad for p in restored.shadow.parameters())
    with pytest.raises(ValueError, match="do not match"):
        ema.update(nn.Linear(3, 1))
