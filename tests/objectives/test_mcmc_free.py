"""MCMC-free objectives (score matching, DSM, NCE and their variants): exact values on a quadratic energy,
recovery of a Gaussian's parameters in closed form, the DSM bias and control variate, a descent direction on
an MLP energy, the noise-conditional model with annealed Langevin, and argument errors.

Tolerances come from 20 seeds (0-19) of the same runs, recorded next to each check; the tests use seed 0.
"""

import math

import pytest
import torch
import torch.nn.functional as F
from gaussian_target import DATA, DT, MU, SIGMA, Quadratic, rel_error
from torch import nn

from anila.energies import GaussianMixture, MLPEnergy
from anila.metrics import energy_grid_divergences
from anila.objectives.nce import GaussianNoise, nce_loss, perturbation_nce
from anila.objectives.score_matching import (
    NoiseConditionalEnergy,
    NoiseConditionalMLP,
    annealed_langevin,
    denoising_score_matching,
    exact_score_matching,
    multilevel_dsm,
    sliced_score_matching,
)

pytestmark = pytest.mark.usefixtures("one_thread")  # the shared fixture of tests/conftest.py


def _fixed_quadratic():
    model = Quadratic()
    with torch.no_grad():
        model.m.copy_(torch.tensor([0.3, -0.2], dtype=DT))
        model.raw.copy_(torch.tensor([[1.4, 0.0], [0.4, 0.9]], dtype=DT))
    return model


def _log_normaliser(precision):
    return 0.5 * float(torch.logdet(2 * math.pi * torch.linalg.inv(precision)))


# --------------------------------------------------------------------------------------- exact values


def test_exact_score_matching_matches_the_quadratic_formula():
    # For E = ½(x-m)ᵀP(x-m): ∇E = P(x-m), tr ∇²E = tr P, so the loss is mean ½‖P(x-m)‖² - tr P.
    model = _fixed_quadratic()
    x = DATA.sample(256, torch.Generator().manual_seed(0))
    loss, metrics = exact_score_matching(model, x)
    P = model.precision().detach()
    expected = (0.5 * ((x - model.m.detach()) @ P).pow(2).sum(1) - torch.trace(P)).mean()
    assert torch.allclose(loss, expected, rtol=1e-12, atol=1e-12)
    assert torch.allclose(metrics["hessian_trace"], torch.trace(P))
    loss.backward()
    assert model.raw.grad is not None and torch.isfinite(model.raw.grad).all()


@pytest.mark.parametrize("projection", ["gaussian", "rademacher"])
def test_sliced_score_matching_estimates_the_exact_loss(projection):
    # Both forms are unbiased for eq. 8 (exact value 1.944 here). With 400 projections on 256 points the
    # error over 20 generator seeds had sd 0.028 / 0.013 (Gaussian, plain / VR) and 0.014 / 0.003
    # (Rademacher) and never exceeded 0.05: the tolerance is 4 of the largest sd.
    model = _fixed_quadratic()
    x = DATA.sample(256, torch.Generator().manual_seed(1))
    exact, _ = exact_score_matching(model, x)
    for variance_reduced in (False, True):
        loss, metrics = sliced_score_matching(model, x, num_projections=400, projection=projection,
                                              variance_reduced=variance_reduced,
                                              generator=torch.Generator().manual_seed(2))
        assert abs(float(loss.detach() - exact.detach())) < 0.11, (variance_reduced, loss, exact)
        assert set(metrics) == {"grad_term", "hessian_term"}


def test_perturbation_nce_is_half_sliced_score_matching_for_small_shifts():
    # Same generator seed: v = scale · u with the very u sliced_score_matching draws. Expanding softplus,
    # L = 2 log 2 + ½ mean[½(vᵀg)² - vᵀHv] + O(scale⁴): the factor is ½ (the seed prints ¼).
    model = _fixed_quadratic()
    x = DATA.sample(512, torch.Generator().manual_seed(3))
    ssm, _ = sliced_score_matching(model, x, num_projections=3, generator=torch.Generator().manual_seed(4))
    scale = 1e-3  # the O(scale²) relative remainder is 1e-5 here (12 · scale² for this energy and data)
    loss, metrics = perturbation_nce(model, x, scale=scale, num_projections=3,
                                     generator=torch.Generator().manual_seed(4))
    assert torch.allclose(metrics["ssm_equivalent"], ssm.detach(), rtol=1e-4)
    assert torch.allclose(2 * (loss.detach() - 2 * math.log(2)) / scale**2, ssm.detach(), rtol=1e-4)
    assert 0.4 < float(metrics["accuracy"]) < 0.6  # tiny shifts: barely separable


def test_dsm_control_variate_keeps_the_mean_and_cuts_the_variance_at_small_sigma():
    # Fixed θ (not the optimum), independent evaluations on batches of 64, float64; the plain and the
    # corrected estimates come from the same draws. Ratios var(plain)/var(cv) over seeds 0-2 (200 draws):
    # σ = 0.01: 2.0e6-3.0e6; σ = 0.05: 3.1e3-4.8e3; σ = 0.1: 190-310; σ = 1: 0.61 (the control variate
    # *adds* variance once the Taylor argument fails, as the seed warns).
    model = _fixed_quadratic()
    g = torch.Generator().manual_seed(0)

    def draws(sigma):
        cv, plain = [], []
        for _ in range(300):
            loss, metrics = denoising_score_matching(model, DATA.sample(64, g), sigma=sigma, generator=g,
                                                     control_variate=True)
            cv.append(float(loss.detach()))
            plain.append(float(metrics["loss_without_cv"]))
        return torch.tensor(cv, dtype=DT), torch.tensor(plain, dtype=DT)

    cv, plain = draws(0.05)
    assert plain.var() / cv.var() > 1e3
    # Same expectation: the difference of the means is within 4 standard errors of the plain estimate.
    assert abs(float(cv.mean() - plain.mean())) < 4 * float(plain.std()) / math.sqrt(300)
    cv, plain = draws(1.0)
    assert plain.var() / cv.var() < 0.8


# ------------------------------------------------------------------------------ closed-form recovery


def _fit_quadratic(objective, *, seed=0, steps=300, batch=512, lr=0.05, average_last=100, learn_log_z=False):
    """Adam on fresh batches of DATA; returns the mean, precision and log Z averaged over the last iterates
    (Polyak averaging removes most of the step-to-step noise of the stochastic objectives)."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    model = Quadratic()
    log_z = nn.Parameter(torch.zeros((), dtype=DT))
    params = list(model.parameters()) + ([log_z] if learn_log_z else [])
    opt = torch.optim.Adam(params, lr=lr)
    tail = []
    for step in range(steps):
        loss, _ = objective(model, DATA.sample(batch, g), g, log_z)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step >= steps - average_last:
            tail.append((model.m.detach().clone(), model.precision().detach(), log_z.detach().clone()))
    m, P, lz = (torch.stack(t).mean(0) for t in zip(*tail, strict=True))
    return m, P, float(lz)


NOISE = GaussianNoise.fit(DATA.sample(4096, torch.Generator().manual_seed(100)))

CONSISTENT = {
    "exact_sm": lambda model, x, g, log_z: exact_score_matching(model, x),
    "ssm": lambda model, x, g, log_z: sliced_score_matching(model, x, generator=g),
    "ssm_vr": lambda model, x, g, log_z: sliced_score_matching(model, x, variance_reduced=True, generator=g),
    "perturbation_nce": lambda model, x, g, log_z: perturbation_nce(model, x, scale=0.5, generator=g),
    "nce": lambda model, x, g, log_z: nce_loss(model, log_z, x, NOISE, generator=g),
}


@pytest.mark.parametrize("name", list(CONSISTENT))
def test_consistent_objectives_recover_the_gaussian(name):
    # 20 seeds, 300 steps x 512 fresh points, last 100 iterates averaged. Max over seeds of |m - μ| and of
    # ‖P - Σ⁻¹‖_F / ‖Σ⁻¹‖_F: exact SM 0.011 / 0.019, SSM 0.028 / 0.025, SSM-VR 0.010 / 0.021,
    # perturbation NCE (scale 0.5) 0.028 / 0.020, NCE 0.015 / 0.029. Tolerances are about twice the worst.
    m, P, log_z = _fit_quadratic(CONSISTENT[name], learn_log_z=name == "nce")
    assert float(torch.linalg.norm(m - MU)) < 0.06
    assert rel_error(P, torch.linalg.inv(SIGMA)) < 0.05
    if name == "nce":
        # NCE also learns the normaliser. Max over seeds of |log Z - ½ log det(2π P⁻¹)| at the learned P:
        # 0.0049; of |log Z - ½ log det(2πΣ)| (the truth, 1.4274): 0.015.
        assert abs(log_z - _log_normaliser(P)) < 0.015
        assert abs(log_z - 0.5 * float(torch.logdet(2 * math.pi * SIGMA))) < 0.04


def test_dsm_recovers_the_noise_convolved_gaussian_not_the_data():
    # DSM's optimum is q_σ = N(μ, Σ + σ²I): with σ = 1 the precision goes to (Σ + I)⁻¹, far from Σ⁻¹
    # (relative distance 0.80). Max over 20 seeds: |m - μ| 0.019, ‖P - (Σ+I)⁻¹‖/‖(Σ+I)⁻¹‖ 0.0055.
    sigma = 1.0
    m, P, _ = _fit_quadratic(lambda model, x, g, log_z: denoising_score_matching(model, x, sigma=sigma, generator=g))
    noisy_precision = torch.linalg.inv(SIGMA + sigma**2 * torch.eye(2, dtype=DT))
    assert float(torch.linalg.norm(m - MU)) < 0.05
    assert rel_error(P, noisy_precision) < 0.02
    assert rel_error(P, torch.linalg.inv(SIGMA)) > 0.5


# ------------------------------------------------------------------------------- MLP direction tests

MIXTURE = GaussianMixture(torch.tensor([[-1.5, 0.0], [1.5, 0.0]]), stds=0.5)

MLP_OBJECTIVES = {
    "exact_sm": lambda e, x, g, log_z, noise: exact_score_matching(e, x),
    "ssm": lambda e, x, g, log_z, noise: sliced_score_matching(e, x, generator=g),
    "ssm_vr_rademacher": lambda e, x, g, log_z, noise: sliced_score_matching(
        e, x, variance_reduced=True, projection="rademacher", generator=g),
    "dsm": lambda e, x, g, log_z, noise: denoising_score_matching(e, x, sigma=0.3, generator=g),
    "dsm_cv": lambda e, x, g, log_z, noise: denoising_score_matching(e, x, sigma=0.1, generator=g,
                                                                     control_variate=True),
    "perturbation_nce": lambda e, x, g, log_z, noise: perturbation_nce(e, x, scale=0.5, generator=g),
    "nce": lambda e, x, g, log_z, noise: nce_loss(e, log_z, x, noise, generator=g),
}


@pytest.mark.parametrize("name", list(MLP_OBJECTIVES))
def test_objective_moves_an_mlp_energy_towards_the_data(name):
    # 60 Adam steps (lr 1e-2, 256 fresh points) on a smooth MLP (SiLU: second-order objectives need a
    # non-zero Hessian). Grid KL(true ‖ model) starts at 1.99-2.06; over seeds 0-7 the ratio after/before
    # was at most 0.21-0.24 for the score-matching family and perturbation NCE, 0.40 for NCE.
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    energy = MLPEnergy(dim=2, width=32, depth=2, activation="silu")
    log_z = nn.Parameter(torch.zeros(()))
    noise = GaussianNoise.fit(MIXTURE.sample(2048, g))
    opt = torch.optim.Adam([*energy.parameters(), log_z], lr=1e-2)

    def kl():
        return energy_grid_divergences(energy, MIXTURE.log_prob, 4.0, 64)["kl_true_model"]

    before = kl()
    for _ in range(60):
        loss, metrics = MLP_OBJECTIVES[name](energy, MIXTURE.sample(256, g), g, log_z, noise)
        assert all(not v.requires_grad and v.dim() == 0 for v in metrics.values())
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = kl()
    assert math.isfinite(after) and after < 0.5 * before, (before, after)


# ------------------------------------------------------------------- noise-conditional model, sampling

SIGMAS = torch.logspace(math.log10(3.0), math.log10(0.05), 8, dtype=torch.float64).tolist()


def _mixture_stats(x):
    return x.mean(0), x.var(0), float((x[:, 0] > 0).float().mean())


def test_annealed_langevin_samples_the_exact_noise_conditional_mixture():
    # The exact noise-conditional energy of MIXTURE (components widened to sqrt(0.25 + σ²)) isolates the
    # sampler. step_size = σ_L² (α_1 = σ_1²), 50 steps per level: over seeds 0-2 the variances were within
    # 3 % (x) and 11 % (y) of the data's and the right-mode fraction within 0.02 of ½. With step_size
    # 0.1 σ_L² the chains do not equilibrate at the small levels (y variance 0.35 instead of 0.25).
    means = MIXTURE.means

    def exact(x, sigma):
        var = (0.25 + sigma**2)[:, None]
        d2 = ((x[:, None, :] - means) ** 2).sum(-1)
        return -torch.logsumexp(-0.5 * d2 / var - torch.log(var), dim=1)

    g = torch.Generator().manual_seed(0)
    x = annealed_langevin(exact, SIGMAS[0] * torch.randn(4000, 2, generator=g), SIGMAS, steps_per_level=50,
                          step_size=SIGMAS[-1] ** 2, generator=g)
    mean, var, right = _mixture_stats(x)
    assert mean.abs().max() < 0.15
    assert torch.allclose(var, torch.tensor([2.5, 0.25]), rtol=0.2)
    assert abs(right - 0.5) < 0.05


def test_multilevel_dsm_trains_a_noise_conditional_model_that_annealed_langevin_samples():
    # 800 Adam steps (lr 1e-2 decayed linearly to 0, 512 points). Over seeds 0-4: the loss fell from
    # 0.75-0.77 (first 20 steps) to 0.61-0.63 (last 50); annealed Langevin samples had |mean| <= 0.08,
    # variances within 6 % (x) and 12 % (y) of the data's and a right-mode fraction of 0.484-0.505.
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    energy = NoiseConditionalMLP(dim=2, width=64, depth=3)
    assert isinstance(energy, NoiseConditionalEnergy)
    steps = 800
    opt = torch.optim.Adam(energy.parameters(), lr=1e-2)
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 1 - t / steps)
    losses = []
    for _ in range(steps):
        loss, metrics = multilevel_dsm(energy, MIXTURE.sample(512, g), SIGMAS, generator=g)
        opt.zero_grad()
        loss.backward()
        opt.step()
        schedule.step()
        losses.append(float(loss.detach()))
    first, last = sum(losses[:20]) / 20, sum(losses[-50:]) / 50
    assert last < 0.9 * first, (first, last)

    energy.zero_grad(set_to_none=True)
    x0 = SIGMAS[0] * torch.randn(2000, 2, generator=g)
    x = annealed_langevin(energy, x0, SIGMAS, steps_per_level=50, step_size=SIGMAS[-1] ** 2, generator=g,
                          denoise=True)
    assert x.shape == x0.shape and not x.requires_grad
    assert all(p.grad is None for p in energy.parameters())  # input gradients only
    mean, var, right = _mixture_stats(x)
    assert mean.abs().max() < 0.2
    assert torch.allclose(var, torch.tensor([2.5, 0.25]), rtol=0.25)
    assert abs(right - 0.5) < 0.07


def test_annealed_langevin_is_reproducible_and_validates_its_arguments():
    energy = NoiseConditionalMLP(dim=2, width=8, depth=1)
    x0 = torch.randn(16, 2, generator=torch.Generator().manual_seed(0))
    run = [annealed_langevin(energy, x0, [1.0, 0.5], steps_per_level=3, step_size=0.01,
                             generator=torch.Generator().manual_seed(1)) for _ in range(2)]
    assert torch.equal(run[0], run[1])
    with pytest.raises(ValueError, match="largest"):
        annealed_langevin(energy, x0, [0.5, 1.0], steps_per_level=3, step_size=0.01)
    with pytest.raises(ValueError, match="sigmas"):
        annealed_langevin(energy, x0, [1.0, 0.0], steps_per_level=3, step_size=0.01)
    with pytest.raises(ValueError, match="sigmas"):
        multilevel_dsm(energy, x0, [1.0, -0.1])


# ------------------------------------------------------------------------------ noise model and errors


def test_gaussian_noise_fit_sample_and_log_prob():
    g = torch.Generator().manual_seed(0)
    x = DATA.sample(5000, g).view(5000, 1, 2)  # a non-flat event shape
    noise = GaussianNoise.fit(x, ridge=0.0)
    assert torch.allclose(noise.mean, x.view(5000, 2).mean(0))
    assert torch.allclose(noise.covariance, torch.cov(x.view(5000, 2).T))
    y = noise.sample(7, torch.Generator().manual_seed(1))
    assert y.shape == (7, 1, 2) and torch.equal(y, noise.sample(7, torch.Generator().manual_seed(1)))
    reference = torch.distributions.MultivariateNormal(noise.mean, noise.covariance)
    assert torch.allclose(noise.log_prob(y), reference.log_prob(y.view(7, 2)))
    constant = GaussianNoise.fit(torch.ones(10, 3))  # degenerate data: the ridge keeps it a density
    assert torch.isfinite(constant.log_prob(torch.ones(2, 3))).all()


def test_nce_metrics():
    log_z = nn.Parameter(torch.tensor(0.7, dtype=DT))
    x = DATA.sample(100, torch.Generator().manual_seed(0))
    model = _fixed_quadratic()
    loss, metrics = nce_loss(model, log_z, x, NOISE, noise_ratio=2.5, generator=torch.Generator().manual_seed(1))
    assert loss.requires_grad and float(metrics["log_z"]) == pytest.approx(0.7)
    # eq. 18-21 by hand: m = 2.5 n noise draws from the same generator, logit = -E - log Z - log q - log nu
    y = NOISE.sample(250, torch.Generator().manual_seed(1)).to(DT)
    with torch.no_grad():
        def logit(z):
            return -model(z) - 0.7 - NOISE.log_prob(z) - math.log(2.5)

        correct = int((logit(x) > 0).sum() + (logit(y) < 0).sum())
        expected = F.softplus(-logit(x)).mean() + 2.5 * F.softplus(logit(y)).mean()
    assert 0 < correct < 350  # neither trivially all right nor all wrong
    assert float(metrics["accuracy"]) == pytest.approx(correct / 350, abs=1e-12)
    assert float(loss.detach()) == pytest.approx(float(expected), rel=1e-12)
    loss.backward()
    assert log_z.grad is not None


def test_errors():
    energy = MLPEnergy(dim=21, width=8, depth=1)
    with pytest.raises(ValueError, match="sliced"):
        exact_score_matching(energy, torch.randn(4, 21))
    with pytest.raises(ValueError, match="sliced"):
        exact_score_matching(MLPEnergy(dim=48, width=8, depth=1), torch.randn(4, 3, 4, 4))
    with pytest.raises(ValueError, match="projection"):
        sliced_score_matching(energy, torch.randn(4, 21), projection="uniform")
    with pytest.raises(ValueError, match="projection"):
        perturbation_nce(energy, torch.randn(4, 21), scale=0.1, projection="sphere")
    with pytest.raises(ValueError, match="sigma"):
        denoising_score_matching(energy, torch.randn(4, 21), sigma=0.0)
