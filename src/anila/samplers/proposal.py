"""The Langevin proposal built from a step-size rule, unadjusted or with the Metropolis-Hastings correction.

With ``g = ∇x E(x)`` (clipped elementwise to ``[-grad_clip, grad_clip]`` when set), the rule's preconditioner
``G`` (:mod:`anila.samplers.rules`; ``G ≡ 1`` for plain Langevin) and its noise power ``p``:

    mean(x) = x - (h/2) · G ⊙ g
    std(x)  = noise_scale · sqrt(h) · G^p
    x'      = mean(x) + std(x) ⊙ ξ,   ξ ~ N(0, I)

Shapes: ``x, g, ξ`` are ``(batch, *event)``; ``G`` broadcasts against them; ``h = step_size`` is a float or a
per-chain tensor ``(batch,)``. With ``noise_scale = 1`` and ``G ≡ 1`` this is the Euler-Maruyama step of the
Langevin diffusion targeting ``exp(-E)``. The adjusted step accepts ``x'`` with probability

    min(1, exp(E(x) - E(x')) · q(x | x') / q(x' | x)),   q(y | x) = N(y; mean(x), diag(std(x)²)),

where the reverse density uses ``g`` and ``G`` at ``x'`` (both computed from the rule's state before the step,
so ``G`` is a function of the position for that step) and :func:`~anila.samplers.metropolis.metropolis_hastings`
decides. The rule's state after the step is advanced from the starting point ``x`` whether or not ``x'`` is taken.

:func:`unadjusted_step` writes into buffers it owns (the noise, a freshly computed ``G``) to keep allocations at
the limit; with a graph to keep (``create_graph``) every operation is out of place.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Protocol

import torch
from torch import Tensor

from anila.energies.base import Energy
from anila.samplers.base import ChainState, EvaluatedState, Info, StepSize, per_chain, sqrt
from anila.samplers.metropolis import gaussian_log_density, gaussian_log_density_of_noise, metropolis_hastings
from anila.samplers.rules import StepSizeRule, power


class LangevinSettings(Protocol):
    """The hyperparameters a Langevin step reads (every Langevin-family sampler has them; read-only, as the
    fields of a frozen dataclass are)."""

    @property
    def step_size(self) -> StepSize: ...

    @property
    def noise_scale(self) -> float: ...

    @property
    def grad_clip(self) -> float | None: ...


def _clipped(settings: LangevinSettings, grad: Tensor) -> Tensor:
    return grad if settings.grad_clip is None else grad.clamp(-settings.grad_clip, settings.grad_clip)


def _info(state: EvaluatedState, rule: StepSizeRule, factor: Tensor | None, collect: bool) -> Info:
    if not collect:
        return {}
    info = {"grad_norm": torch.linalg.vector_norm(state.grad.detach().flatten(1), dim=1)}
    info.update(rule.describe(factor, state.x) if factor is not None else {})
    return info


def mean_and_std(rule: StepSizeRule, settings: LangevinSettings, x: Tensor, grad: Tensor,
                 factor: Tensor | None) -> tuple[Tensor, Tensor | float]:
    """``(mean(x), std(x))`` of the proposal, out of place (see the module docstring)."""
    h = per_chain(settings.step_size, x)
    mean = x - 0.5 * h * rule.drift(grad, factor)
    base_std = settings.noise_scale * sqrt(h)
    if factor is None:
        return mean, base_std
    return mean, base_std * power(factor, rule.noise_power, inplace=False)


def unadjusted_step(rule: StepSizeRule, settings: LangevinSettings, energy: Energy, state: ChainState,
                    generator: torch.Generator | None, *, create_graph: bool = False, collect_info: bool = False,
                    clamp: tuple[float, float] | None = None) -> tuple[ChainState, Info]:
    """One unadjusted Langevin step with ``rule``'s preconditioner: one forward and one backward pass."""
    state = state.evaluated(energy, create_graph=create_graph)
    x = state.x
    grad = _clipped(settings, state.grad)
    factor, extras = rule.factor(grad, state.extras)
    noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    info = _info(state, rule, factor, collect_info)

    inplace = not (grad.requires_grad or x.requires_grad or (factor is not None and factor.requires_grad))
    h = per_chain(settings.step_size, x)
    drift = rule.drift(grad, factor)
    mean = torch.add(x, drift, alpha=-0.5 * h) if not isinstance(h, Tensor) else torch.addcmul(x, drift, h, value=-0.5)
    base_std = settings.noise_scale * sqrt(h)
    std: Tensor | float
    if factor is None:
        std = base_std
    else:
        root = power(factor, rule.noise_power, inplace=inplace and rule.fresh_factor)
        std = root.mul_(base_std) if inplace and not isinstance(base_std, Tensor) else root * base_std
    if not inplace:
        proposal = mean + noise * std
    else:
        proposal = mean.addcmul_(noise, std) if isinstance(std, Tensor) else mean.add_(noise, alpha=std)
    if clamp is not None:
        proposal = proposal.clamp_(*clamp) if not proposal.requires_grad else proposal.clamp(*clamp)
    return ChainState(x=proposal, extras=extras), info


def adjusted_step(rule: StepSizeRule, settings: LangevinSettings, energy: Energy, state: ChainState,
                  generator: torch.Generator | None, *, create_graph: bool = False,
                  collect_info: bool = False) -> tuple[ChainState, Info]:
    """One Metropolis-adjusted Langevin step with ``rule``'s preconditioner: one forward and one backward pass
    at the proposal (the accepted point's ``E`` and ``∇E`` are carried to the next step)."""
    state = state.evaluated(energy, create_graph=create_graph)
    x = state.x
    grad = _clipped(settings, state.grad)
    factor, extras = rule.factor(grad, state.extras)
    info = _info(state, rule, factor, collect_info)
    mean, std = mean_and_std(rule, settings, x, grad, factor)
    noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    proposed = ChainState(x=mean + std * noise).evaluated(energy, create_graph=create_graph)

    back_grad = _clipped(settings, proposed.grad)
    back_factor, _ = rule.factor(back_grad, state.extras)
    back_mean, back_std = mean_and_std(rule, settings, proposed.x, back_grad, back_factor)
    log_forward = gaussian_log_density_of_noise(noise, std)
    log_backward = gaussian_log_density(x, back_mean, back_std)
    log_ratio = state.energy - proposed.energy + log_backward - log_forward
    out, accept_prob = metropolis_hastings(replace(state, extras=extras), replace(proposed, extras=extras),
                                           log_ratio, generator)
    info["accept_prob"] = accept_prob
    if collect_info:
        info["divergent"] = (~torch.isfinite(proposed.energy.detach())).to(x.dtype)
    return out, info
