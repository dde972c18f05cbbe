"""Objectives as small frozen configs with one call: ``objective(energy, x, generator) -> (loss, metrics)``.

This is what a training config's ``[objective]`` section builds (``name = "cd" | "sm" | "dsm" | "ssm" |
"nce" | "perturbation_nce" | "multilevel_dsm" | "improved_cd"``). ``cd`` and ``improved_cd`` train with
MCMC negatives: the training loop runs the sampler for them. The others are MCMC-free (tutorial seed,
sections 4-5). ``nce`` learns ``log Z`` as a parameter of :class:`LogZEnergy`, which the run wraps around the
energy, and fits its Gaussian noise to the data before training (:meth:`NoiseContrastiveEstimation.prepare`).

>>> objective = SlicedScoreMatching(num_projections=2, variance_reduced=True)
>>> from anila.energies import MLPEnergy
>>> generator = torch.Generator().manual_seed(0)
>>> energy, data_batch = MLPEnergy(dim=2, activation="silu"), torch.randn(64, 2, generator=generator)
>>> loss, metrics = objective(energy, data_batch, generator)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor, nn

from anila.objectives.nce import GaussianNoise, nce_loss, perturbation_nce
from anila.objectives.score_matching import (
    PROJECTIONS,
    annealed_langevin,
    denoising_score_matching,
    exact_score_matching,
    multilevel_dsm,
    sliced_score_matching,
)

Metrics = dict[str, Tensor]


class LogZEnergy(nn.Module):
    """``energy`` plus a learnable scalar ``log_z`` (for NCE): ``forward(x) = energy(x)``."""

    def __init__(self, energy: nn.Module):
        super().__init__()
        self.energy = energy
        self.log_z = nn.Parameter(torch.zeros(()))

    def forward(self, x: Tensor) -> Tensor:
        return self.energy(x)


def _check_projection(projection: str) -> None:
    if projection not in PROJECTIONS:
        raise ValueError(f"projection must be one of {', '.join(PROJECTIONS)}; got {projection!r}")


@dataclass(frozen=True)
class ContrastiveDivergence:
    """Maximum likelihood with sampler negatives; the loop's sampler, chains and ``train.l2_reg`` apply."""

    uses_sampler: ClassVar[bool] = True
    needs_smooth_energy: ClassVar[bool] = False


@dataclass(frozen=True)
class ImprovedCD:
    """Improved contrastive divergence (Du et al. 2021): the CD loss plus ``kl_weight`` × the KL term through
    the differentiable last sampler step (energy parameters frozen there), whose entropy part is the
    nearest-neighbour estimate (weight ``entropy_weight``) against the last ``bank_size`` negatives. With
    ``augment = true``, chains drawn from the replay buffer first go through the augmentation transitions
    (flip, colour jitter, resized crop, blur; :class:`anila.chains.augment.Augmentation`)."""

    kl_weight: float = 1.0
    entropy_weight: float = 1.0
    bank_size: int = 100
    augment: bool = False
    uses_sampler: ClassVar[bool] = True
    needs_smooth_energy: ClassVar[bool] = False

    def __post_init__(self) -> None:
        if self.kl_weight < 0 or self.entropy_weight < 0 or self.bank_size < 2:
            raise ValueError(f"kl_weight and entropy_weight must be >= 0 and bank_size >= 2; got {self.kl_weight}, "
                             f"{self.entropy_weight}, {self.bank_size}")


@dataclass(frozen=True)
class ScoreMatching:
    """Exact score matching (eq. 8): ``½‖∇E‖² − tr ∇²E``; one backward per dimension, ``dim <= max_dim``."""

    max_dim: int = 20
    uses_sampler: ClassVar[bool] = False
    needs_smooth_energy: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if self.max_dim < 1:
            raise ValueError(f"max_dim must be >= 1, got {self.max_dim}")

    def __call__(self, energy, x: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Metrics]:
        return exact_score_matching(energy, x, max_dim=self.max_dim)


@dataclass(frozen=True)
class DenoisingScoreMatching:
    """Denoising score matching (eq. 10-11) at noise ``sigma``, optionally with the control variate (eq. 13-14).

    Its optimum is the data convolved with ``N(0, sigma² I)``, not the data."""

    sigma: float = 0.1
    control_variate: bool = False
    uses_sampler: ClassVar[bool] = False
    needs_smooth_energy: ClassVar[bool] = False

    def __post_init__(self) -> None:
        if not self.sigma > 0:
            raise ValueError(f"sigma must be > 0, got {self.sigma}")

    def __call__(self, energy, x: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Metrics]:
        return denoising_score_matching(energy, x, sigma=self.sigma, generator=generator,
                                        control_variate=self.control_variate)


@dataclass(frozen=True)
class SlicedScoreMatching:
    """Sliced score matching (eq. 15), or its variance-reduced form (eq. 17)."""

    num_projections: int = 1
    projection: str = "gaussian"
    variance_reduced: bool = False
    uses_sampler: ClassVar[bool] = False
    needs_smooth_energy: ClassVar[bool] = True

    def __post_init__(self) -> None:
        _check_projection(self.projection)
        if self.num_projections < 1:
            raise ValueError(f"num_projections must be >= 1, got {self.num_projections}")

    def __call__(self, energy, x: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Metrics]:
        return sliced_score_matching(energy, x, num_projections=self.num_projections, projection=self.projection,
                                     variance_reduced=self.variance_reduced, generator=generator)


@dataclass(frozen=True)
class NoiseContrastiveEstimation:
    """NCE (eq. 18-21) against a Gaussian fitted to ``fit_samples`` data points, ``noise_ratio`` noise draws
    per data point, with ``log Z`` learned (the energy must be a :class:`LogZEnergy`)."""

    noise_ratio: float = 1.0
    fit_samples: int = 10000
    uses_sampler: ClassVar[bool] = False
    needs_smooth_energy: ClassVar[bool] = False

    def __post_init__(self) -> None:
        if not self.noise_ratio > 0 or self.fit_samples < 2:
            raise ValueError(f"noise_ratio must be > 0 and fit_samples >= 2; got {self.noise_ratio}, "
                             f"{self.fit_samples}")

    def prepare(self, data: Callable[[int, torch.Generator], Tensor], generator: torch.Generator) -> Callable:
        """Fit the noise to the data; returns the bound loss ``(energy, x, generator) -> (loss, metrics)``."""
        noise = GaussianNoise.fit(data(self.fit_samples, generator))

        def loss(energy: LogZEnergy, x: Tensor, generator: torch.Generator | None = None):
            if not isinstance(energy, LogZEnergy):
                raise TypeError("NCE learns log Z: wrap the energy in anila.objectives.LogZEnergy")
            return nce_loss(energy, energy.log_z, x, noise.to(x.device), noise_ratio=self.noise_ratio,
                            generator=generator)

        return loss


@dataclass(frozen=True)
class PerturbationNCE:
    """NCE against data shifted by ``±scale · v`` (eq. 25-26): no noise density, no ``log Z``."""

    scale: float = 0.1
    projection: str = "gaussian"
    num_projections: int = 1
    uses_sampler: ClassVar[bool] = False
    needs_smooth_energy: ClassVar[bool] = True

    def __post_init__(self) -> None:
        _check_projection(self.projection)
        if not self.scale > 0 or self.num_projections < 1:
            raise ValueError(f"scale must be > 0 and num_projections >= 1; got {self.scale}, {self.num_projections}")

    def __call__(self, energy, x: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Metrics]:
        return perturbation_nce(energy, x, scale=self.scale, projection=self.projection,
                                num_projections=self.num_projections, generator=generator)


class AtNoiseLevel(nn.Module):
    """A noise-conditional energy ``E(x, σ)`` read at one fixed ``σ``: ``forward(x) = E(x, sigma)``."""

    def __init__(self, energy: nn.Module, sigma: float):
        super().__init__()
        self.energy = energy
        self.sigma = float(sigma)

    def forward(self, x: Tensor) -> Tensor:
        return self.energy(x, torch.full((x.shape[0],), self.sigma, device=x.device, dtype=x.dtype))


@dataclass(frozen=True)
class MultilevelDenoisingScoreMatching:
    """Multi-noise-level DSM (section 4.4, NCSN): σ²-weighted DSM over ``num_levels`` geometric noise levels from
    ``sigma_max`` to ``sigma_min``, for a noise-conditional energy ``E(x, σ)`` (``model.name =
    "noise_conditional_mlp"``). Samples come from annealed Langevin, ``steps_per_level`` steps per level with
    step ``sampling_step_size · σ_l² / σ_min²`` (default ``sampling_step_size = σ_min²``)."""

    sigma_max: float = 1.0
    sigma_min: float = 0.05
    num_levels: int = 8
    steps_per_level: int = 50
    sampling_step_size: float | None = None
    uses_sampler: ClassVar[bool] = False
    needs_smooth_energy: ClassVar[bool] = False

    def __post_init__(self) -> None:
        if not 0 < self.sigma_min < self.sigma_max or self.num_levels < 2 or self.steps_per_level < 1:
            raise ValueError(f"sigma_min must be in (0, sigma_max), num_levels >= 2 and steps_per_level >= 1; got "
                             f"{self.sigma_min}, {self.sigma_max}, {self.num_levels}, {self.steps_per_level}")
        if self.sampling_step_size is not None and not self.sampling_step_size > 0:
            raise ValueError(f"sampling_step_size must be > 0, got {self.sampling_step_size}")

    @property
    def sigmas(self) -> list[float]:
        ratio = (self.sigma_min / self.sigma_max) ** (1 / (self.num_levels - 1))
        return [self.sigma_max * ratio**i for i in range(self.num_levels)]

    def __call__(self, energy, x: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Metrics]:
        return multilevel_dsm(energy, x, self.sigmas, generator=generator)

    def sample(self, energy, x0: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Annealed Langevin from ``x0`` through every level, largest first."""
        step = self.sampling_step_size if self.sampling_step_size is not None else self.sigma_min**2
        return annealed_langevin(energy, x0, self.sigmas, steps_per_level=self.steps_per_level, step_size=step,
                                 generator=generator)

    def density_energy(self, energy: nn.Module) -> nn.Module:
        """The energy whose ``exp(-E)`` is the model's density: ``E(x, sigma_min)``."""
        return AtNoiseLevel(energy, self.sigma_min)


#: Objective names used by configs.
OBJECTIVES = {
    "cd": ContrastiveDivergence, "improved_cd": ImprovedCD, "sm": ScoreMatching, "dsm": DenoisingScoreMatching,
    "ssm": SlicedScoreMatching, "nce": NoiseContrastiveEstimation, "perturbation_nce": PerturbationNCE,
    "multilevel_dsm": MultilevelDenoisingScoreMatching,
}


def bind_objective(objective, data: Callable[[int, torch.Generator], Tensor], generator: torch.Generator):
    """The ``(energy, x, generator) -> (loss, metrics)`` callable to train with (``None`` for sampler-based
    objectives, which the loop handles itself)."""
    if objective.uses_sampler:
        return None
    prepare = getattr(objective, "prepare", None)
    return prepare(data, generator) if prepare is not None else objective
