"""One Langevin core: isotropic Langevin, the anisotropic AniLA step, and their Metropolis-adjusted forms.

All four samplers run through :func:`langevin_step`. With ``g = ∇x E(x)`` (after optional elementwise
clipping to ``[-grad_clip, grad_clip]``) and a step-size factor ``γ`` (``γ ≡ 1`` for Langevin/MALA),

    mean(x) = x - step_size · γ/2 · g
    std(x)  = noise_scale · sqrt(step_size · γ)          (noise_scaling = "sqrt_gamma", the paper)
            = noise_scale · sqrt(step_size) · γ          (noise_scaling = "gamma")
    x'      = mean(x) + std(x) · ξ,   ξ ~ N(0, I)

Shapes: ``x, g, ξ`` are ``(batch, *event)``; ``γ`` broadcasts against them. AniLA (Karimi, Xie, Li,
Algorithm 1, eq. 5-6, written with ``E = -f``) sets ``γ = b / max(b, |g|)`` with ``b = threshold``, so
``0 < γ <= 1``; ``|g|`` is taken per coordinate, per pixel (L2 over channels) or per sample.
With ``noise_scale = 1`` and ``γ ≡ 1`` the chain is the Euler-Maruyama discretisation of the Langevin
diffusion targeting ``exp(-E)``; the paper uses ``step_size = 1`` and ``noise_scale = ε`` (a low
temperature). Uncorrected AniLA recomputes ``γ`` from the state, so its continuous-time limit targets a
density ∝ ``π / γ``, not ``π`` (SPEC.md): the Metropolis-adjusted forms remove that bias by accepting
``x'`` with probability

    min(1, exp(E(x) - E(x')) · q(x | x') / q(x' | x)),   q(y | x) = N(y; mean(x), diag(std(x)²)),

where the reverse density uses ``γ`` and ``g`` at ``x'``. Metropolis samplers target ``exp(-E)`` exactly
whatever ``noise_scale`` is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from anila.energies.base import Energy
from anila.samplers.base import ChainState, Info, metropolis_accept, select, sum_event, validate_positive

GRANULARITIES = ("elementwise", "pixel", "sample")
GAMMA_UPDATES = ("every_step", "per_iteration")
NOISE_SCALINGS = ("sqrt_gamma", "gamma")


def anila_gamma(grad: Tensor, threshold: float, granularity: str = "elementwise") -> Tensor:
    """AniLA step-size factor ``γ = b / max(b, |g|)`` (``0 < γ <= 1``).

    ``grad``: ``(batch, *event)``. Returns ``(batch, *event)`` for ``elementwise``; for ``pixel`` the
    L2 norm over the channel axis 1, shape ``(batch, 1, *spatial)``; for ``sample`` the L2 norm over
    all event axes, shape ``(batch, 1, ..., 1)``. Every result broadcasts against ``grad``.

    >>> anila_gamma(torch.tensor([[0.5, -4.0]]), threshold=1.0)
    tensor([[1.0000, 0.2500]])
    """
    if granularity == "elementwise":
        magnitude = grad.abs()
    elif granularity == "pixel":
        if grad.dim() < 3:
            raise ValueError("granularity='pixel' needs inputs shaped (batch, channels, ...); "
                             f"got {tuple(grad.shape)}: use 'elementwise' or 'sample'")
        magnitude = torch.linalg.vector_norm(grad, dim=1, keepdim=True)
    elif granularity == "sample":
        magnitude = torch.linalg.vector_norm(grad.flatten(1), dim=1).view(-1, *([1] * (grad.dim() - 1)))
    else:
        raise ValueError(f"granularity must be one of {', '.join(GRANULARITIES)}; got {granularity!r}")
    if grad.requires_grad:  # a differentiable step (improved CD): out of place, autograd needs the inputs
        return threshold / magnitude.clamp_min(threshold)
    # ``magnitude`` is ours: the same arithmetic as ``threshold / m`` (reciprocal, then product), no new buffers.
    return magnitude.clamp_min_(threshold).reciprocal_().mul_(threshold)


@dataclass(frozen=True)
class Langevin:
    """Unadjusted Langevin: ``x' = x - step_size/2 · ∇E(x) + noise_scale · sqrt(step_size) · ξ``.

    ``grad_clip`` clips ``∇E`` elementwise before the step; ``clamp = (low, high)`` clamps the new state
    (e.g. ``(-1, 1)`` for images). One energy forward and backward per step.

    >>> sampler = Langevin(step_size=0.01)
    >>> x = sample_chains(sampler, energy, torch.randn(100, 2), num_steps=100)  # doctest: +SKIP
    """

    step_size: float = 0.01
    noise_scale: float = 1.0
    grad_clip: float | None = None
    clamp: tuple[float, float] | None = None

    metropolis: ClassVar[bool] = False

    def __post_init__(self) -> None:
        validate_positive(self, "step_size")
        validate_positive(self, "grad_clip", allow_none=True)
        if not (self.noise_scale >= 0 and math.isfinite(self.noise_scale)):
            raise ValueError(f"noise_scale must be a finite number >= 0, got {self.noise_scale!r}")
        if self.clamp is not None:
            if len(self.clamp) != 2 or not self.clamp[0] < self.clamp[1]:
                raise ValueError(f"clamp must be (low, high) with low < high, got {self.clamp!r}")
            if self.metropolis:
                raise ValueError("clamp is not allowed with a Metropolis-adjusted sampler: clamping breaks "
                                 "its proposal density; drop clamp or use the unadjusted sampler")
        if self.metropolis and self.noise_scale == 0:
            raise ValueError("noise_scale must be > 0 for a Metropolis-adjusted sampler")

    def gamma(self, grad: Tensor, state: ChainState) -> Tensor | None:
        """The step-size factor at a state whose (clipped) gradient is ``grad``; ``None`` means ``γ ≡ 1``."""
        return None

    def step(self, energy: Energy, state: ChainState, generator: torch.Generator | None = None, *,
             create_graph: bool = False, collect_info: bool = False) -> tuple[ChainState, Info]:
        return langevin_step(self, energy, state, generator, create_graph=create_graph,
                             collect_info=collect_info)


@dataclass(frozen=True)
class AniLA(Langevin):
    """Anisotropic Langevin (AniLA / STANLEY): the Langevin step with ``γ = threshold / max(threshold, |g|)``.

    Switches (SPEC.md; paper values are the defaults): ``granularity`` of ``|g|``
    (``elementwise`` / ``pixel`` / ``sample``); ``gamma_update``: recompute ``γ`` at ``every_step`` or
    freeze it at the first step of a run (``per_iteration``); ``noise_scaling``: noise std
    ∝ ``sqrt(γ)`` or ∝ ``γ``. A huge ``threshold`` makes ``γ ≡ 1``: the chain is then exactly
    :class:`Langevin`'s for the same generator.

    >>> sampler = AniLA(step_size=1.0, threshold=0.01, noise_scale=0.1)
    """

    threshold: float = 0.01
    granularity: str = "elementwise"
    gamma_update: str = "every_step"
    noise_scaling: str = "sqrt_gamma"

    def __post_init__(self) -> None:
        super().__post_init__()
        validate_positive(self, "threshold")
        for name, choices in (("granularity", GRANULARITIES), ("gamma_update", GAMMA_UPDATES),
                              ("noise_scaling", NOISE_SCALINGS)):
            if getattr(self, name) not in choices:
                raise ValueError(f"{name} must be one of {', '.join(choices)}; got {getattr(self, name)!r}")

    def gamma(self, grad: Tensor, state: ChainState) -> Tensor:
        if self.gamma_update == "per_iteration" and state.gamma is not None:
            return state.gamma
        return anila_gamma(grad, self.threshold, self.granularity)


@dataclass(frozen=True)
class MALA(Langevin):
    """Metropolis-adjusted Langevin: the :class:`Langevin` proposal plus an accept/reject step that makes
    ``exp(-E)`` exactly invariant. Reports ``info["accept_prob"]``."""

    metropolis: ClassVar[bool] = True


@dataclass(frozen=True)
class MetropolisAniLA(AniLA):
    """Metropolis-adjusted AniLA: the anisotropic proposal ``N(mean(x), diag(std(x)²))`` with ``γ``
    evaluated at both ends in the acceptance ratio: the exact version of the paper's sampler."""

    metropolis: ClassVar[bool] = True


def _proposal(sampler: Langevin, x: Tensor, grad: Tensor, gamma: Tensor | None) -> tuple[Tensor, Tensor | float]:
    """``(mean, std)`` of the Gaussian proposal from ``x`` (see the module docstring)."""
    half_step = 0.5 * sampler.step_size
    base_std = sampler.noise_scale * math.sqrt(sampler.step_size)
    if gamma is None:
        return x - half_step * grad, base_std
    mean = x - half_step * gamma * grad
    if getattr(sampler, "noise_scaling", "sqrt_gamma") == "sqrt_gamma":
        return mean, base_std * torch.sqrt(gamma)
    return mean, base_std * gamma


def _unadjusted_proposal(sampler: Langevin, x: Tensor, grad: Tensor, gamma: Tensor | None, noise: Tensor,
                         own_gamma: bool) -> Tensor:
    """``x - step_size/2 · γ·g + std(x) · ξ`` for an unadjusted sampler, with as few buffers as the maths allows.

    AniLA's elementwise drift ``γ·g = b·g / max(b, |g|)`` is exactly ``clamp(g, -b, b)`` (``γ = 1`` where
    ``|g| <= b``, else ``γ·g = b·sign(g)``), so it costs one clamp instead of two products. ``noise`` (``ξ``,
    fresh from this step) is scaled in place, and ``γ`` too when ``own_gamma`` (computed by this step, not
    kept in the state). With a graph to keep (``create_graph``) every operation is out of place."""
    inplace = not (grad.requires_grad or x.requires_grad or (gamma is not None and gamma.requires_grad))
    half_step = 0.5 * sampler.step_size
    base_std = sampler.noise_scale * math.sqrt(sampler.step_size)
    if gamma is None:
        drift = grad
    elif getattr(sampler, "granularity", None) == "elementwise" and own_gamma:
        drift = grad.clamp(-sampler.threshold, sampler.threshold)
    else:
        drift = gamma * grad
    mean = torch.add(x, drift, alpha=-half_step)
    if gamma is None:
        std: Tensor | float = base_std
    elif getattr(sampler, "noise_scaling", "sqrt_gamma") == "sqrt_gamma":
        root = gamma.sqrt_() if inplace and own_gamma else torch.sqrt(gamma)
        std = root.mul_(base_std) if inplace else root * base_std
    else:
        std = gamma.mul_(base_std) if inplace and own_gamma else gamma * base_std
    if not inplace:
        return mean + noise * std
    return mean.addcmul_(noise, std) if isinstance(std, Tensor) else mean.add_(noise, alpha=std)


def _clipped(sampler: Langevin, grad: Tensor) -> Tensor:
    return grad if sampler.grad_clip is None else grad.clamp(-sampler.grad_clip, sampler.grad_clip)


def _log_std_sum(std: Tensor | float, like: Tensor) -> Tensor | float:
    """``Σ_coords log std`` per chain; a constant (cancels in the ratio) when std is a scalar."""
    if isinstance(std, Tensor):
        return sum_event(torch.log(std).expand_as(like))
    return 0.0


def langevin_step(sampler: Langevin, energy: Energy, state: ChainState, generator: torch.Generator | None,
                  *, create_graph: bool = False, collect_info: bool = False) -> tuple[ChainState, Info]:
    """One transition of any sampler in this module; see the module docstring for the update rule."""
    state = state.evaluated(energy, create_graph=create_graph)
    x = state.x
    grad = _clipped(sampler, state.grad)
    gamma = sampler.gamma(grad, state)
    keep_gamma = gamma if getattr(sampler, "gamma_update", None) == "per_iteration" else None
    noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)

    info: Info = {}
    if collect_info:
        info["grad_norm"] = torch.linalg.vector_norm(state.grad.detach().flatten(1), dim=1)
        if gamma is not None:
            info["clip_fraction"] = (gamma.detach() < 1).to(x.dtype).expand_as(x).flatten(1).mean(1)

    if not sampler.metropolis:
        own_gamma = gamma is not None and keep_gamma is None  # computed here, not read back by anyone
        proposal = _unadjusted_proposal(sampler, x, grad, gamma, noise, own_gamma)
        if sampler.clamp is not None:
            proposal = proposal.clamp_(*sampler.clamp) if not proposal.requires_grad else \
                proposal.clamp(*sampler.clamp)
        return ChainState(x=proposal, gamma=keep_gamma), info

    mean, std = _proposal(sampler, x, grad, gamma)
    proposal = mean + std * noise
    # Metropolis-Hastings correction with the asymmetric (anisotropic) proposal density.
    new = ChainState(x=proposal, gamma=keep_gamma).evaluated(energy, create_graph=create_graph)
    new_grad = _clipped(sampler, new.grad)
    new_gamma = sampler.gamma(new_grad, new)
    back_mean, back_std = _proposal(sampler, proposal, new_grad, new_gamma)
    log_q_forward = -0.5 * sum_event(noise**2) - _log_std_sum(std, x)
    log_q_backward = -0.5 * sum_event(((x - back_mean) / back_std) ** 2) - _log_std_sum(back_std, x)
    log_ratio = state.energy - new.energy + log_q_backward - log_q_forward
    accept, accept_prob = metropolis_accept(log_ratio.detach(), generator)
    out = ChainState(
        x=select(accept, new.x, x),
        energy=torch.where(accept, new.energy, state.energy),
        grad=select(accept, new.grad, state.grad),
        gamma=keep_gamma,
    )
    info["accept_prob"] = accept_prob
    if collect_info:
        info["divergent"] = (~torch.isfinite(new.energy.detach())).to(x.dtype)
    return out, info
