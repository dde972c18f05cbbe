"""Analytic energies with a known normalised density: test targets and evaluation references.

Each class is an ``nn.Module`` (so it moves with ``.to(device)``) with no trainable parameters and exposes

- ``forward(x) -> (batch,)``: the energy ``E(x)``;
- ``log_z``: ``log ∫ exp(-E)``, so that ``log_prob(x) = -E(x) - log_z`` is the normalised log-density;
- ``sample(num, generator=None) -> (num, dim)``: exact independent draws.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import cast

import torch
from torch import Tensor, nn

_LOG_2PI = math.log(2.0 * math.pi)


def _as_float(value, dtype: torch.dtype | None = None) -> Tensor:
    """A float tensor: ``dtype`` if given, else the input's own float dtype, else the default dtype."""
    t = torch.as_tensor(value)
    if dtype is not None:
        return t.to(dtype)
    return t if t.is_floating_point() else t.to(torch.get_default_dtype())


class AnalyticEnergy(nn.Module):
    """Base for energies whose normaliser is known: ``log_prob(x) = -E(x) - log_z``."""

    dim: int
    log_z: float

    def log_prob(self, x: Tensor) -> Tensor:
        return -self(x) - self.log_z

    def sample(self, num: int, generator: torch.Generator | None = None) -> Tensor:  # pragma: no cover
        raise NotImplementedError

    def _randn(self, *shape: int, generator: torch.Generator | None) -> Tensor:
        ref = cast(Tensor, self._reference)  # a buffer, or a subclass property returning one
        return torch.randn(*shape, generator=generator, device=ref.device, dtype=ref.dtype)


class Gaussian(AnalyticEnergy):
    """Multivariate normal ``N(mean, covariance)``: ``E(x) = ½ (x-μ)ᵀ Σ⁻¹ (x-μ)``.

    ``log_z = ½ d log 2π + ½ log det Σ``. Use :meth:`isotropic` or :meth:`diagonal` for the common cases.

    >>> target = Gaussian(torch.zeros(2), torch.tensor([[1.0, 0.9], [0.9, 1.0]]))
    >>> target.sample(5).shape
    torch.Size([5, 2])
    """

    mean: Tensor
    covariance: Tensor
    precision: Tensor
    _chol: Tensor

    def __init__(self, mean: Tensor, covariance: Tensor):
        super().__init__()
        mean = _as_float(mean)
        covariance = _as_float(covariance, mean.dtype)
        d = mean.shape[-1]
        if mean.dim() != 1 or covariance.shape != (d, d):
            raise ValueError(f"mean must be (d,) and covariance (d, d); got {tuple(mean.shape)}, "
                             f"{tuple(covariance.shape)}")
        chol = torch.linalg.cholesky(covariance)  # raises if not positive definite
        self.dim = d
        self.register_buffer("mean", mean)
        self.register_buffer("covariance", covariance)
        self.register_buffer("precision", torch.cholesky_inverse(chol))
        self.register_buffer("_chol", chol)
        self.log_z = 0.5 * d * _LOG_2PI + float(torch.log(torch.diagonal(chol)).sum())

    @property
    def _reference(self) -> Tensor:
        return self.mean

    @classmethod
    def isotropic(cls, dim: int, std: float = 1.0, mean: Tensor | None = None) -> Gaussian:
        mean = torch.zeros(dim) if mean is None else _as_float(mean)
        return cls(mean, std**2 * torch.eye(dim))

    @classmethod
    def diagonal(cls, stds: Sequence[float], mean: Tensor | None = None) -> Gaussian:
        std = _as_float(stds)
        mean = torch.zeros_like(std) if mean is None else _as_float(mean, std.dtype)
        return cls(mean, torch.diag(std**2))

    def forward(self, x: Tensor) -> Tensor:
        diff = x - self.mean
        return 0.5 * ((diff @ self.precision) * diff).sum(-1)

    def sample(self, num: int, generator: torch.Generator | None = None) -> Tensor:
        return self.mean + self._randn(num, self.dim, generator=generator) @ self._chol.T


class GaussianMixture(AnalyticEnergy):
    """Mixture ``Σ_k w_k N(μ_k, diag(σ_k²))``: ``E(x) = -log Σ_k w_k N(x; μ_k, σ_k²)``, so ``log_z = 0``.

    ``stds`` is a scalar, ``(K,)`` (isotropic per component) or ``(K, d)`` (diagonal).

    >>> mixture = GaussianMixture(torch.tensor([[-2.0, 0.0], [2.0, 0.0]]), stds=0.5)
    >>> mixture.log_prob(torch.zeros(1, 2)).shape
    torch.Size([1])
    """

    means: Tensor
    stds: Tensor
    weights: Tensor

    def __init__(self, means: Tensor, stds: float | Tensor = 1.0, weights: Tensor | None = None):
        super().__init__()
        means = _as_float(means)
        if means.dim() != 2:
            raise ValueError(f"means must be (K, d), got {tuple(means.shape)}")
        k, d = means.shape
        stds = _as_float(stds, means.dtype)
        weights = torch.full((k,), 1.0 / k, dtype=means.dtype) if weights is None else _as_float(weights, means.dtype)
        if stds.dim() == 0 or stds.shape == (k,):
            stds = stds.reshape(-1, 1).expand(k, d)
        if (stds.shape != (k, d) or weights.shape != (k,) or (stds <= 0).any() or (weights < 0).any()
                or not weights.sum() > 0):
            raise ValueError("stds must be positive with shape (), (K,) or (K, d); weights (K,) non-negative "
                             "with a positive sum")
        self.dim = d
        self.log_z = 0.0
        self.register_buffer("means", means)
        self.register_buffer("stds", stds.contiguous())
        self.register_buffer("weights", weights / weights.sum())

    @property
    def _reference(self) -> Tensor:
        return self.means

    def component_log_prob(self, x: Tensor) -> Tensor:
        """``log w_k + log N(x; μ_k, σ_k²)`` for every component: shape ``(batch, K)``."""
        z = (x[:, None, :] - self.means) / self.stds
        log_norm = -0.5 * self.dim * _LOG_2PI - torch.log(self.stds).sum(-1)
        return torch.log(self.weights) + log_norm - 0.5 * (z**2).sum(-1)

    def forward(self, x: Tensor) -> Tensor:
        return -torch.logsumexp(self.component_log_prob(x), dim=-1)

    def sample(self, num: int, generator: torch.Generator | None = None) -> Tensor:
        idx = torch.multinomial(self.weights, num, replacement=True, generator=generator)
        return self.means[idx] + self.stds[idx] * self._randn(num, self.dim, generator=generator)


class Rings(AnalyticEnergy):
    """Concentric rings in 2-D (the AniLA paper's toy): radius ``r ~ N(R_k, s²)``, angle uniform.

    A draw is ``x = r (cos θ, sin θ)`` with ``k ~ w``, ``r = R_k + s ξ``, ``θ ~ U[0, 2π)``. A negative
    ``r`` lands at ``|r|`` on the opposite side, so the exact Cartesian density at ``ρ = |x|`` is

        p(x) = Σ_k w_k [φ((ρ - R_k)/s) + φ((ρ + R_k)/s)] / (2π s ρ)

    which integrates to one (``log_z = 0``). It has an integrable ``1/ρ`` singularity at the origin with
    negligible mass (``≈ 2e-10 · ρ / s`` within radius ``ρ`` for the defaults); ``ρ`` is floored at 1e-4 so
    the energy stays finite and a grid point at the origin is not inflated.
    Default: radii 1, 2, 3, 4, radial sd 0.15, equal weights.
    """

    radii: Tensor
    weights: Tensor

    def __init__(self, radii: Sequence[float] = (1.0, 2.0, 3.0, 4.0), radial_std: float = 0.15,
                 weights: Sequence[float] | None = None):
        super().__init__()
        r = _as_float(radii)
        k = r.numel()
        w = torch.full((k,), 1.0 / k, dtype=r.dtype) if weights is None else _as_float(weights, r.dtype)
        if radial_std <= 0 or bool((r <= 0).any()) or w.shape != (k,) or bool((w < 0).any()):
            raise ValueError("radii and radial_std must be positive, weights non-negative with one per ring")
        self.dim = 2
        self.log_z = 0.0
        self.radial_std = float(radial_std)
        self.register_buffer("radii", r)
        self.register_buffer("weights", w / w.sum())

    @property
    def _reference(self) -> Tensor:
        return self.radii

    def forward(self, x: Tensor) -> Tensor:
        s = self.radial_std
        rho = torch.linalg.vector_norm(x, dim=-1, keepdim=True).clamp_min(1e-4)
        log_w = torch.log(self.weights)
        near = -0.5 * ((rho - self.radii) / s) ** 2
        far = -0.5 * ((rho + self.radii) / s) ** 2
        radial = torch.logaddexp(near, far) + log_w  # (batch, K)
        log_p = torch.logsumexp(radial, dim=-1) - 0.5 * _LOG_2PI - math.log(s) - math.log(2 * math.pi)
        return -(log_p - torch.log(rho.squeeze(-1)))

    def sample(self, num: int, generator: torch.Generator | None = None) -> Tensor:
        idx = torch.multinomial(self.weights, num, replacement=True, generator=generator)
        r = self.radii[idx] + self.radial_std * self._randn(num, generator=generator)
        u = torch.rand(num, generator=generator, device=self.radii.device, dtype=self.radii.dtype)
        theta = 2 * math.pi * u
        return torch.stack([r * torch.cos(theta), r * torch.sin(theta)], dim=-1)
