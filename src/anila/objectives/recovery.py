"""Diffusion recovery likelihood (Gao, Song, Poole, Wu, Kingma 2021, "Learning energy-based models by diffusion
recovery likelihood").

A variance-preserving diffusion of ``T`` levels takes the data ``x_0`` to near-Gaussian noise,

    x_{t+1} = a_t x_t + σ_t ε,     a_t = sqrt(1 - σ_t²),     t = 0 .. T-1,

and one noise-level-conditioned energy ``E(x, t)`` models every marginal ``p(x_t)``. Rather than the marginal
likelihood, each level maximises the *recovery* likelihood of ``x_t`` given its noisier copy (their eq. 5-6),

    p(x_t | x_{t+1}) ∝ exp(-E(x_t, t) - ‖x_{t+1} - a_t x_t‖² / (2 σ_t²)),

whose extra quadratic term makes the conditional far easier to sample than ``p(x_t)``: it is concentrated
within about ``σ_t / a_t`` of ``x_{t+1} / a_t``. Its gradient is the CD gradient of the conditional (their
eq. 7): ``∇θ E(x_t⁺, t) - E_{x_t⁻ ~ p(x_t | x_{t+1})} ∇θ E(x_t⁻, t)``, the normaliser's dependence on ``x_{t+1}``
being handled by drawing ``x_t⁻`` with the same ``x_{t+1}``. The negatives come from a short Langevin chain
on the conditional started at ``x_{t+1}`` (Gao et al.: ``T = 6`` levels, 30 steps each, step
``h_t = (b σ_t)²``; Algorithm 1). Sampling is the cascade (Algorithm 2): ``x_T ~ N(0, I)``, then for ``t = T-1``
down to 0 a chain on ``p(x_t | x_{t+1})``. The density of the data is ``exp(-E(x, 0))``.

Here the energy is a noise-conditional network ``E(x, s)`` (``model.name = "noise_conditional_mlp"``,
:class:`~anila.objectives.score_matching.NoiseConditionalMLP`, for points; ``"noise_conditional_convnet"``,
:class:`~anila.energies.noise_conditional.NoiseConditionalConvNet`, for images) with the level ``t`` read as
``s = σ_t``; every iteration draws one level per data point (uniform over ``0 .. T-1``), so one chain of
``num_steps`` steps trains all levels at once.

Bounded data (images in ``[-1, 1]``): ``clamp = [low, high]`` clips the level-0 chains to the data range after
every step, in training and in the cascade's last level, as the CD configs' samplers clamp their chains. The
levels ``t >= 1`` are never clipped: ``x_t = ā_t x_0 + sqrt(1 - ā_t²) ε`` is the data plus Gaussian noise, which
has no bounded range.

>>> from anila.energies.noise_conditional import NoiseConditionalConvNet
>>> g = torch.Generator().manual_seed(0)
>>> energy = NoiseConditionalConvNet(in_channels=1, n_f=4, image_size=8)
>>> spec = DiffusionRecoveryLikelihood(num_levels=3, num_steps=2, clamp=(-1.0, 1.0))
>>> x0 = torch.rand(16, 1, 8, 8, generator=g) * 2 - 1
>>> loss, metrics = RecoveryLikelihoodLoss(spec).loss(energy, Batch(x0), g)
>>> bool(torch.isfinite(loss)), sorted(metrics)
(True, ['energy_gap', 'energy_neg', 'energy_pos'])
>>> x = spec.sample(energy, torch.randn(4, 1, 8, 8, generator=g), g)
>>> x.shape, bool(x.abs().max() <= 1)
(torch.Size([4, 1, 8, 8]), True)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor, nn

from anila.objectives.base import (
    NOISE_CONDITIONAL_MODELS,
    Batch,
    Metrics,
    Objective,
    ObjectiveContext,
    ObjectiveSpec,
)


def schedule(sigma_min: float, sigma_max: float, num_levels: int) -> tuple[Tensor, Tensor]:
    """``(a, σ)``, each ``(T,)`` float64: ``σ_t`` geometric from ``sigma_min`` (t = 0) to ``sigma_max`` (t = T-1)
    and ``a_t = sqrt(1 - σ_t²)``."""
    if num_levels == 1:
        sigma = torch.tensor([sigma_min], dtype=torch.float64)
    else:
        sigma = sigma_min * (sigma_max / sigma_min) ** (torch.arange(num_levels, dtype=torch.float64)
                                                        / (num_levels - 1))
    return torch.sqrt(1 - sigma**2), sigma


def diffuse(x0: Tensor, t: Tensor, a: Tensor, sigma: Tensor, generator: torch.Generator | None = None
            ) -> tuple[Tensor, Tensor]:
    """``(x_t, x_{t+1})`` for data ``x0`` ``(n, *event)`` at levels ``t`` ``(n,)``: ``x_t = ā_t x_0 + sqrt(1 - ā_t²)
    ε`` with ``ā_t = Π_{s<t} a_s``, then ``x_{t+1} = a_t x_t + σ_t ε'``."""
    abar = torch.cat([a.new_ones(1), torch.cumprod(a, 0)])[t]
    view = (-1,) + (1,) * (x0.dim() - 1)
    abar = abar.view(view).to(x0.dtype)
    x_t = abar * x0 + torch.sqrt(1 - abar**2) * torch.randn(x0.shape, generator=generator, device=x0.device,
                                                           dtype=x0.dtype)
    x_next = (a[t].view(view).to(x0.dtype) * x_t
              + sigma[t].view(view).to(x0.dtype) * torch.randn(x0.shape, generator=generator, device=x0.device,
                                                              dtype=x0.dtype))
    return x_t, x_next


def recovery_langevin(energy: nn.Module, x_next: Tensor, t: Tensor, a: Tensor, sigma: Tensor, *, num_steps: int,
                      step_factor: float, generator: torch.Generator | None = None,
                      clamp: tuple[float, float] | None = None) -> Tensor:
    """Langevin on ``p(x_t | x_{t+1})`` (per point, level ``t`` ``(n,)``) from ``x_{t+1}``: ``num_steps`` steps
    ``x' = x - h/2 ∇U + sqrt(h) ξ`` with ``U(x) = E(x, σ_t) + ‖x_{t+1} - a_t x‖² / (2σ_t²)`` and ``h = (step_factor
    σ_t)²``. ``clamp = (low, high)``: the rows at level 0 are clipped to that range after every step (the other
    levels never are). Returns the detached final state ``(n, *event)``; the energy's parameters get no gradient."""
    view = (-1,) + (1,) * (x_next.dim() - 1)
    a_t, s_t = a[t].to(x_next.dtype), sigma[t].to(x_next.dtype)
    h = (step_factor * s_t).pow(2).view(view)
    a_v, s2 = a_t.view(view), s_t.pow(2).view(view)
    bounds = None if clamp is None else (clamp, (t == 0).view(view))  # the range, and the rows at level 0
    x = x_next.detach()
    for _ in range(num_steps):
        x = x.requires_grad_(True)
        (grad,) = torch.autograd.grad(energy(x, s_t).sum(), x)
        grad = grad - a_v * (x_next - a_v * x) / s2
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        x = (x - 0.5 * h * grad + h.sqrt() * noise).detach()
        if bounds is not None:
            (low, high), rows = bounds
            x = torch.where(rows, x.clamp(low, high), x)
    return x


def recovery_likelihood_loss(energy: nn.Module, x_pos: Tensor, x_neg: Tensor, t: Tensor, sigma: Tensor
                             ) -> tuple[Tensor, Metrics]:
    """The CD estimate of the negative recovery log-likelihood (Gao et al. 2021, eq. 7) at fixed negatives:

        L = mean_i [E(x_t⁺_i, σ_{t_i}) - E(x_t⁻_i, σ_{t_i})]

    ``x_pos``: the diffused data ``x_t`` ``(n, *event)``; ``x_neg``: samples of ``p(x_t | x_{t+1})`` from the same
    ``x_{t+1}`` ``(n, *event)`` (detached here); ``t`` ``(n,)`` levels; ``sigma`` ``(T,)``. The quadratic term is
    the same function of ``x`` for both and carries no parameter, so it cancels from the gradient. Metrics:
    ``energy_pos``, ``energy_neg``, ``energy_gap`` (detached)."""
    s_t = sigma[t].to(x_pos.dtype)
    e = energy(torch.cat([x_pos, x_neg.detach()]), torch.cat([s_t, s_t]))
    e_pos, e_neg = e[: len(x_pos)], e[len(x_pos):]
    gap = e_pos.mean() - e_neg.mean()
    return gap, {"energy_pos": e_pos.mean().detach(), "energy_neg": e_neg.mean().detach(), "energy_gap": gap.detach()}


class RecoveryLikelihoodLoss(Objective):
    """The DRL objective of a run: per data point a level ``t ~ U{0..T-1}``, the diffused pair ``(x_t, x_{t+1})``,
    a :func:`recovery_langevin` chain from ``x_{t+1}`` and :func:`recovery_likelihood_loss`. The chains run inside
    the loss (``needs_negatives`` is false: the loop's sampler is not used)."""

    def __init__(self, spec: DiffusionRecoveryLikelihood):
        self.spec = spec
        self.a, self.sigma = schedule(spec.sigma_min, spec.sigma_max, spec.num_levels)

    def loss(self, energy: nn.Module, batch: Batch, generator: torch.Generator) -> tuple[Tensor, Metrics]:
        spec, x0 = self.spec, batch.x_pos
        a, sigma = self.a.to(x0.device), self.sigma.to(x0.device)
        t = torch.randint(0, spec.num_levels, (len(x0),), generator=generator, device=x0.device)
        x_t, x_next = diffuse(x0, t, a, sigma, generator)
        x_neg = recovery_langevin(energy, x_next, t, a, sigma, num_steps=spec.num_steps,
                                  step_factor=spec.step_factor, generator=generator, clamp=spec.clamp)
        return recovery_likelihood_loss(energy, x_t, x_neg, t, sigma)


class AtLevel(nn.Module):
    """``E(x, σ_t)`` of a level-conditioned energy read at one level: ``forward(x) = energy(x, sigma)``."""

    def __init__(self, energy: nn.Module, sigma: float):
        super().__init__()
        self.energy, self.sigma = energy, float(sigma)

    def forward(self, x: Tensor) -> Tensor:
        return self.energy(x, torch.full((x.shape[0],), self.sigma, device=x.device, dtype=x.dtype))


@dataclass(frozen=True)
class DiffusionRecoveryLikelihood(ObjectiveSpec):
    """Diffusion recovery likelihood (Gao et al. 2021): ``num_levels`` (T) variance-preserving levels with noise
    ``σ_t`` geometric from ``sigma_min`` to ``sigma_max``, trained by ``num_steps`` Langevin steps per chain on
    ``p(x_t | x_{t+1})`` at step ``(step_factor σ_t)²``; sampled by the cascade from ``x_T ~`` the chains' noise
    (``chains.noise = "gaussian"``, ``scale = 1``) with ``sampling_steps`` steps per level (default
    ``num_steps``); ``clamp = [low, high]`` clips the level-0 chains to the data range (images: ``[-1, 1]``).
    Needs ``model.name = "noise_conditional_mlp"`` (points) or ``"noise_conditional_convnet"`` (images); the
    density is ``E(x, σ_0)``."""

    num_levels: int = 6
    sigma_min: float = 0.1
    sigma_max: float = 0.95
    num_steps: int = 30
    step_factor: float = 0.5
    sampling_steps: int | None = None
    clamp: tuple[float, float] | None = None
    models: ClassVar[tuple[str, ...] | None] = NOISE_CONDITIONAL_MODELS
    noise_conditional: ClassVar[bool] = True
    sampling: ClassVar[str | None] = "recovery cascade"

    def __post_init__(self) -> None:
        if self.num_levels < 1 or self.num_steps < 1 or (self.sampling_steps is not None and self.sampling_steps < 1):
            raise ValueError(f"num_levels, num_steps and sampling_steps must be >= 1; got {self.num_levels}, "
                             f"{self.num_steps}, {self.sampling_steps}")
        if not 0 < self.sigma_min <= self.sigma_max < 1:
            raise ValueError(f"sigma_min and sigma_max must satisfy 0 < sigma_min <= sigma_max < 1 (a_t = sqrt(1 - "
                             f"sigma_t^2)); got {self.sigma_min}, {self.sigma_max}")
        if not self.step_factor > 0:
            raise ValueError(f"step_factor must be > 0, got {self.step_factor}")
        if self.clamp is not None and not self.clamp[0] < self.clamp[1]:
            raise ValueError(f"clamp must be [low, high] with low < high, got {list(self.clamp)}")

    def build(self, context: ObjectiveContext) -> Objective:
        return RecoveryLikelihoodLoss(self)

    def sample(self, energy: nn.Module, x0: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The cascade (Gao et al. Algorithm 2): ``x_T = x0``, then a chain on ``p(x_t | x_{t+1})`` from ``x_{t+1}``
        for ``t = T-1, ..., 0``; returns ``x_0`` (detached)."""
        a, sigma = schedule(self.sigma_min, self.sigma_max, self.num_levels)
        a, sigma = a.to(x0.device), sigma.to(x0.device)
        steps = self.num_steps if self.sampling_steps is None else self.sampling_steps
        x = x0.detach()
        for level in reversed(range(self.num_levels)):
            t = torch.full((len(x),), level, device=x.device, dtype=torch.long)
            x = recovery_langevin(energy, x, t, a, sigma, num_steps=steps, step_factor=self.step_factor,
                                  generator=generator, clamp=self.clamp)
        return x

    def density_energy(self, energy: nn.Module) -> nn.Module:
        """``E(x, σ_0)``: the level-0 energy, the model of the data."""
        return AtLevel(energy, self.sigma_min)
