"""Seeded 2-D toy data sets, with their true log-density where a closed form exists.

The sets follow the usual FFJORD / WGAN-GP toy conventions (re-derived here in torch, with i.i.d.
draws: mixture components, arms and moons are picked at random per point rather than in fixed
proportions), except ``rings``, which is the AniLA paper's target. Parameters, before/after scaling:

- ``rings``: :class:`anila.energies.Rings` -- radii 1, 2, 3, 4, radial sd 0.15, equal weights. Bound 5.
- ``8gaussians``: 8 equal-weight isotropic Gaussians, centres at radius ``4/√2 = 2√2`` and angles
  ``kπ/4``, sd ``0.5/√2 ≈ 0.354`` (FFJORD: scale 4, sd 0.5, everything divided by √2). Bound 4.5.
- ``25gaussians``: 25 equal-weight isotropic Gaussians, centres ``(i, j)/√2`` for ``i, j ∈ {-2..2}``,
  sd ``0.05/(2√2) ≈ 0.0177`` (WGAN-GP: grid spacing 2, sd 0.05, divided by 2√2). Bound 2.
- ``moons``: two half circles of radius 1 (upper centred at (0, 0), lower at (1, 0.5) and flipped),
  Gaussian noise sd 0.1, then ``2 x + (-1, -0.2)``. Bound 4.
- ``swissroll``: ``t = 1.5π (1 + 2u)``, ``(t cos t, t sin t) + N(0, 1)`` noise, divided by 5. Bound 4.
- ``circles``: radius 1 or 0.5 with equal probability, Gaussian noise sd 0.08, times 3. Bound 4.
- ``pinwheel``: 5 arms; radial ``N(1, 0.3²)``, tangential ``N(0, 0.1²)`` features rotated by
  ``-(2πk/5 + 0.25 exp(radial))``, times 2. Bound 4.
- ``2spirals``: ``n = 3π √u``, ``±(-n cos n + 0.5 u₁, n sin n + 0.5 u₂) / 3 + N(0, 0.1²)``. Bound 4.
- ``checkerboard``: uniform on the 8 squares of side 2 of a 4x4 board on ``[-4, 4]²`` where
  ``⌊x₁/2⌋ + ⌊x₂/2⌋`` is even; density 1/32 there, 0 elsewhere. Bound 4.

``rings``, ``8gaussians``, ``25gaussians`` and ``checkerboard`` have a closed-form density; ``pinwheel`` and
``2spirals`` have one to quadrature / root-finding accuracy (:mod:`anila.data.toy_density`).
``bound`` is the half-width of a box ``[-bound, bound]²`` holding essentially all the mass.

>>> data = toy_dataset("8gaussians")
>>> x = data.sample(1000, generator=torch.Generator().manual_seed(0))
>>> x.shape, data.log_density(x).shape
(torch.Size([1000, 2]), torch.Size([1000]))
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from anila.data.toy_density import pinwheel_log_density, two_spirals_log_density
from anila.energies import AnalyticEnergy, GaussianMixture, Rings

__all__ = ["TOY_DATASETS", "ToyDataset", "toy_dataset"]

Sampler = Callable[[int, "torch.Generator | None", "torch.device | None", torch.dtype], Tensor]


@dataclass(frozen=True)
class ToyDataset:
    """A named 2-D distribution: exact seeded sampling and, where known, its normalised log-density."""

    name: str
    bound: float
    _sampler: Sampler = field(repr=False)
    _log_density: Callable[[Tensor], Tensor] | None = field(default=None, repr=False)
    _energy: Callable[[], AnalyticEnergy] | None = field(default=None, repr=False)

    def true_energy(self) -> AnalyticEnergy:
        """The analytic energy behind ``rings`` and the Gaussian mixtures (a fresh module each call)."""
        if self._energy is None:
            raise NotImplementedError(f"toy data set {self.name!r} is not defined by an analytic energy")
        return self._energy()

    @property
    def has_density(self) -> bool:
        return self._log_density is not None

    def sample(self, num: int, *, generator: torch.Generator | None = None, device=None,
               dtype: torch.dtype = torch.float32) -> Tensor:
        """``num`` i.i.d. draws, shape ``(num, 2)``; deterministic given the generator's seed.

        ``device`` defaults to the generator's device (CPU without a generator).
        """
        if device is None and generator is not None:
            device = generator.device
        return self._sampler(num, generator, device, dtype)

    def log_density(self, x: Tensor) -> Tensor:
        """Normalised true log-density of ``x`` ``(batch, 2)``: shape ``(batch,)``, ``-inf`` off support."""
        if self._log_density is None:
            raise NotImplementedError(
                f"toy data set {self.name!r} has no known density; "
                f"only {', '.join(n for n in TOY_DATASETS if _REGISTRY[n].has_density)} do")
        return self._log_density(x)


def _from_energy(name: str, bound: float, make: Callable[[], AnalyticEnergy]) -> ToyDataset:
    """A data set that samples from and evaluates a fresh analytic energy, consistent by construction."""

    def sampler(num, generator, device, dtype):
        return make().to(device=device, dtype=dtype).sample(num, generator=generator)

    def log_density(x):
        return make().to(device=x.device, dtype=x.dtype).log_prob(x)

    return ToyDataset(name, bound, sampler, log_density, make)


def _eight_gaussians() -> GaussianMixture:
    angles = torch.arange(8, dtype=torch.float64) * (math.pi / 4)
    means = 2 * math.sqrt(2) * torch.stack([torch.cos(angles), torch.sin(angles)], dim=-1)
    return GaussianMixture(means, stds=0.5 / math.sqrt(2))


def _twenty_five_gaussians() -> GaussianMixture:
    grid = torch.arange(-2, 3, dtype=torch.float64) / math.sqrt(2)
    means = torch.cartesian_prod(grid, grid)
    return GaussianMixture(means, stds=0.05 / (2 * math.sqrt(2)))


def _rand(num, generator, device, dtype) -> Tensor:
    return torch.rand(num, generator=generator, device=device, dtype=dtype)


def _randn(num, generator, device, dtype) -> Tensor:
    return torch.randn(num, 2, generator=generator, device=device, dtype=dtype)


def _coin(num, generator, device) -> Tensor:
    """Fair boolean coin flips."""
    return torch.randint(0, 2, (num,), generator=generator, device=device).bool()


def _moons(num, generator, device, dtype):
    theta = math.pi * _rand(num, generator, device, dtype)
    upper = _coin(num, generator, device)
    x = torch.where(upper, torch.cos(theta), 1 - torch.cos(theta))
    y = torch.where(upper, torch.sin(theta), 0.5 - torch.sin(theta))
    pts = torch.stack([x, y], dim=-1) + 0.1 * _randn(num, generator, device, dtype)
    return torch.stack([2 * pts[:, 0] - 1, 2 * pts[:, 1] - 0.2], dim=-1)


def _swissroll(num, generator, device, dtype):
    t = 1.5 * math.pi * (1 + 2 * _rand(num, generator, device, dtype))
    pts = torch.stack([t * torch.cos(t), t * torch.sin(t)], dim=-1) + _randn(num, generator, device, dtype)
    return pts / 5


def _circles(num, generator, device, dtype):
    theta = 2 * math.pi * _rand(num, generator, device, dtype)
    radius = torch.where(_coin(num, generator, device), 1.0, 0.5).to(dtype)
    pts = radius[:, None] * torch.stack([torch.cos(theta), torch.sin(theta)], dim=-1)
    return 3 * (pts + 0.08 * _randn(num, generator, device, dtype))


def _pinwheel(num, generator, device, dtype):
    arm = torch.randint(0, 5, (num,), generator=generator, device=device).to(dtype)
    feat = _randn(num, generator, device, dtype) * torch.tensor([0.3, 0.1], device=device, dtype=dtype)
    radial, tangential = feat[:, 0] + 1, feat[:, 1]
    angle = 2 * math.pi / 5 * arm + 0.25 * torch.exp(radial)
    c, s = torch.cos(angle), torch.sin(angle)
    return 2 * torch.stack([radial * c + tangential * s, tangential * c - radial * s], dim=-1)


def _two_spirals(num, generator, device, dtype):
    n = 3 * math.pi * torch.sqrt(_rand(num, generator, device, dtype))
    jitter = 0.5 * torch.rand(num, 2, generator=generator, device=device, dtype=dtype)
    pts = torch.stack([-n * torch.cos(n), n * torch.sin(n)], dim=-1) + jitter
    sign = torch.where(_coin(num, generator, device), 1.0, -1.0).to(dtype)
    return sign[:, None] * pts / 3 + 0.1 * _randn(num, generator, device, dtype)


def _checkerboard(num, generator, device, dtype):
    u = torch.rand(num, 2, generator=generator, device=device, dtype=dtype)
    column = torch.randint(0, 4, (num,), generator=generator, device=device)
    row = 2 * _coin(num, generator, device).long() + column % 2  # same parity as the column
    cells = torch.stack([column, row], dim=-1).to(dtype)
    return 2 * (cells + u) - 4


def _checkerboard_log_density(x: Tensor) -> Tensor:
    inside = ((x >= -4) & (x < 4)).all(dim=-1)
    even = torch.floor(x / 2).sum(dim=-1).remainder(2) == 0
    log_p = torch.full(x.shape[:-1], -math.log(32.0), device=x.device, dtype=x.dtype)
    return log_p.masked_fill(~(inside & even), -math.inf)


_REGISTRY: dict[str, ToyDataset] = {
    "rings": _from_energy("rings", 5.0, Rings),
    "8gaussians": _from_energy("8gaussians", 4.5, _eight_gaussians),
    "25gaussians": _from_energy("25gaussians", 2.0, _twenty_five_gaussians),
    "moons": ToyDataset("moons", 4.0, _moons),
    "swissroll": ToyDataset("swissroll", 4.0, _swissroll),
    "circles": ToyDataset("circles", 4.0, _circles),
    "pinwheel": ToyDataset("pinwheel", 4.0, _pinwheel, pinwheel_log_density),
    "2spirals": ToyDataset("2spirals", 4.0, _two_spirals, two_spirals_log_density),
    "checkerboard": ToyDataset("checkerboard", 4.0, _checkerboard, _checkerboard_log_density),
}
TOY_DATASETS: tuple[str, ...] = tuple(_REGISTRY)


def toy_dataset(name: str) -> ToyDataset:
    """The toy data set called ``name`` (one of :data:`TOY_DATASETS`)."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown toy data set {name!r}; choose one of {', '.join(TOY_DATASETS)}") from None
