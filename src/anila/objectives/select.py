"""The ``[objective]`` settings: one frozen spec per training method, each building its run's objective.

A training config's ``[objective]`` section picks one by name (``name = "cd" | "improved_cd" | "sm" | "dsm" |
"ssm" | "nce" | "perturbation_nce" | "multilevel_dsm" | "ksd" | "stein_critic" | "mpf" | "adversarial_flow" |
"adversarial_noisy" | "cooperative"``, see :data:`OBJECTIVES`); the other keys are the spec's fields. Every spec
is an :class:`~anila.objectives.base.ObjectiveSpec` and :meth:`build` gives the
:class:`~anila.objectives.base.Objective` the training loop calls: ``cd`` and ``improved_cd`` train with MCMC
negatives (the loop runs the sampler for them), and so does ``cooperative`` (a generator starts the chains); the
adversarial samplers take their negatives from a learned sampler instead; the others are MCMC-free (tutorial seed,
sections 4-6; the Stein and MPF objectives live in :mod:`anila.objectives.stein` and :mod:`anila.objectives.mpf`,
the section 6.3 ones in :mod:`anila.objectives.adversarial` and :mod:`anila.objectives.cooperative`). ``nce``
learns ``log Z`` as an auxiliary module with its own optimizer and fits its Gaussian noise to the data when it
is built.

>>> from anila.energies import MLPEnergy
>>> from anila.objectives.base import Batch, ObjectiveContext
>>> generator = torch.Generator().manual_seed(0)
>>> energy, data_batch = MLPEnergy(dim=2, activation="silu"), torch.randn(64, 2, generator=generator)
>>> spec = SlicedScoreMatching(num_projections=2, variance_reduced=True)
>>> objective = spec.build(ObjectiveContext(energy, data=lambda n, g: torch.randn(n, 2), generator=generator))
>>> loss, metrics = objective.loss(energy, Batch(data_batch), generator)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor, nn

from anila.energies.generators import CouplingFlow, LatentGenerator
from anila.objectives.adversarial import AdversarialFlowLoss, NoisySamplerLoss
from anila.objectives.base import NOISE_CONDITIONAL_MODELS, LossOnly, Objective, ObjectiveContext, ObjectiveSpec
from anila.objectives.contrastive import ContrastiveDivergenceLoss
from anila.objectives.cooperative import CooperativeLoss
from anila.objectives.improved_cd import ImprovedCDLoss
from anila.objectives.jem import JEM
from anila.objectives.mpf import MinimumProbabilityFlow
from anila.objectives.nce import GaussianNoise, NCELoss, perturbation_nce
from anila.objectives.recovery import DiffusionRecoveryLikelihood
from anila.objectives.score_matching import (
    PROJECTIONS,
    annealed_langevin,
    denoising_score_matching,
    exact_score_matching,
    multilevel_dsm,
    sliced_score_matching,
)
from anila.objectives.stein import KernelSteinDiscrepancy, SteinCritic

Metrics = dict[str, Tensor]


def _check_projection(projection: str) -> None:
    if projection not in PROJECTIONS:
        raise ValueError(f"projection must be one of {', '.join(PROJECTIONS)}; got {projection!r}")


@dataclass(frozen=True)
class ContrastiveDivergence(ObjectiveSpec):
    """Maximum likelihood with sampler negatives; the loop's sampler, chains and ``train.l2_reg`` apply."""

    uses_sampler: ClassVar[bool] = True

    def build(self, context: ObjectiveContext) -> Objective:
        return ContrastiveDivergenceLoss(l2_reg=context.l2_reg)


@dataclass(frozen=True)
class ImprovedCD(ObjectiveSpec):
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

    def __post_init__(self) -> None:
        if self.kl_weight < 0 or self.entropy_weight < 0 or self.bank_size < 2:
            raise ValueError(f"kl_weight and entropy_weight must be >= 0 and bank_size >= 2; got {self.kl_weight}, "
                             f"{self.entropy_weight}, {self.bank_size}")

    def check(self, *, model_name: str, chain_init: str, is_points: bool, num_steps: int) -> None:
        if num_steps < 1:
            raise ValueError("train.num_steps: improved_cd backpropagates through the last sampler step; set "
                             "num_steps >= 1")
        if self.augment and (is_points or chain_init not in ("replay", "persistent")):
            raise ValueError("objective.augment: augmentation transitions apply to image chains drawn from a "
                             "buffer; set chains.init = \"replay\" and an image data set, or augment = false")

    def build(self, context: ObjectiveContext) -> Objective:
        return ImprovedCDLoss(kl_weight=self.kl_weight, entropy_weight=self.entropy_weight,
                              bank_size=self.bank_size, augment=self.augment, l2_reg=context.l2_reg)


@dataclass(frozen=True)
class ScoreMatching(ObjectiveSpec):
    """Exact score matching (eq. 8): ``½‖∇E‖² − tr ∇²E``; one backward per dimension, ``dim <= max_dim``."""

    max_dim: int = 20
    needs_smooth_energy: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if self.max_dim < 1:
            raise ValueError(f"max_dim must be >= 1, got {self.max_dim}")

    def __call__(self, energy, x: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Metrics]:
        return exact_score_matching(energy, x, max_dim=self.max_dim)

    def build(self, context: ObjectiveContext) -> Objective:
        return LossOnly(self)


@dataclass(frozen=True)
class DenoisingScoreMatching(ObjectiveSpec):
    """Denoising score matching (eq. 10-11) at noise ``sigma``, optionally with the control variate (eq. 13-14).

    Its optimum is the data convolved with ``N(0, sigma² I)``, not the data."""

    sigma: float = 0.1
    control_variate: bool = False

    def __post_init__(self) -> None:
        if not self.sigma > 0:
            raise ValueError(f"sigma must be > 0, got {self.sigma}")

    def __call__(self, energy, x: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Metrics]:
        return denoising_score_matching(energy, x, sigma=self.sigma, generator=generator,
                                        control_variate=self.control_variate)

    def build(self, context: ObjectiveContext) -> Objective:
        return LossOnly(self)


@dataclass(frozen=True)
class SlicedScoreMatching(ObjectiveSpec):
    """Sliced score matching (eq. 15), or its variance-reduced form (eq. 17)."""

    num_projections: int = 1
    projection: str = "gaussian"
    variance_reduced: bool = False
    needs_smooth_energy: ClassVar[bool] = True

    def __post_init__(self) -> None:
        _check_projection(self.projection)
        if self.num_projections < 1:
            raise ValueError(f"num_projections must be >= 1, got {self.num_projections}")

    def __call__(self, energy, x: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Metrics]:
        return sliced_score_matching(energy, x, num_projections=self.num_projections, projection=self.projection,
                                     variance_reduced=self.variance_reduced, generator=generator)

    def build(self, context: ObjectiveContext) -> Objective:
        return LossOnly(self)


@dataclass(frozen=True)
class NoiseContrastiveEstimation(ObjectiveSpec):
    """NCE (eq. 18-21) against a Gaussian fitted to ``fit_samples`` data points, ``noise_ratio`` noise draws
    per data point, with ``log Z`` learned: an auxiliary module ``log_z`` with its own Adam (the energy's
    settings), checkpointed with the run."""

    noise_ratio: float = 1.0
    fit_samples: int = 10000

    def __post_init__(self) -> None:
        if not self.noise_ratio > 0 or self.fit_samples < 2:
            raise ValueError(f"noise_ratio must be > 0 and fit_samples >= 2; got {self.noise_ratio}, "
                             f"{self.fit_samples}")

    def build(self, context: ObjectiveContext) -> Objective:
        """Fit the noise to ``fit_samples`` data points (drawn with the run's generator)."""
        noise = GaussianNoise.fit(context.data(self.fit_samples, context.generator)).to(context.device)
        return NCELoss(noise, noise_ratio=self.noise_ratio, context=context)


@dataclass(frozen=True)
class PerturbationNCE(ObjectiveSpec):
    """NCE against data shifted by ``±scale · v`` (eq. 25-26): no noise density, no ``log Z``."""

    scale: float = 0.1
    projection: str = "gaussian"
    num_projections: int = 1
    needs_smooth_energy: ClassVar[bool] = True

    def __post_init__(self) -> None:
        _check_projection(self.projection)
        if not self.scale > 0 or self.num_projections < 1:
            raise ValueError(f"scale must be > 0 and num_projections >= 1; got {self.scale}, {self.num_projections}")

    def __call__(self, energy, x: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Metrics]:
        return perturbation_nce(energy, x, scale=self.scale, projection=self.projection,
                                num_projections=self.num_projections, generator=generator)

    def build(self, context: ObjectiveContext) -> Objective:
        return LossOnly(self)


class AtNoiseLevel(nn.Module):
    """A noise-conditional energy ``E(x, σ)`` read at one fixed ``σ``: ``forward(x) = E(x, sigma)``."""

    def __init__(self, energy: nn.Module, sigma: float):
        super().__init__()
        self.energy = energy
        self.sigma = float(sigma)

    def forward(self, x: Tensor) -> Tensor:
        return self.energy(x, torch.full((x.shape[0],), self.sigma, device=x.device, dtype=x.dtype))


@dataclass(frozen=True)
class MultilevelDenoisingScoreMatching(ObjectiveSpec):
    """Multi-noise-level DSM (section 4.4, NCSN): σ²-weighted DSM over ``num_levels`` geometric noise levels from
    ``sigma_max`` to ``sigma_min``, for a noise-conditional energy ``E(x, σ)`` (``model.name =
    "noise_conditional_mlp"``, or ``"noise_conditional_convnet"`` for images). Samples come from annealed
    Langevin, ``steps_per_level`` steps per level with step ``sampling_step_size · σ_l² / σ_min²`` (default
    ``sampling_step_size = σ_min²``)."""

    sigma_max: float = 1.0
    sigma_min: float = 0.05
    num_levels: int = 8
    steps_per_level: int = 50
    sampling_step_size: float | None = None
    models: ClassVar[tuple[str, ...] | None] = NOISE_CONDITIONAL_MODELS
    noise_conditional: ClassVar[bool] = True
    sampling: ClassVar[str | None] = "annealed Langevin"

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

    def build(self, context: ObjectiveContext) -> Objective:
        return LossOnly(self)

    def sample(self, energy, x0: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Annealed Langevin from ``x0`` through every level, largest first."""
        step = self.sampling_step_size if self.sampling_step_size is not None else self.sigma_min**2
        return annealed_langevin(energy, x0, self.sigmas, steps_per_level=self.steps_per_level, step_size=step,
                                 generator=generator)

    def density_energy(self, energy: nn.Module) -> nn.Module:
        """The energy whose ``exp(-E)`` is the model's density: ``E(x, sigma_min)``."""
        return AtNoiseLevel(energy, self.sigma_min)


def _flat_dim(context: ObjectiveContext, fit_samples: int) -> tuple[Tensor, tuple[int, ...]]:
    """``fit_samples`` data points (drawn with the run's generator) and the event shape."""
    x = context.data(fit_samples, context.generator)
    x = x[0] if isinstance(x, tuple) else x  # a labelled data sampler
    return x.to(context.device), tuple(x.shape[1:])


def _check_sampler_net(width: int, depth: int, lr: float | None, fit_samples: int) -> None:
    if width < 1 or depth < 0 or fit_samples < 2 or (lr is not None and not lr > 0):
        raise ValueError(f"width must be >= 1, depth >= 0, fit_samples >= 2 and lr > 0; got {width}, {depth}, "
                         f"{fit_samples}, {lr}")


@dataclass(frozen=True)
class AdversarialFlow(ObjectiveSpec):
    """Adversarial training with a RealNVP flow sampler (section 6.3, eq. 31-32): the energy does CD against the
    flow's samples, the flow minimises ``E_q[E_θ] - entropy_weight · H(q)`` (``KL(q ‖ p_θ)`` up to ``log Z``).
    The flow: ``num_layers`` affine couplings of ``depth`` × ``width`` MLPs, log-scale bounded by
    ``max_log_scale``, its output affine fitted to ``fit_samples`` data points; its own Adam at ``lr``
    (default: the energy's). MCMC-free; ``train.l2_reg`` applies to the energy's half."""

    num_layers: int = 6
    width: int = 64
    depth: int = 2
    max_log_scale: float = 2.0
    entropy_weight: float = 1.0
    lr: float | None = None
    fit_samples: int = 1000

    def __post_init__(self) -> None:
        _check_sampler_net(self.width, self.depth, self.lr, self.fit_samples)
        if self.num_layers < 1 or not self.max_log_scale > 0 or self.entropy_weight < 0:
            raise ValueError(f"num_layers must be >= 1, max_log_scale > 0 and entropy_weight >= 0; got "
                             f"{self.num_layers}, {self.max_log_scale}, {self.entropy_weight}")

    def build(self, context: ObjectiveContext) -> Objective:
        x, event = _flat_dim(context, self.fit_samples)
        dim = math.prod(event)
        if dim < 2:
            raise ValueError("objective.name: adversarial_flow needs events of at least 2 coordinates")
        flow = CouplingFlow(dim, self.num_layers, self.width, self.depth, self.max_log_scale, event)
        flow = flow.to(device=context.device, dtype=x.dtype).fit(x)
        return AdversarialFlowLoss(flow, context.adam(flow, self.lr), entropy_weight=self.entropy_weight,
                                   l2_reg=context.l2_reg)


@dataclass(frozen=True)
class AdversarialNoisy(ObjectiveSpec):
    """Adversarial training with VERA's noisy generator ``x = g(z) + σ · ε`` (Grathwohl et al. 2021):
    ``g`` a ``depth`` × ``width`` MLP of a ``latent_dim`` Gaussian latent, its output affine fitted to the data,
    ``σ`` starting at ``sigma`` and learned when ``learn_sigma``; the entropy gradient by self-normalised
    importance sampling over the batch's latents
    (:func:`~anila.objectives.adversarial.noisy_entropy_surrogate`); its own Adam at ``lr``."""

    latent_dim: int = 2
    width: int = 64
    depth: int = 2
    sigma: float = 0.1
    learn_sigma: bool = True
    entropy_weight: float = 1.0
    lr: float | None = None
    fit_samples: int = 1000

    def __post_init__(self) -> None:
        _check_sampler_net(self.width, self.depth, self.lr, self.fit_samples)
        if self.latent_dim < 1 or not self.sigma > 0 or self.entropy_weight < 0:
            raise ValueError(f"latent_dim must be >= 1, sigma > 0 and entropy_weight >= 0; got {self.latent_dim}, "
                             f"{self.sigma}, {self.entropy_weight}")

    def build(self, context: ObjectiveContext) -> Objective:
        x, event = _flat_dim(context, self.fit_samples)
        net = LatentGenerator(math.prod(event), self.latent_dim, self.width, self.depth, self.sigma, event,
                              learn_sigma=self.learn_sigma)
        net = net.to(device=context.device, dtype=x.dtype).fit(x)
        return NoisySamplerLoss(net, context.adam(net, self.lr), entropy_weight=self.entropy_weight,
                                l2_reg=context.l2_reg)


@dataclass(frozen=True)
class Cooperative(ObjectiveSpec):
    """Cooperative learning (Xie et al. 2018): a generator ``g(z) + sigma · ε`` (``latent_dim`` Gaussian latent,
    ``depth`` × ``width`` MLP, output affine fitted to the data) starts the chains (``chains.init =
    "generator"``); the sampler revises its proposals in ``train.num_steps`` steps; the energy does CD on the
    revised samples and the generator regresses onto them (weight ``generator_weight``) at latents inferred by
    ``infer_steps`` Langevin steps of size ``infer_step_size``, with its own Adam at ``lr``."""

    latent_dim: int = 2
    width: int = 64
    depth: int = 2
    sigma: float = 0.1
    infer_steps: int = 10
    infer_step_size: float = 0.1
    generator_weight: float = 1.0
    lr: float | None = None
    fit_samples: int = 1000
    uses_sampler: ClassVar[bool] = True
    supplies_chain_starts: ClassVar[bool] = True  #: the config accepts chains.init = "generator" for it only

    def __post_init__(self) -> None:
        _check_sampler_net(self.width, self.depth, self.lr, self.fit_samples)
        if self.latent_dim < 1 or not self.generator_weight > 0 or not self.sigma > 0:
            raise ValueError(f"latent_dim must be >= 1, generator_weight > 0 and sigma > 0; got {self.latent_dim}, "
                             f"{self.generator_weight}, {self.sigma}")
        if self.infer_steps < 0 or not self.infer_step_size > 0:
            raise ValueError(f"infer_steps must be >= 0 and infer_step_size > 0; got {self.infer_steps}, "
                             f"{self.infer_step_size}")

    def check(self, *, model_name: str, chain_init: str, is_points: bool, num_steps: int) -> None:
        if chain_init != "generator":
            raise ValueError(f"chains.init: cooperative learning starts the chains from its generator; set "
                             f"chains.init = \"generator\" (got {chain_init!r})")
        if num_steps < 1:
            raise ValueError("train.num_steps: cooperative learning revises the generator's samples by MCMC; set "
                             "num_steps >= 1")

    def build(self, context: ObjectiveContext) -> Objective:
        x, event = _flat_dim(context, self.fit_samples)
        net = LatentGenerator(math.prod(event), self.latent_dim, self.width, self.depth, self.sigma, event)
        net = net.to(device=context.device, dtype=x.dtype).fit(x)
        return CooperativeLoss(net, context.adam(net, self.lr), generator_weight=self.generator_weight,
                               infer_steps=self.infer_steps, infer_step_size=self.infer_step_size,
                               l2_reg=context.l2_reg)


#: Objective names used by configs: one line per objective.
OBJECTIVES: dict[str, type[ObjectiveSpec]] = {
    "cd": ContrastiveDivergence, "improved_cd": ImprovedCD, "sm": ScoreMatching, "dsm": DenoisingScoreMatching,
    "ssm": SlicedScoreMatching, "nce": NoiseContrastiveEstimation, "perturbation_nce": PerturbationNCE,
    "multilevel_dsm": MultilevelDenoisingScoreMatching,
    "ksd": KernelSteinDiscrepancy, "stein_critic": SteinCritic, "mpf": MinimumProbabilityFlow,
    "adversarial_flow": AdversarialFlow, "adversarial_noisy": AdversarialNoisy, "cooperative": Cooperative,
    "jem": JEM, "drl": DiffusionRecoveryLikelihood,
}


def name_of(spec: ObjectiveSpec) -> str:
    """The config name of an objective spec (its :data:`OBJECTIVES` key)."""
    return next(n for n, c in OBJECTIVES.items() if type(spec) is c)
