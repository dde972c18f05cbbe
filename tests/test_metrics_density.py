"""Grid-normalised density metrics against closed forms."""

import math

import torch

from anila.energies import Gaussian, Rings
from anila.metrics import density_divergences, energy_grid_divergences, grid_log_prob, grid_points


def test_true_energy_scores_zero():
    target = Rings()
    d = energy_grid_divergences(target, target.log_prob, bound=5.0, resolution=128)
    assert all(abs(v) < 1e-6 for v in d.values())


def test_shifted_gaussian_scores_closed_form():
    # KL(N(0, I) || N(m, I)) = |m|²/2;  TV = 2Φ(|m|/2) - 1;  Hellinger² = 1 - exp(-|m|²/8).
    m = torch.tensor([1.0, 0.5])
    d = energy_grid_divergences(Gaussian.isotropic(2, mean=m), Gaussian.isotropic(2).log_prob, 7.0, 512)
    norm = m.norm().item()
    assert math.isclose(d["kl_true_model"], norm**2 / 2, rel_tol=1e-3)
    assert math.isclose(d["kl_model_true"], norm**2 / 2, rel_tol=1e-3)
    assert math.isclose(d["tv"], math.erf(norm / 2 / math.sqrt(2)), rel_tol=1e-3)
    assert math.isclose(d["hellinger"], math.sqrt(1 - math.exp(-(norm**2) / 8)), rel_tol=1e-3)


def test_grid_normalisation_and_orientation():
    points = grid_points(2.0, 4)
    assert points.shape == (16, 2) and torch.allclose(points[1] - points[0], torch.tensor([1.0, 0.0]))
    logp = grid_log_prob(lambda x: x[:, 1], 2.0, 4)  # rows index y: increasing along axis 0
    assert torch.isclose(torch.logsumexp(logp.flatten(), 0), torch.tensor(0.0), atol=1e-6)
    assert (logp[1:, 0] > logp[:-1, 0]).all()


def test_support_mismatch_reports_infinity_not_a_number():
    log_p = torch.log(torch.tensor([0.5, 0.5, 0.0]))
    log_q = torch.log(torch.tensor([1.0, 0.0, 0.0]))
    d = density_divergences(log_p, log_q)
    assert d["kl_pq"] == math.inf and math.isclose(d["kl_qp"], math.log(2), rel_tol=1e-6)
