"""MCMC diagnostics against the AR(1) process and direct (loop) implementations.

The AR(1) chain ``x_t = φ x_{t-1} + sqrt(1-φ²) ε_t`` started from N(0, 1) is stationary with unit variance,
autocorrelation ``φ^t`` and integrated autocorrelation time ``τ = (1+φ)/(1-φ)``: the ESS of the mean over
``M`` chains of ``N`` draws is ``MN (1-φ)/(1+φ)``, and ``E (x_{t+1} - x_t)² = 2(1-φ)``.
Tolerances come from the estimators' spread over development seeds (recorded next to each test); then one
seed is fixed.
"""

import math

import pytest
import torch

from anila.energies import Gaussian
from anila.metrics import (
    acceptance_rate,
    autocorrelation,
    effective_sample_size,
    mean_squared_jump,
    split_rhat,
    trajectory_to_chains,
)
from anila.samplers import MALA, run_chains

PHIS = (0.0, 0.5, 0.9)


def ar1(phis, chains, draws, seed):
    """Stationary AR(1) chains, one per coefficient: ``(chains, draws, len(phis))`` in float64."""
    g = torch.Generator().manual_seed(seed)
    phi = torch.tensor(phis, dtype=torch.float64)
    noise = torch.randn(draws, chains, len(phis), generator=g, dtype=torch.float64)
    scale = torch.sqrt(1 - phi**2)
    x = torch.empty_like(noise)
    x[0] = noise[0]
    for t in range(1, draws):
        x[t] = phi * x[t - 1] + scale * noise[t]
    return x.movedim(0, 1)


def reference_ess(x):
    """The documented estimator for one quantity ``x (M, N)``, written with loops and direct sums."""
    m, n = x.shape
    means = x.mean(1)
    acov = torch.stack([torch.stack([((x[c, : n - t] - means[c]) * (x[c, t:] - means[c])).sum() / n
                                     for t in range(n)]) for c in range(m)])
    w = (acov[:, 0] * n / (n - 1)).mean()
    var_plus = (n - 1) / n * w + (means.var() if m > 1 else 0.0)
    rho = [1.0] + [float(1 - (w - acov[:, t].mean()) / var_plus) for t in range(1, n)]
    total, previous = 0.0, math.inf
    for k in range(n // 2):
        pair = rho[2 * k] + rho[2 * k + 1]
        if pair <= 0:
            break
        previous = min(previous, pair)
        total += previous
    return m * n / max(-1 + 2 * total, 1 / math.log10(m * n))


def test_autocorrelation_matches_direct_sum():
    x = torch.randn(2, 50, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    rho = autocorrelation(x)
    centred = x - x.mean(1, keepdim=True)
    direct = torch.stack([(centred[:, : 50 - t] * centred[:, t:]).sum(1) for t in range(50)], dim=1)
    assert rho.shape == x.shape
    torch.testing.assert_close(rho, direct / direct[:, :1])


@pytest.mark.parametrize("chains", [1, 3])
def test_ess_matches_loop_reference(chains):
    x = ar1((0.0, 0.6, -0.3), chains, 80, seed=1)  # φ < 0: antithetic, ESS > MN (hits the MN·log10(MN) cap)
    ess = effective_sample_size(x)
    expected = torch.tensor([reference_ess(x[..., j]) for j in range(3)], dtype=torch.float64)
    torch.testing.assert_close(ess, expected)


def test_ess_of_ar1_matches_theory():
    # M = 4 chains, N = 20000 draws; ESS / truth over 100 dev seeds: φ = 0: mean 0.995, sd 0.011, range
    # [0.958, 1.019]; φ = 0.5: mean 0.996, sd 0.023, [0.942, 1.047]; φ = 0.9: mean 0.990, sd 0.047, [0.851, 1.097].
    # Tolerances ≈ 5 sd. (At N = 5000 the sds were 0.020, 0.037, 0.076.)
    chains, draws = 4, 20000
    x = ar1(PHIS, chains, draws, seed=0)
    ess = effective_sample_size(x)
    truth = torch.tensor([chains * draws * (1 - p) / (1 + p) for p in PHIS], dtype=torch.float64)
    ratio = ess / truth
    for r, tol in zip(ratio.tolist(), (0.06, 0.12, 0.25), strict=True):
        assert abs(r - 1) < tol, ratio
    # trailing axes are separate quantities
    assert effective_sample_size(x[..., None]).shape == (3, 1)
    torch.testing.assert_close(effective_sample_size(x[..., 2]), ess[2])


def test_ess_of_constant_quantity_is_nan():
    assert torch.isnan(effective_sample_size(torch.ones(2, 10))).item()
    with pytest.raises(ValueError, match="4 draws"):
        effective_sample_size(torch.zeros(2, 3))


def test_split_rhat():
    # Stationary AR(1), M = 4, N = 20000, 100 dev seeds: max R̂ 1.00008 (φ = 0), 1.0004 (0.5), 1.0024 (0.9).
    x = ar1(PHIS, 4, 20000, seed=0)
    rhat = split_rhat(x)
    assert rhat.shape == (3,) and (rhat < 1.01).all() and (rhat > 0.99).all()
    # one chain shifted by 2 sd: var⁺/W ≈ 1 + var(means) = 2, so R̂ ≈ 1.4
    shifted = ar1((0.5,), 4, 2000, seed=1)[..., 0] + torch.tensor([0.0, 0.0, 0.0, 2.0])[:, None]
    assert split_rhat(shifted) > 1.1
    # a single drifting chain: the two halves disagree, which only the split detects
    drift = ar1((0.5,), 1, 2000, seed=2)[..., 0] + torch.linspace(0, 3, 2000, dtype=torch.float64)
    assert split_rhat(drift) > 1.1


def test_mean_squared_jump_of_ar1():
    # (steps + 1, chains) = (20000, 4): MSJD / 2(1-φ) had sd 0.005-0.006 over 100 dev seeds, max deviation 0.019.
    x = ar1(PHIS, 4, 20000, seed=3)
    for j, phi in enumerate(PHIS):
        trajectory = x[..., j].T  # (steps + 1, chains)
        assert mean_squared_jump(trajectory) == pytest.approx(2 * (1 - phi), rel=0.03)
    # event dims are summed: two independent coordinates double it
    both = x[..., :2].movedim(1, 0)  # (steps + 1, chains, 2) with φ = 0 and 0.5
    assert mean_squared_jump(both) == pytest.approx(2 * 1.0 + 2 * 0.5, rel=0.03)


def test_acceptance_rate_and_validation():
    assert acceptance_rate(torch.tensor([[1.0, 0.5], [0.0, 0.5]])) == pytest.approx(0.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        acceptance_rate(torch.tensor([[1.5]]))
    with pytest.raises(ValueError, match="2 states"):
        mean_squared_jump(torch.zeros(1, 4, 2))


def test_run_chains_trajectory_layout():
    g = torch.Generator().manual_seed(0)
    target = Gaussian.isotropic(2)
    result = run_chains(MALA(step_size=0.5), target, target.sample(8, generator=g), 60, generator=g,
                        record_trajectory=True, record_info=True)
    chains = trajectory_to_chains(result.trajectory)
    assert result.trajectory.shape == (61, 8, 2) and chains.shape == (8, 61, 2)
    torch.testing.assert_close(chains[3, 10], result.trajectory[10, 3])
    assert effective_sample_size(chains).shape == (2,) and split_rhat(chains).shape == (2,)
    assert 0 < acceptance_rate(result.info["accept_prob"]) <= 1
    assert mean_squared_jump(result.trajectory) > 0
    assert trajectory_to_chains(torch.zeros(5, 3)).shape == (3, 5, 1)
