"""Exact-value tests of the Langevin core: closed-form stationary variance, the AniLA formula on hand-computed
gradients for each granularity, and the huge-threshold identity with Langevin."""

import math

import pytest
import torch

from anila.energies import Gaussian, MLPEnergy
from anila.samplers import MALA, AniLA, ChainState, Langevin, MetropolisAniLA, anila_gamma, run_chains


class Linear:
    """``E(x) = <c, x>`` per sample: a constant, hand-chosen gradient ``c``."""

    def __init__(self, c):
        self.c = c

    def __call__(self, x):
        return (x * self.c).flatten(1).sum(1)


@pytest.mark.parametrize("step_size,noise_scale,sigma", [(0.5, 1.0, 1.0), (0.8, 0.3, 1.0), (1.5, 1.0, 1.0)])
def test_unadjusted_langevin_stationary_variance_matches_discrete_chain(step_size, noise_scale, sigma):
    # E = x²/(2σ²): x' = a x + τ sqrt(h) ξ with a = 1 - h/(2σ²), so Var∞ = τ² h / (1 - a²), which differs
    # from the continuous-time σ²τ² by O(h): the test sees the discretisation, not just the target.
    h, tau = step_size, noise_scale
    a = 1 - h / (2 * sigma**2)
    expected = tau**2 * h / (1 - a**2)
    target = Gaussian.isotropic(1, sigma).double()
    n = 200_000
    x0 = torch.zeros(n, 1, dtype=torch.float64)
    steps = math.ceil(math.log(1e-12) / math.log(abs(a)))  # bias a^(2·steps) below 1e-24
    g = torch.Generator().manual_seed(0)
    x = run_chains(Langevin(step_size=h, noise_scale=tau), target, x0, steps, generator=g).x
    var = x.var().item()
    # n independent N(0, v) draws: the sample variance has relative sd sqrt(2/n) = 0.32 %; allow 4 sd.
    assert abs(var / expected - 1) < 4 * math.sqrt(2 / n)
    assert abs(x.mean().item()) < 4 * math.sqrt(expected / n)
    assert abs(expected / (tau**2 * sigma**2) - 1) > 0.03  # the continuous-time value would fail


def test_anila_gamma_elementwise_by_hand():
    g = torch.tensor([[0.5, -4.0, 2.0, 0.1]])
    assert torch.allclose(anila_gamma(g, 1.0), torch.tensor([[1.0, 0.25, 0.5, 1.0]]))


def test_anila_gamma_pixel_by_hand():
    g = torch.zeros(1, 2, 1, 2)
    g[0, :, 0, 0] = torch.tensor([3.0, 4.0])  # |g| = 5 at pixel 0
    g[0, :, 0, 1] = torch.tensor([0.3, 0.4])  # |g| = 0.5 at pixel 1
    gamma = anila_gamma(g, 1.0, "pixel")
    assert gamma.shape == (1, 1, 1, 2)
    assert torch.allclose(gamma.flatten(), torch.tensor([0.2, 1.0]))


def test_anila_gamma_sample_by_hand():
    g = torch.tensor([[3.0, 4.0], [0.3, 0.4]])  # per-sample norms 5 and 0.5
    assert torch.allclose(anila_gamma(g, 2.0, "sample"), torch.tensor([[0.4], [1.0]]))
    with pytest.raises(ValueError, match="pixel"):
        anila_gamma(g, 2.0, "pixel")


@pytest.mark.parametrize("granularity,gamma", [
    ("elementwise", [[1.0, 0.25, 0.5, 1.0]]),
    ("sample", [[1.0 / math.sqrt(0.25 + 16 + 4 + 0.01)] * 4]),
])
@pytest.mark.parametrize("noise_scaling", ["sqrt_gamma", "gamma"])
def test_anila_step_matches_paper_formula(granularity, gamma, noise_scaling):
    c = torch.tensor([[0.5, -4.0, 2.0, 0.1]], dtype=torch.float64)
    gamma = torch.tensor(gamma, dtype=torch.float64)
    h, eps = 0.8, 0.3
    x = torch.tensor([[1.0, -2.0, 0.5, 3.0]], dtype=torch.float64)
    sampler = AniLA(step_size=h, noise_scale=eps, threshold=1.0, granularity=granularity,
                    noise_scaling=noise_scaling)
    out, _ = sampler.step(Linear(c), ChainState.at(x), torch.Generator().manual_seed(3))
    xi = torch.randn(x.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    noise_std = eps * (torch.sqrt(h * gamma) if noise_scaling == "sqrt_gamma" else math.sqrt(h) * gamma)
    expected = x - h * gamma / 2 * c + noise_std * xi
    assert torch.allclose(out.x, expected, atol=1e-12, rtol=0)


def test_per_iteration_gamma_is_frozen_at_the_first_step():
    c1 = torch.tensor([[4.0, 0.5]])
    sampler = AniLA(step_size=1.0, noise_scale=0.0, threshold=1.0, gamma_update="per_iteration")
    state, _ = sampler.step(Linear(c1), ChainState.at(torch.zeros(1, 2)))
    assert torch.equal(state.extras["gamma"], torch.tensor([[0.25, 1.0]]))
    # A different gradient at the second step: γ stays the first step's.
    state2, _ = sampler.step(Linear(torch.tensor([[0.5, 8.0]])), state)
    assert torch.allclose(state2.x - state.x, -0.5 * torch.tensor([[0.25 * 0.5, 8.0]]))


@pytest.mark.parametrize("pair", [(Langevin, AniLA), (MALA, MetropolisAniLA)])
def test_huge_threshold_gives_exactly_the_langevin_chain(pair):
    torch.manual_seed(0)
    energy = MLPEnergy(dim=2, width=32, depth=3)
    x0 = 2 * torch.randn(64, 2)
    plain = pair[0](step_size=0.05, noise_scale=0.7)
    anisotropic = pair[1](step_size=0.05, noise_scale=0.7, threshold=1e30)
    a = run_chains(plain, energy, x0, 30, generator=torch.Generator().manual_seed(1), record_trajectory=True)
    b = run_chains(anisotropic, energy, x0, 30, generator=torch.Generator().manual_seed(1),
                   record_trajectory=True)
    assert torch.equal(a.trajectory, b.trajectory)
