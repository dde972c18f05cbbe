"""Analytic energies: normalised, correct gradients, exact samples; the MLP energy's shape contract."""

import math

import pytest
import torch

from anila.energies import Gaussian, GaussianMixture, MLPEnergy, Rings, energy_and_grad
from anila.metrics import grid_points

TARGETS = {
    "gaussian": lambda: Gaussian(torch.tensor([0.5, -0.3]), torch.tensor([[1.0, 0.6], [0.6, 0.8]])),
    "diagonal": lambda: Gaussian.diagonal([1.0, 0.1]),
    "mixture": lambda: GaussianMixture(torch.tensor([[-2.0, 0.0], [2.0, 1.0]]), stds=torch.tensor([0.5, 0.8]),
                                       weights=torch.tensor([0.3, 0.7])),
    "rings": lambda: Rings(),
}


@pytest.mark.parametrize("name", TARGETS)
def test_log_prob_integrates_to_one(name):
    target = TARGETS[name]().double()
    bound, resolution = 7.0, 700
    points = grid_points(bound, resolution, dtype=torch.float64)
    mass = target.log_prob(points).exp().sum().item() * (2 * bound / resolution) ** 2
    assert abs(mass - 1) < 1e-3


@pytest.mark.parametrize("name", TARGETS)
def test_samples_match_log_prob_moments(name):
    # E_p[∇ log p] = 0 (Stein): the sample mean of the score is zero within Monte Carlo error.
    target = TARGETS[name]().double()
    x = target.sample(100_000, generator=torch.Generator().manual_seed(0))
    _, grad = energy_and_grad(target, x)
    stderr = grad.std(0) / math.sqrt(x.shape[0])
    assert (grad.mean(0).abs() < 5 * stderr).all()


def test_gaussian_energy_gradient_and_log_z():
    cov = torch.tensor([[2.0, 0.5], [0.5, 1.0]], dtype=torch.float64)
    target = Gaussian(torch.tensor([1.0, -1.0], dtype=torch.float64), cov)
    x = torch.randn(5, 2, dtype=torch.float64)
    _, grad = energy_and_grad(target, x)
    assert torch.allclose(grad, (x - target.mean) @ torch.linalg.inv(cov))
    assert math.isclose(target.log_z, math.log(2 * math.pi) + 0.5 * math.log(torch.linalg.det(cov).item()),
                        rel_tol=1e-6)


def test_invalid_analytic_parameters_raise():
    with pytest.raises(ValueError, match=r"stds must be positive with shape \(\), \(K,\) or \(K, d\)"):
        GaussianMixture(torch.zeros(3, 2), stds=torch.ones(4))  # 4 stds for 3 components
    with pytest.raises(ValueError, match=r"weights \(K,\) non-negative with a positive sum"):
        GaussianMixture(torch.zeros(2, 2), weights=torch.zeros(2))
    with pytest.raises(ValueError, match="radii and radial_std must be positive"):
        Rings(radial_std=-1.0)


def test_rings_energy_is_finite_at_the_origin():
    assert torch.isfinite(Rings()(torch.zeros(1, 2))).all()
    assert Rings().log_prob(torch.zeros(1, 2)).exp().item() < 1e-4


def test_mlp_energy_shapes_and_validation():
    energy = MLPEnergy(dim=3, width=16, depth=4, activation="silu")
    assert energy(torch.randn(7, 3)).shape == (7,)
    assert sum(isinstance(m, torch.nn.Linear) for m in energy.modules()) == 5  # the paper's five layers
    with pytest.raises(ValueError, match="activation"):
        MLPEnergy(activation="gelu6")
    with pytest.raises(ValueError, match="width"):
        MLPEnergy(width=0)


def test_mlp_base_energy_confines_any_weights_and_leaves_the_classifier_alone():
    torch.manual_seed(0)
    free, based = MLPEnergy(dim=50), MLPEnergy(dim=50, base_scale=1.0)
    based.net.load_state_dict(free.net.state_dict())
    directions = torch.randn(200, 50)
    directions = directions / directions.norm(dim=1, keepdim=True)
    far = 100.0 * directions
    # the MLP alone is asymptotically linear: along some directions it falls (the control), the base never does
    assert (free(far) < free(torch.zeros(1, 50))).any()
    assert (based(far) > based(torch.zeros(1, 50)) + 4000).all()  # 100² / 2 = 5000 beats the linear part
    classifier, based_classifier = MLPEnergy(dim=2, num_classes=3), MLPEnergy(dim=2, num_classes=3, base_scale=0.5)
    based_classifier.net.load_state_dict(classifier.net.state_dict())
    x = torch.randn(20, 2)
    assert torch.allclose(classifier.logits(x).softmax(1), based_classifier.logits(x).softmax(1), atol=1e-6)
    assert torch.allclose(based_classifier(x) - classifier(x), 2.0 * x.pow(2).sum(1), atol=1e-5)
    with pytest.raises(ValueError, match="base_scale"):
        MLPEnergy(dim=2, base_scale=-1.0)


def test_energy_must_return_one_value_per_sample():
    with pytest.raises(ValueError, match="one value per sample"):
        energy_and_grad(lambda x: x.sum(), torch.randn(4, 2))
