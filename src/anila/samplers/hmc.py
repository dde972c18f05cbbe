"""Hamiltonian Monte Carlo: leapfrog integrator, diagonal mass, Metropolis correction.

With a diagonal mass ``m`` (scalar or shaped like one sample), momentum ``p ~ N(0, diag(m))`` and the
Hamiltonian ``H(x, p) = E(x) + ½ Σ p²/m``, one transition is ``L = num_leapfrog_steps`` leapfrog steps
of size ``ε = step_size``

    p ← p - ε/2 ∇E(x);  repeat L times: { x ← x + ε p/m;  p ← p - ε ∇E(x) }  (last kick halved)

followed by acceptance with probability ``min(1, exp(H(x, p) - H(x', p')))`` (Neal 2011). Shapes: ``x``
and ``p`` are ``(batch, *event)``. Cost: ``L`` forward+backward passes per transition; the energy and
gradient at the accepted point are cached in the state and reused by the next transition.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from anila.energies.base import Energy
from anila.samplers.base import ChainState, Info, metropolis_accept, select, sum_event, validate_positive


@dataclass(frozen=True)
class HMC:
    """Hamiltonian Monte Carlo with a diagonal mass; reports ``info["accept_prob"]``.

    >>> sampler = HMC(step_size=0.1, num_leapfrog_steps=10)
    """

    step_size: float = 0.1
    num_leapfrog_steps: int = 10
    mass: float | Tensor = 1.0

    def __post_init__(self) -> None:
        validate_positive(self, "step_size")
        if not isinstance(self.num_leapfrog_steps, int) or self.num_leapfrog_steps < 1:
            raise ValueError(f"num_leapfrog_steps must be an integer >= 1, got {self.num_leapfrog_steps!r}")
        mass = torch.as_tensor(self.mass)
        if not bool((mass > 0).all()) or not bool(torch.isfinite(mass).all()):
            raise ValueError("mass must be finite and > 0 (a scalar or one value per coordinate)")

    def step(self, energy: Energy, state: ChainState, generator: torch.Generator | None = None, *,
             create_graph: bool = False, collect_info: bool = False) -> tuple[ChainState, Info]:
        state = state.evaluated(energy, create_graph=create_graph)
        x = state.x
        mass: Tensor | float = self.mass
        if isinstance(mass, Tensor):
            mass = mass.to(device=x.device, dtype=x.dtype)
        eps = self.step_size
        momentum_std = mass.sqrt() if isinstance(mass, Tensor) else math.sqrt(mass)
        momentum = momentum_std * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        kinetic0 = 0.5 * sum_event(momentum**2 / mass)

        p = momentum - 0.5 * eps * state.grad
        position, current = x, state
        for i in range(self.num_leapfrog_steps):
            position = position + eps * p / mass
            current = ChainState(x=position).evaluated(energy, create_graph=create_graph)
            kick = eps if i < self.num_leapfrog_steps - 1 else 0.5 * eps
            p = p - kick * current.grad
        kinetic1 = 0.5 * sum_event(p**2 / mass)

        log_ratio = (state.energy + kinetic0) - (current.energy + kinetic1)
        accept, accept_prob = metropolis_accept(log_ratio.detach(), generator)
        out = ChainState(
            x=select(accept, current.x, x),
            energy=torch.where(accept, current.energy, state.energy),
            grad=select(accept, current.grad, state.grad),
        )
        info: Info = {"accept_prob": accept_prob}
        if collect_info:
            info["grad_norm"] = torch.linalg.vector_norm(state.grad.detach().flatten(1), dim=1)
            info["divergent"] = (~torch.isfinite(current.energy.detach())).to(x.dtype)
        return out, info
