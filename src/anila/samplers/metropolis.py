"""The one Metropolis-Hastings correction every exact sampler uses.

A sampler proposes ``x'`` from ``x`` with density ``q(x' | x)`` and hands over

    log_ratio = [E(x) - E(x')] + [log q(x | x') - log q(x' | x)]     (batch,)

(for HMC the second bracket is the kinetic-energy difference, for a symmetric proposal it is 0). Each chain
moves to ``x'`` with probability ``min(1, exp(log_ratio))`` (Metropolis et al. 1953; Hastings 1970), which
leaves ``exp(-E)`` exactly invariant. Everything the state carries (``x``, ``E``, ``∇E`` and every extra
that differs between the two states) is selected per chain; nothing synchronises with the host.

>>> out, accept_prob = metropolis_hastings(current, proposed, log_ratio, generator)  # doctest: +SKIP
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from anila.samplers.base import EvaluatedState, select, sum_event


def metropolis_accept(log_ratio: Tensor, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
    """Accept each chain with probability ``min(1, exp(log_ratio))``.

    ``log_ratio``: ``(batch,)``. Returns ``(accept, accept_prob)``, a bool and a float tensor ``(batch,)``.
    A NaN ratio (a proposal whose energy is NaN or infinite) is rejected: the target puts no mass there;
    samplers report such steps in ``info["divergent"]``.
    """
    log_ratio = torch.where(torch.isnan(log_ratio), torch.full_like(log_ratio, -math.inf), log_ratio)
    accept_prob = torch.exp(torch.clamp(log_ratio, max=0.0))
    u = torch.rand(log_ratio.shape, generator=generator, device=log_ratio.device, dtype=log_ratio.dtype)
    return u < accept_prob, accept_prob


def metropolis_hastings(current: EvaluatedState, proposed: EvaluatedState, log_ratio: Tensor,
                        generator: torch.Generator | None) -> tuple[EvaluatedState, Tensor]:
    """``(next state, accept_prob)``: ``proposed`` where accepted, else ``current`` (see the module docstring).

    Both states are evaluated (``energy`` and ``grad`` known). ``log_ratio`` is detached before the test;
    the selected tensors keep their graphs (a differentiable last step)."""
    accept, accept_prob = metropolis_accept(log_ratio.detach(), generator)
    extras = {}
    for key, value in proposed.extras.items():
        old = current.extras.get(key)
        extras[key] = value if old is None or old is value or value.dim() == 0 else select(accept, value, old)
    out = EvaluatedState(x=select(accept, proposed.x, current.x),
                         energy=torch.where(accept, proposed.energy, current.energy),
                         grad=select(accept, proposed.grad, current.grad), extras=extras)
    return out, accept_prob


def log_std_sum(std: Tensor | float, like: Tensor) -> Tensor | float:
    """``Σ_coords log std`` per chain ``(batch,)``; ``0`` for a Python float (it cancels in any ratio)."""
    return sum_event(torch.log(std).expand_as(like)) if isinstance(std, Tensor) else 0.0


def gaussian_log_density(y: Tensor, mean: Tensor, std: Tensor | float) -> Tensor:
    """``log N(y; mean, diag(std²))`` per chain ``(batch,)``, up to the constant ``-d/2 log 2π``; a float
    ``std`` drops its ``log`` term too (it cancels in any ratio of two such densities)."""
    return -0.5 * sum_event(((y - mean) / std) ** 2) - log_std_sum(std, y)


def gaussian_log_density_of_noise(noise: Tensor, std: Tensor | float) -> Tensor:
    """The same density at ``y = mean + std ⊙ noise``, computed from the standard-normal draw (exact)."""
    return -0.5 * sum_event(noise**2) - log_std_sum(std, noise)
