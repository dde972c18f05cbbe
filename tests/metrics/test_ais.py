"""AIS recovers known log-normalisers within its own reported standard error.

Targets with a closed-form ``log Z``: a correlated Gaussian (base ``N(0, I)``), a two-component Gaussian
mixture (``log Z = 0``, base ``N(0, 4 I)``) and a diagonal Gaussian restricted to the box ``[-1, 1]³`` (uniform
base; ``log Z = log Z_gauss + Σ_i log(Φ(b_i) - Φ(a_i))``). The check is ``|log Ẑ - log Z| < Z · stderr`` with
``Z = 5``. Over 40 development seeds (100 temperatures, 256 chains, MALA step 0.2) the largest |z| was
3.7 / 2.6 / 2.2 with sd(z) 1.11 / 1.10 / 0.94: the delta-method error is roughly calibrated, slightly
optimistic, hence 5 rather than 4.
"""

import math

import pytest
import torch

from anila.energies import Gaussian, GaussianMixture
from anila.metrics.ais import UniformBox, ais_log_partition, log_likelihood, sigmoid_schedule
from anila.samplers import HMC, MALA, AniLA

Z = 5.0

pytestmark = pytest.mark.usefixtures("one_thread")


def correlated_gaussian():
    return Gaussian(torch.tensor([1.0, -0.5]), torch.tensor([[0.5, 0.3], [0.3, 0.4]]))


def box_gaussian():
    stds = torch.tensor([0.5, 1.0, 2.0])
    target = Gaussian.diagonal(stds, mean=torch.tensor([0.3, -0.2, 0.0]))
    a, b = (-1 - target.mean) / stds, (1 - target.mean) / stds
    phi = lambda z: 0.5 * (1 + torch.erf(z / math.sqrt(2)))  # noqa: E731
    return target, target.log_z + float(torch.log(phi(b) - phi(a)).sum())


@pytest.mark.parametrize("case", ["gaussian", "mixture", "box", "gaussian_hmc"])
def test_ais_recovers_the_known_log_partition(case):
    g = torch.Generator().manual_seed(0)
    kwargs = dict(num_chains=256, num_temperatures=100, generator=g)
    sampler = MALA(step_size=0.2)
    if case.startswith("gaussian"):
        target, truth = correlated_gaussian(), correlated_gaussian().log_z
        kwargs["event_shape"] = (2,)
        if case == "gaussian_hmc":
            sampler = HMC(step_size=0.2, num_leapfrog_steps=2)
    elif case == "mixture":
        target = GaussianMixture(torch.tensor([[-2.0, 0.0], [2.0, 1.0]]), stds=torch.tensor([0.5, 0.3]),
                                 weights=torch.tensor([0.7, 0.3]))
        truth, kwargs["base"] = 0.0, Gaussian.isotropic(2, std=2.0)
    else:
        target, truth = box_gaussian()
        kwargs["base"] = UniformBox((3,))
    result = ais_log_partition(target, sampler, **kwargs)
    assert 0 < result.stderr < 0.1 and result.ess > 50 and 0.5 < result.accept_prob <= 1
    assert abs(result.log_z - truth) < Z * result.stderr, (result.log_z, truth, result.stderr)


def test_ais_detects_a_wrong_normaliser():
    # negative control: shifting the energy by 1 shifts log Z by -1, far outside the error bar
    target = correlated_gaussian()
    result = ais_log_partition(lambda x: target(x) + 1.0, MALA(step_size=0.2), event_shape=(2,), num_chains=256,
                               num_temperatures=100, generator=torch.Generator().manual_seed(0))
    assert abs(result.log_z - (target.log_z - 1.0)) < Z * result.stderr
    assert abs(result.log_z - target.log_z) > 10 * result.stderr


def test_log_likelihood_of_exact_samples_matches_the_entropy():
    # E_p[log p] = -½ d (1 + log 2π) - ½ log det Σ for a Gaussian; here log Z is exact (stderr 0)
    target = correlated_gaussian()
    data = target.sample(4000, generator=torch.Generator().manual_seed(1))
    mean, stderr = log_likelihood(target, data, log_z=target.log_z)
    entropy = 0.5 * 2 * (1 + math.log(2 * math.pi)) + 0.5 * float(torch.logdet(target.covariance))
    assert abs(mean + entropy) < 4 * stderr and 0 < stderr < 0.05


def test_schedule_and_bad_arguments():
    betas = sigmoid_schedule(10)
    assert betas[0] == 0.0 and betas[-1] == 1.0 and all(b1 > b0 for b0, b1 in zip(betas, betas[1:], strict=False))
    with pytest.raises(ValueError, match="unadjusted: use MALA, MetropolisAniLA or HMC"):
        ais_log_partition(correlated_gaussian(), AniLA(), event_shape=(2,))
    with pytest.raises(ValueError, match="event_shape"):
        ais_log_partition(correlated_gaussian(), MALA())
    with pytest.raises(ValueError, match="low < high"):
        UniformBox((2,), low=1.0, high=-1.0)
