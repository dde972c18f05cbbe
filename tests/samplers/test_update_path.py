"""The in-place update of the unadjusted samplers equals the paper's formula written out of place, leaves the
input state untouched, and gives the differentiable (out-of-place) path the same values."""

import itertools

import pytest
import torch

from anila.energies import ConvNetEnergy
from anila.energies.base import energy_and_grad
from anila.samplers import AniLA, ChainState, Langevin, anila_gamma

VARIANTS = [dict(granularity=gr, gamma_update=up, noise_scaling=ns)
            for gr, up, ns in itertools.product(("elementwise", "pixel", "sample"), ("every_step", "per_iteration"),
                                                ("sqrt_gamma", "gamma"))]


def reference_chain(sampler, energy, x, num_steps, seed):
    """The documented update (docs/concepts.md), term by term: z' = z - h γ/2 g + ε sqrt(h γ) ξ (or ε sqrt(h) γ ξ)."""
    g_rng = torch.Generator().manual_seed(seed)
    frozen = None
    for _ in range(num_steps):
        _, grad = energy_and_grad(energy, x)
        if sampler.grad_clip is not None:
            grad = grad.clamp(-sampler.grad_clip, sampler.grad_clip)
        gamma = torch.ones_like(grad) if not isinstance(sampler, AniLA) else \
            anila_gamma(grad.clone(), sampler.threshold, sampler.granularity)
        if isinstance(sampler, AniLA) and sampler.gamma_update == "per_iteration":
            frozen = gamma if frozen is None else frozen
            gamma = frozen
        xi = torch.randn(x.shape, generator=g_rng, dtype=x.dtype)
        h, eps = sampler.step_size, sampler.noise_scale
        scaling = getattr(sampler, "noise_scaling", "sqrt_gamma")
        std = eps * (torch.sqrt(h * gamma) if scaling == "sqrt_gamma" else h**0.5 * gamma)
        x = x - h * gamma / 2 * grad + std * xi
        if sampler.clamp is not None:
            x = x.clamp(*sampler.clamp)
    return x


SAMPLERS = [AniLA(step_size=0.5, threshold=0.05, noise_scale=0.3, **v) for v in VARIANTS] + [
    Langevin(step_size=0.5, noise_scale=0.3, grad_clip=0.1, clamp=(-1.0, 1.0)),
    AniLA(step_size=0.5, threshold=0.05, noise_scale=0.3, grad_clip=0.08),
]


@pytest.mark.parametrize("sampler", SAMPLERS, ids=lambda s: repr(s)[:90])
def test_update_matches_the_formula_and_the_differentiable_path(sampler):
    torch.manual_seed(0)
    energy = ConvNetEnergy(2, 4, 8).double()
    x0 = torch.rand(3, 2, 8, 8, dtype=torch.float64) * 2 - 1
    expected = reference_chain(sampler, energy, x0, 3, seed=5)

    g = torch.Generator().manual_seed(5)
    state = ChainState.at(x0)
    for _ in range(3):
        state, _ = sampler.step(energy, state, g)
    assert torch.allclose(state.x, expected, atol=1e-12, rtol=1e-12)

    g = torch.Generator().manual_seed(5)
    state = ChainState.at(x0)
    for _ in range(3):
        state, _ = sampler.step(energy, state, g, create_graph=True)
    assert state.x.requires_grad and torch.allclose(state.x.detach(), expected, atol=1e-12, rtol=1e-12)


def test_the_input_state_is_left_untouched():
    torch.manual_seed(0)
    energy = ConvNetEnergy(1, 4, 8)
    start = ChainState.at(torch.rand(4, 1, 8, 8)).evaluated(energy)
    frozen = AniLA(threshold=0.01, gamma_update="per_iteration").step(energy, start)[0]
    copies = {name: getattr(s, name).clone() for s, name in ((start, "x"), (start, "grad"), (start, "energy"))}
    kept_gamma = frozen.extras["gamma"].clone()
    for sampler in (AniLA(threshold=0.01), AniLA(threshold=0.01, noise_scaling="gamma"), Langevin()):
        sampler.step(energy, start, torch.Generator().manual_seed(1))
    AniLA(threshold=0.01, gamma_update="per_iteration").step(energy, frozen, torch.Generator().manual_seed(1))
    for name, value in copies.items():
        assert torch.equal(getattr(start, name), value), name
    assert torch.equal(frozen.extras["gamma"], kept_gamma)
