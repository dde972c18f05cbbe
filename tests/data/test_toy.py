"""Tests for the seeded 2-D toy data sets in ``anila.data.toy``."""

from __future__ import annotations

import functools
import math

import pytest
import torch

from anila.data.toy import TOY_DATASETS, toy_dataset
from anila.energies import GaussianMixture, Rings

DENSITY_SETS = ("rings", "8gaussians", "25gaussians", "checkerboard", "pinwheel", "2spirals")
pytestmark = pytest.mark.usefixtures("one_thread")

COARSE = 16  # histogram cells per axis
FINE = 64  # quadrature points per coarse cell and axis: spacing <= bound/512, below a quarter of every sd
# pinwheel and 2spirals (numerical densities, slower per point): spacing 8/256 = 0.03, a third of their
# smallest sd (0.1 for the spirals' noise, 0.2 for the pinwheel's tangential spread)
FINE_FOR = {"pinwheel": 16, "2spirals": 16}
NUM_HIST = 200_000


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@functools.cache
def _cell_probabilities(name: str) -> torch.Tensor:
    """Midpoint-rule integral of the density over each of the ``COARSE x COARSE`` cells of the box."""
    data = toy_dataset(name)
    fine = FINE_FOR.get(name, FINE)
    n = COARSE * fine
    h = 2 * data.bound / n
    centres = -data.bound + h * (torch.arange(n, dtype=torch.float64) + 0.5)
    grid = torch.cartesian_prod(centres, centres)  # row-major: x index outer, y index inner
    density = torch.exp(data.log_density(grid)).reshape(COARSE, fine, COARSE, fine)
    return density.sum(dim=(1, 3)) * h * h


def test_names_and_flags():
    assert TOY_DATASETS == ("rings", "8gaussians", "25gaussians", "moons", "swissroll", "circles",
                            "pinwheel", "2spirals", "checkerboard")
    for name in TOY_DATASETS:
        data = toy_dataset(name)
        assert data.name == name and data.bound > 0
        assert data.has_density == (name in DENSITY_SETS)


@pytest.mark.parametrize("name", TOY_DATASETS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sample_shape_dtype_and_seeding(name, dtype):
    data = toy_dataset(name)
    x = data.sample(5000, generator=_gen(0), dtype=dtype)
    assert x.shape == (5000, 2) and x.dtype == dtype and x.device.type == "cpu"
    assert torch.isfinite(x).all()
    assert torch.equal(x, data.sample(5000, generator=_gen(0), dtype=dtype))
    assert not torch.allclose(x, data.sample(5000, generator=_gen(1), dtype=dtype))
    inside = (x.abs() <= data.bound).all(dim=1).double().mean()
    assert inside >= 0.995


@pytest.mark.parametrize("name", TOY_DATASETS)
def test_sample_without_generator(name):
    x = toy_dataset(name).sample(10)
    assert x.shape == (10, 2) and x.dtype == torch.float32


@pytest.mark.parametrize("name", DENSITY_SETS)
def test_density_integrates_to_one(name):
    # Every sd is >= 4 quadrature steps and the checkerboard's edges lie on cell edges, so the midpoint rule
    # is accurate far below 1e-3; the mass outside the box is below 1e-5 for every set.
    mass = _cell_probabilities(name).sum().item()
    assert abs(mass - 1) < 1e-3


@pytest.mark.parametrize("name", DENSITY_SETS)
def test_log_density_shape_and_dtype(name):
    data = toy_dataset(name)
    for dtype in (torch.float32, torch.float64):
        x = data.sample(7, generator=_gen(3), dtype=dtype)
        log_p = data.log_density(x)
        assert log_p.shape == (7,) and log_p.dtype == dtype and torch.isfinite(log_p).all()


@pytest.mark.parametrize("name", DENSITY_SETS)
def test_samples_match_density(name):
    """Histogram of 200k samples vs. the integrated density, within the multinomial sampling noise.

    With cell probabilities ``p`` (one extra cell for the mass outside the box) and ``n`` samples,
    ``E|p̂ - p| ≈ sqrt(2/π) sqrt(p(1-p)/n)``, so ``E[TV] ≈ 0.8 · noise`` with
    ``noise = ½ Σ sqrt(p(1-p)/n)``. TV is a sum over many cells, so its relative spread is small
    (≈ 0.75/sqrt(#occupied cells)); the bound ``1.5 · noise`` is ~1.9x the mean and several sd above it.
    The quadrature error of ``p`` (< 1e-5 per cell) is negligible next to the noise (> 1e-3).
    """
    data = toy_dataset(name)
    p_box = _cell_probabilities(name).flatten()
    p = torch.cat([p_box, (1 - p_box.sum()).clamp_min(0).reshape(1)])
    x = data.sample(NUM_HIST, generator=_gen(2024), dtype=torch.float64)
    idx = torch.floor((x + data.bound) / (2 * data.bound) * COARSE).long()
    inside = ((idx >= 0) & (idx < COARSE)).all(dim=1)
    flat = torch.where(inside, idx[:, 0] * COARSE + idx[:, 1], COARSE * COARSE)
    p_hat = torch.bincount(flat, minlength=COARSE * COARSE + 1).double() / NUM_HIST
    tv = 0.5 * (p_hat - p).abs().sum().item()
    noise = 0.5 * torch.sqrt(p * (1 - p) / NUM_HIST).sum().item()
    assert tv < 1.5 * noise, f"TV {tv:.4f} vs sampling noise {noise:.4f}"


def test_checkerboard_support():
    data = toy_dataset("checkerboard")
    on = torch.tensor([[-3.0, -3.0], [-1.0, -1.0], [1.0, 1.0], [3.0, 3.0], [-3.0, 1.0], [3.0, -1.0]])
    off = torch.tensor([[-3.0, -1.0], [-1.0, 1.0], [1.0, 3.0], [3.0, 1.0], [4.5, 0.5], [0.5, -4.5]])
    assert torch.allclose(data.log_density(on), torch.full((6,), -math.log(32.0)))
    assert torch.isneginf(data.log_density(off)).all()
    x = data.sample(10_000, generator=_gen(5))
    assert torch.isfinite(data.log_density(x)).all()


def test_rings_and_mixtures_use_stated_parameters():
    x = torch.randn(100, 2, generator=_gen(6), dtype=torch.float64) * 2
    assert torch.allclose(toy_dataset("rings").log_density(x), Rings().double().log_prob(x))
    angles = torch.arange(8, dtype=torch.float64) * math.pi / 4
    means = 2 * math.sqrt(2) * torch.stack([angles.cos(), angles.sin()], dim=1)
    eight = GaussianMixture(means, stds=0.5 / math.sqrt(2)).double()
    assert torch.allclose(toy_dataset("8gaussians").log_density(x), eight.log_prob(x))
    centres = toy_dataset("25gaussians").sample(50_000, generator=_gen(7), dtype=torch.float64)
    grid = torch.round(centres * math.sqrt(2)).unique()
    assert torch.equal(grid, torch.arange(-2.0, 3.0, dtype=torch.float64))


def test_unknown_name_and_missing_density():
    with pytest.raises(ValueError, match="8gaussians.*checkerboard"):
        toy_dataset("spirals")
    for name in set(TOY_DATASETS) - set(DENSITY_SETS):
        with pytest.raises(NotImplementedError, match="no known density"):
            toy_dataset(name).log_density(torch.zeros(3, 2))
