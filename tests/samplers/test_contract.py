"""The contract every sampler keeps: one step signature, frozen inspectable hyperparameters, shapes, dtype
and device kept, the generator fully determines the chain, no gradient left on the energy's parameters,
and an optional differentiable last step."""

import dataclasses
import inspect

import pytest
import torch

from anila.energies import MLPEnergy
from anila.samplers import REGISTRY, ChainState, make, run_chains, sample_chains

# Every registered sampler, with its registry settings: a new sampler is covered by its registry line alone.
IDS = list(REGISTRY)
ALL = [make(name) for name in IDS]


class ConvEnergy(torch.nn.Module):
    """A small image energy, to check the contract on (batch, C, H, W) states."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x):
        return torch.nn.functional.softplus(self.conv(x)).flatten(1).sum(1)


@pytest.mark.parametrize("sampler", ALL, ids=IDS)
def test_declared_protocol(sampler):
    assert isinstance(sampler.is_exact, bool) and isinstance(sampler.carries_gradient, bool)
    assert isinstance(sampler.gradients_per_step, int) and sampler.gradients_per_step >= 1
    assert all(isinstance(name, str) for name in sampler.carried)
    smaller = sampler.with_step_size(sampler.step_size / 2)
    assert type(smaller) is type(sampler) and smaller.step_size == sampler.step_size / 2


@pytest.mark.parametrize("sampler", ALL, ids=IDS)
def test_a_per_chain_step_size_tensor_matches_the_float(sampler):
    energy = MLPEnergy(dim=2, width=16, depth=2).double()
    x0 = torch.randn(6, 2, dtype=torch.float64)
    scalar = sample_chains(sampler, energy, x0, 4, generator=torch.Generator().manual_seed(3))
    per_chain = sampler.with_step_size(torch.full((6,), sampler.step_size, dtype=torch.float64))
    tensor = sample_chains(per_chain, energy, x0, 4, generator=torch.Generator().manual_seed(3))
    assert torch.allclose(scalar, tensor, atol=1e-10)
    # ... and chains with different steps move differently
    mixed = sampler.with_step_size(torch.tensor([1.0, 1, 1, 0.25, 0.25, 0.25], dtype=torch.float64)
                                   * sampler.step_size)
    moved = sample_chains(mixed, energy, x0, 4, generator=torch.Generator().manual_seed(3))
    assert torch.allclose(moved[:3], scalar[:3], atol=1e-10) and not torch.allclose(moved[3:], scalar[3:])


@pytest.mark.parametrize("sampler", ALL, ids=IDS)
def test_step_signature_and_frozen_hyperparameters(sampler):
    params = inspect.signature(sampler.step).parameters
    assert list(params)[:3] == ["energy", "state", "generator"]
    assert params["generator"].default is None
    assert {"create_graph", "collect_info"} <= set(params)
    assert dataclasses.is_dataclass(sampler)
    with pytest.raises(dataclasses.FrozenInstanceError):
        sampler.step_size = 1.0
    assert "step_size=" in repr(sampler)


@pytest.mark.parametrize("sampler", ALL, ids=IDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("image", [False, True], ids=["points", "images"])
def test_shapes_dtype_and_determinism(sampler, dtype, image):
    torch.manual_seed(0)
    energy = (ConvEnergy() if image else MLPEnergy(dim=2, width=16, depth=2)).to(dtype)
    x0 = torch.randn((5, 3, 4, 4) if image else (7, 2), dtype=dtype)
    out = sample_chains(sampler, energy, x0, 5, generator=torch.Generator().manual_seed(1))
    again = sample_chains(sampler, energy, x0, 5, generator=torch.Generator().manual_seed(1))
    other = sample_chains(sampler, energy, x0, 5, generator=torch.Generator().manual_seed(2))
    assert out.shape == x0.shape and out.dtype == dtype and out.device == x0.device
    assert torch.isfinite(out).all()
    assert torch.equal(out, again)
    assert not torch.equal(out, other)
    assert not torch.equal(out, x0)


@pytest.mark.parametrize("sampler", ALL, ids=IDS)
def test_no_gradient_reaches_parameters_and_output_is_detached(sampler):
    energy = MLPEnergy(dim=2, width=16, depth=2)
    x = sample_chains(sampler, energy, torch.randn(6, 2), 4, generator=torch.Generator().manual_seed(0))
    assert all(p.grad is None for p in energy.parameters())
    assert not x.requires_grad


@pytest.mark.parametrize("sampler", ALL, ids=IDS)
def test_differentiable_last_step_reaches_parameters(sampler):
    energy = MLPEnergy(dim=2, width=16, depth=2)
    x = sample_chains(sampler, energy, torch.randn(6, 2), 4, generator=torch.Generator().manual_seed(0),
                      differentiable_last_step=True)
    assert x.requires_grad
    x.pow(2).sum().backward()
    # The read-out bias does not enter ∇x E, so only weights are checked: the first layer's must move.
    first = energy.net[0].weight.grad
    assert first is not None and first.abs().sum() > 0


@pytest.mark.parametrize("sampler", ALL, ids=IDS)
def test_run_chains_records_trajectory_info_and_continues(sampler):
    energy = MLPEnergy(dim=2, width=16, depth=2)
    x0 = torch.randn(6, 2)
    full = run_chains(sampler, energy, x0, 6, generator=torch.Generator().manual_seed(0), record_trajectory=True,
                      thin=2, record_info=True)
    assert full.trajectory.shape == (4, 6, 2) and torch.equal(full.trajectory[0], x0)
    assert torch.equal(full.trajectory[-1], full.x)
    assert all(v.shape == (6, 6) for v in full.info.values()) and "grad_norm" in full.info
    if sampler.is_exact:
        assert ((full.info["accept_prob"] >= 0) & (full.info["accept_prob"] <= 1)).all()
        assert full.accept_rate.shape == (6,)
    # Continuing from the returned state equals one longer run (same generator stream).
    g = torch.Generator().manual_seed(0)
    half = run_chains(sampler, energy, x0, 3, generator=g)
    rest = run_chains(sampler, energy, half.state, 3, generator=g)
    assert torch.equal(rest.x, full.x)  # bit-identical: the state carries everything the chain needs
    assert isinstance(rest.state, ChainState)


@pytest.mark.parametrize("name,kwargs,match", [
    ("langevin", dict(step_size=-1.0), "step_size"),
    ("langevin", dict(noise_scale=-0.1), "noise_scale"),
    ("langevin", dict(clamp=(1.0, -1.0)), "clamp"),
    ("mala", dict(noise_scale=0.0), "noise_scale"),
    ("psgld", dict(alpha=1.0), "alpha"),
    ("psgld", dict(preconditioner_update="never"), "preconditioner_update"),
    ("underdamped", dict(friction=0.0), "friction"),
    ("parallel_tempering", dict(num_temperatures=1), "num_temperatures"),
    ("parallel_tempering", dict(max_temperature=0.5), "max_temperature"),
    ("parallel_tempering", dict(base="hmc"), "base"),
    ("langevin", dict(step_size=True), "step_size"),
    ("anila", dict(threshold=0.0), "threshold"),
    ("anila", dict(granularity="row"), "granularity"),
    ("anila", dict(gamma_update="sometimes"), "gamma_update"),
    ("anila", dict(noise_scaling="cube"), "noise_scaling"),
    ("hmc", dict(num_leapfrog_steps=0), "num_leapfrog_steps"),
    ("hmc", dict(mass=-1.0), "mass"),
])
def test_invalid_hyperparameters_raise_clear_errors(name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        REGISTRY[name].cls(**kwargs)


def test_state_clamp_keeps_chains_in_the_box():
    energy = MLPEnergy(dim=2, width=16, depth=2)
    x = sample_chains(REGISTRY["langevin"].cls(step_size=1.0, clamp=(-1.0, 1.0)), energy, 3 * torch.randn(50, 2), 3,
                      generator=torch.Generator().manual_seed(0))
    assert x.abs().max() <= 1.0


def test_an_integer_start_is_refused_with_the_fix():
    with pytest.raises(ValueError, match=r"floating-point tensor.*x0\.float\(\)"):
        sample_chains(make("langevin"), MLPEnergy(dim=2, width=8, depth=1), torch.zeros(4, 2, dtype=torch.long), 1)
