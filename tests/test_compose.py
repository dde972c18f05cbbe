"""Composed energies: exact formulas on Gaussians, and sampling the product of two Gaussians.

The product of ``N(m_a, S_a)`` and ``N(m_b, S_b)`` is ``N(m, S)`` with ``S = (S_a⁻¹ + S_b⁻¹)⁻¹`` and
``m = S (S_a⁻¹ m_a + S_b⁻¹ m_b)``. Chains of an exact sampler on the conjunction start from a wide Gaussian,
burn in, then their time averages of five moments are compared with the exact ones; the Monte Carlo standard
error is ``sd(per-chain time averages) / sqrt(chains)`` (independent chains, autocorrelation included).
``Z = 4.5``: over 30 development seeds per sampler the largest |z| seen is written next to the test.
"""

import pytest
import torch

from anila.energies import Gaussian
from anila.energies.compose import Conjunction, Disjunction, Negation, compose
from anila.samplers import HMC, MALA, run_chains

Z = 4.5

pytestmark = pytest.mark.usefixtures("one_thread")


def gaussian_a():
    return Gaussian(torch.tensor([0.0, 0.0]), torch.tensor([[1.0, 0.5], [0.5, 1.0]]))


def gaussian_b():
    return Gaussian(torch.tensor([2.0, 1.0]), torch.tensor([[0.5, 0.0], [0.0, 2.0]]))


def product_of(a, b):
    cov = torch.linalg.inv(a.precision + b.precision)
    mean = cov @ (a.precision @ a.mean + b.precision @ b.mean)
    return Gaussian(mean, 0.5 * (cov + cov.T))


def assert_constant_offset(energy, reference, generator):
    """``energy - reference`` is the same number everywhere (the two define the same density)."""
    x = 3 * torch.randn(200, 2, generator=generator)
    diff = energy(x) - reference(x)
    torch.testing.assert_close(diff, diff.mean().expand_as(diff), atol=1e-4, rtol=0)


def test_conjunction_of_gaussians_is_their_product():
    a, b = gaussian_a(), gaussian_b()
    assert_constant_offset(Conjunction([a, b]), product_of(a, b), torch.Generator().manual_seed(0))


def test_disjunction_of_equal_normaliser_gaussians_is_their_equal_mixture():
    a = Gaussian.isotropic(2, std=0.5, mean=torch.tensor([-2.0, 0.0]))
    b = Gaussian.isotropic(2, std=0.5, mean=torch.tensor([2.0, 0.0]))
    g = torch.Generator().manual_seed(1)
    x = 3 * torch.randn(200, 2, generator=g)
    mixture_log_prob = torch.logsumexp(torch.stack([a.log_prob(x), b.log_prob(x)]), 0) - torch.log(torch.tensor(2.0))
    # -log(exp(-E_a) + exp(-E_b)) = -log(Z (p_a + p_b)) = -log p_mixture - log(2 Z)
    torch.testing.assert_close(Disjunction([a, b])(x), -mixture_log_prob - torch.log(torch.tensor(2.0)) - a.log_z,
                               atol=1e-4, rtol=1e-5)


def test_disjunction_with_log_partitions_is_the_equal_mixture_whatever_the_normalisers():
    # different covariances -> different Z: plain 'or' weights them by Z, normalised 'or' equally
    a = Gaussian.isotropic(2, std=0.5, mean=torch.tensor([-1.0, 0.0]))
    b = Gaussian.isotropic(2, std=2.0, mean=torch.tensor([1.0, 0.0]))
    x = 3 * torch.randn(200, 2, generator=torch.Generator().manual_seed(3))
    equal_mixture = -torch.logsumexp(torch.stack([a.log_prob(x), b.log_prob(x)]), 0) + torch.log(torch.tensor(2.0))
    normalised = Disjunction([a, b], log_partitions=[a.log_z, b.log_z])
    torch.testing.assert_close(normalised(x) + torch.log(torch.tensor(2.0)), equal_mixture, atol=1e-4, rtol=1e-5)
    plain = Disjunction([a, b])(x)
    assert (plain - equal_mixture).std() > 0.1  # not the same density up to a constant
    with pytest.raises(ValueError, match="one log partition per energy"):
        Disjunction([a, b], log_partitions=[0.0])
    with pytest.raises(ValueError, match="apply to 'or' only"):
        compose("and", [a, b], log_partitions=[0.0, 0.0])


def test_negation_of_gaussians_has_the_difference_of_precisions():
    a, b = Gaussian.isotropic(2, std=1.0), Gaussian.isotropic(2, std=2.0)
    # precision 1 - alpha / 4 = 0.75 -> variance 4/3
    assert_constant_offset(Negation(a, b, alpha=1.0), Gaussian.isotropic(2, std=(4 / 3) ** 0.5),
                           torch.Generator().manual_seed(2))


def test_compose_rejects_bad_operations():
    a, b = gaussian_a(), gaussian_b()
    with pytest.raises(ValueError, match="operation must be one of and, or, not"):
        compose("xor", [a, b])
    with pytest.raises(ValueError, match="exactly two"):
        compose("not", [a, b, a])
    with pytest.raises(ValueError, match="alpha must be > 0"):
        compose("not", [a, b], alpha=0.0)
    assert isinstance(compose("or", [a, b]), Disjunction)


def moments(x):
    x1, x2 = x[..., 0], x[..., 1]
    return torch.stack([x1, x2, x1**2, x2**2, x1 * x2], dim=-1)


def product_z_scores(sampler, seed, *, chains=1000, burn_in=150, steps=100):
    a, b = gaussian_a(), gaussian_b()
    target = product_of(a, b)
    g = torch.Generator().manual_seed(seed)
    x0 = 2 * torch.randn(chains, 2, generator=g)
    state = run_chains(sampler, Conjunction([a, b]), x0, burn_in, generator=g).state
    trajectory = run_chains(sampler, Conjunction([a, b]), state, steps, generator=g,
                            record_trajectory=True).trajectory[1:]
    per_chain = moments(trajectory).mean(0)
    second = target.covariance + torch.outer(target.mean, target.mean)
    exact = torch.stack([target.mean[0], target.mean[1], second[0, 0], second[1, 1], second[0, 1]])
    return (per_chain.mean(0) - exact) / (per_chain.std(0) / chains**0.5)


@pytest.mark.parametrize("sampler", [MALA(step_size=0.3), HMC(step_size=0.3, num_leapfrog_steps=3)],
                         ids=["mala", "hmc"])
def test_sampling_the_conjunction_recovers_the_product_moments(sampler):
    # largest |z| over seeds 0..29: MALA 3.0, HMC 2.7 (none above 3)
    z = product_z_scores(sampler, seed=0)
    assert z.abs().max() < Z, z
