"""Sample-based metrics (MMD, energy distance, sliced W2, mixture mode metrics) against closed forms.

Tolerances come from each estimator's spread over development seeds (recorded next to each test), then one
seed is fixed. Bounds are about 5 standard deviations, always above the largest deviation seen.
"""

import math

import pytest
import torch

import anila.metrics.samples as samples_module
from anila.energies import GaussianMixture
from anila.metrics import energy_distance, mmd, mode_metrics, mode_metrics_for, sliced_wasserstein


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _brute_mmd(x, y, bandwidths):
    x, y = x.double(), y.double()

    def k(a, b):
        sq = ((a[:, None] - b[None]) ** 2).sum(-1)
        return sum(torch.exp(-sq / (2 * h * h)) for h in bandwidths)

    n, m = len(x), len(y)
    kxx, kyy = k(x, x).fill_diagonal_(0), k(y, y).fill_diagonal_(0)
    return float(kxx.sum() / (n * (n - 1)) + kyy.sum() / (m * (m - 1)) - 2 * k(x, y).mean())


def _brute_energy(x, y):
    x, y = x.double(), y.double()
    n, m = len(x), len(y)

    def dist(a, b):
        return ((a[:, None] - b[None]) ** 2).sum(-1).sqrt()

    return float(2 * dist(x, y).mean() - dist(x, x).sum() / (n * (n - 1)) - dist(y, y).sum() / (m * (m - 1)))


@pytest.mark.parametrize("block", [7, 1 << 20])  # many small row blocks (and triangles) vs one block
def test_pairwise_estimators_match_brute_force(monkeypatch, block):
    monkeypatch.setattr(samples_module, "_BLOCK_ELEMENTS", block)
    g = _gen(0)
    x, y = torch.randn(37, 3, generator=g).double() + 5.0, torch.randn(23, 3, generator=g).double() + 5.3
    bandwidths = (0.3, 1.0, 2.5)
    assert mmd(x, y, bandwidths=bandwidths) == pytest.approx(_brute_mmd(x, y, bandwidths), abs=1e-12)
    assert energy_distance(x, y) == pytest.approx(_brute_energy(x, y), abs=1e-12)
    # float32 inputs are computed in float32 blocks: same value to float32 accuracy
    assert mmd(x.float(), y.float(), bandwidths=bandwidths) == pytest.approx(_brute_mmd(x, y, bandwidths), abs=1e-5)
    # default bandwidths: the median heuristic times (0.25, 0.5, 1, 2, 4)
    h = torch.pdist(torch.cat([x, y])).median().item()
    assert mmd(x, y) == pytest.approx(_brute_mmd(x, y, [f * h for f in (0.25, 0.5, 1, 2, 4)]), abs=1e-12)


def test_mmd_same_distribution_is_near_zero_and_shift_is_detected():
    # n = m = 1000 in 2-D, default bandwidths, 100 seeds: null MMD² mean -1.5e-4, sd 1.9e-3, range
    # [-2.9e-3, 6.4e-3]; shift (0.5, 0): mean 0.083, sd 0.017, min 0.053.
    g = _gen(0)
    x, y = torch.randn(1000, 2, generator=g), torch.randn(1000, 2, generator=g)
    assert abs(mmd(x, y, generator=g)) < 0.01  # ~5 null sds
    assert mmd(x, y + torch.tensor([0.5, 0.0]), generator=g) > 0.03  # > 15 null sds


@pytest.mark.parametrize("bandwidths", [(1.0,), None])
def test_mmd_is_unbiased(bandwidths):
    # 2000 replications of n = m = 10 (dev): z = mean / se was 1.24 (h = 1) and 1.47 (median heuristic, which
    # keeps the estimator exactly unbiased under the null as it is symmetric in the pooled sample).
    g = _gen(1)
    values = torch.tensor([mmd(torch.randn(10, 2, generator=g), torch.randn(10, 2, generator=g),
                               bandwidths=bandwidths) for _ in range(1000)], dtype=torch.float64)
    se = values.std() / math.sqrt(len(values))
    assert values.min() < 0  # negative values are returned as they are
    assert abs(values.mean()) < 4 * se


def _mean_abs_normal(m, s):
    """E|N(m, s²)| = s sqrt(2/π) exp(-m²/(2s²)) + m (1 - 2Φ(-m/s))."""
    phi_cdf = 0.5 * (1 + math.erf(-m / s / math.sqrt(2)))
    return s * math.sqrt(2 / math.pi) * math.exp(-(m**2) / (2 * s**2)) + m * (1 - 2 * phi_cdf)


def test_energy_distance_closed_form_1d():
    # X ~ N(0, 1), Y ~ N(μ, 1): X - Y ~ N(-μ, 2), X - X' ~ N(0, 2). n = m = 5000, μ = 1: exact 0.5418;
    # over 60 seeds mean 0.5405, sd 0.020, largest deviation 0.074.
    mu, s = 1.0, math.sqrt(2.0)
    exact = 2 * _mean_abs_normal(mu, s) - 2 * _mean_abs_normal(0.0, s)
    g = _gen(0)
    value = energy_distance(torch.randn(5000, generator=g), torch.randn(5000, generator=g) + mu)
    assert value == pytest.approx(exact, abs=0.1)
    assert energy_distance(torch.zeros(3, 1), torch.ones(4, 1)) == pytest.approx(2.0)


def test_sliced_wasserstein_shifted_gaussians():
    # Exact sliced W2² = E_θ (θ·m)² = |m|²/d for a shift m. In d = 2, (θ·m)² = |m|² cos²φ has sd |m|²/(2√2), so
    # the projection MC sd is 0.354 |m|²/√P = 0.018 for P = 4096 (dev, 200 seeds, common random numbers
    # y = x + m, where each 1-D W2² is exactly (θ·m)²: sd 0.0176, largest deviation 0.053).
    m = torch.tensor([1.5, -1.0])
    exact = float(m @ m) / 2
    g = _gen(0)
    x = torch.randn(500, 2, generator=g)
    assert sliced_wasserstein(x, x + m, num_projections=4096, generator=g) ** 2 == pytest.approx(exact, abs=0.09)
    # Independent samples, n = 2000, P = 1024: the sample-mean noise adds |m|·sqrt(2/n) = 0.057;
    # over 100 seeds sd 0.061, largest deviation 0.124.
    y = torch.randn(2000, 2, generator=g) + m
    value = sliced_wasserstein(torch.randn(2000, 2, generator=g), y, num_projections=1024, generator=g)
    assert value**2 == pytest.approx(exact, abs=0.3)


def test_sliced_wasserstein_unequal_sizes_is_exact_in_1d():
    # Quantile functions of {0, 1} and {0, 1, 2} differ by 1 on (1/3, 1/2] and (2/3, 1]: W2² = 1/6 + 1/3.
    assert sliced_wasserstein(torch.tensor([0.0, 1.0]), torch.tensor([0.0, 1.0, 2.0])) ** 2 == pytest.approx(0.5)
    assert sliced_wasserstein(torch.tensor([0.0, 1.0]), torch.tensor([0.0, 0.0, 1.0, 1.0])) == pytest.approx(0.0)
    x = torch.randn(50, 3, generator=_gen(2))
    assert sliced_wasserstein(x, x, generator=_gen(3)) == 0.0


def _mixture():
    means = torch.tensor([[5.0, 5.0], [-5.0, 5.0], [-5.0, -5.0], [5.0, -5.0]])
    return GaussianMixture(means, stds=torch.tensor([0.5, 0.3, 0.7, 0.4]), weights=torch.tensor([0.1, 0.2, 0.3, 0.4]))


def test_mode_metrics_on_exact_samples():
    # In 2-D the standardised distance of an exact draw is chi with 2 dof: P(z <= 3) = 1 - exp(-9/2) = 0.98889.
    # 20000 draws, 100 seeds: fraction sd 6.9e-4 (binomial 7.4e-4); TV mean 0.0045, sd 0.0021, max 0.0099.
    mixture, n = _mixture(), 20000
    result = mode_metrics_for(mixture.sample(n, generator=_gen(0)), mixture)
    p = 1 - math.exp(-4.5)
    assert result["modes_covered"] == 4
    assert result["high_quality_fraction"] == pytest.approx(p, abs=5 * math.sqrt(p * (1 - p) / n))
    # each empirical weight within 5 multinomial sds of its truth
    w = mixture.weights.double()
    assert 0 <= result["mode_weight_tv"] < 0.5 * float((5 * torch.sqrt(w * (1 - w) / (p * n))).sum())


def test_mode_metrics_collapsed_samples():
    mixture = _mixture()
    x = mixture.means[2] + 0.1 * torch.randn(100, 2, generator=_gen(0))
    result = mode_metrics_for(x, mixture)
    assert result == {"modes_covered": 1, "high_quality_fraction": 1.0,
                      "mode_weight_tv": pytest.approx(1 - 0.3)}
    assert mode_metrics(x, mixture.means, mixture.stds, mixture.weights, min_count=101)["modes_covered"] == 0


def test_mode_metrics_definition_and_edge_cases():
    means = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
    stds = torch.tensor([[1.0, 2.0], [1.0, 1.0]])
    # standardised distance to mode 0: ((x - μ) / σ) per coordinate, then the Euclidean norm
    x = torch.tensor([[2.9, 0.0], [0.0, 5.9], [0.0, 6.1], [0.0, 6.0], [100.0, 0.0]])  # z = 2.9, 2.95, 3.05, 3
    result = mode_metrics(x, means, stds)  # default weights: uniform; z <= 3 is inclusive
    assert result["high_quality_fraction"] == pytest.approx(3 / 5)
    assert result["modes_covered"] == 1 and result["mode_weight_tv"] == pytest.approx(0.5)
    assert math.isnan(mode_metrics(x[4:], means, 1.0)["mode_weight_tv"])  # no high-quality sample
    with pytest.raises(ValueError, match="means"):
        mode_metrics(torch.zeros(3, 3), means, 1.0)
    with pytest.raises(ValueError, match="stds"):
        mode_metrics(x, means, -1.0)


def test_invalid_inputs_raise():
    x = torch.randn(10, 2)
    with pytest.raises(ValueError, match="event sizes"):
        mmd(x, torch.randn(10, 3))
    with pytest.raises(ValueError, match="NaN"):
        energy_distance(x, torch.full((10, 2), math.nan))
    with pytest.raises(ValueError, match="at least 2"):
        mmd(x, x[:1])
    with pytest.raises(ValueError, match="bandwidths"):
        mmd(x, x, bandwidths=(1.0, 0.0))
    with pytest.raises(ValueError, match="num_projections"):
        sliced_wasserstein(x, x, num_projections=0)


def test_event_dims_are_flattened():
    g = _gen(4)
    x, y = torch.randn(30, 2, 3, generator=g), torch.randn(40, 2, 3, generator=g)
    assert mmd(x, y, bandwidths=(1.0,)) == pytest.approx(mmd(x.flatten(1), y.flatten(1), bandwidths=(1.0,)))
    assert energy_distance(x, y) == pytest.approx(energy_distance(x.flatten(1), y.flatten(1)))
