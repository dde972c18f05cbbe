"""Hamiltonian Monte Carlo: a leapfrog integrator, a diagonal mass, the Metropolis-Hastings correction.

With mass ``m`` (scalar or shaped like one sample), momentum ``p ~ N(0, diag(m))`` and the Hamiltonian
``H(x, p) = E(x) + ½ Σ p²/m``, one transition is ``L = num_leapfrog_steps`` leapfrog steps of size
``ε = step_size`` (:func:`~anila.samplers.integrators.leapfrog`), then acceptance with probability
``min(1, exp(H(x, p) - H(x', p')))`` (Duane et al. 1987; Neal 2011, section 5.3.2). Shapes: ``x`` and ``p``
are ``(batch, *event)``; ``ε`` a float or a per-chain tensor ``(batch,)``. Cost: ``L`` forward+backward passes
per transition; the energy and gradient at the accepted point are carried to the next transition. One leapfrog
step of size ε moves like a Langevin step of size ``h = ε²``.

>>> sampler = HMC(step_size=0.1, num_leapfrog_steps=10)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from anila.energies.base import Energy
from anila.samplers.base import ChainState, Info, StepSize, StepSizeMixin, check_positive, per_chain, sum_event
from anila.samplers.integrators import leapfrog
from anila.samplers.metropolis import metropolis_hastings
from anila.samplers.rules import DiagonalMass


@dataclass(frozen=True)
class HMC(StepSizeMixin):
    """Hamiltonian Monte Carlo with a diagonal mass; reports ``info["accept_prob"]``."""

    step_size: StepSize = 0.1
    num_leapfrog_steps: int = 10
    mass: float | Tensor = 1.0

    is_exact: ClassVar[bool] = True
    carries_gradient: ClassVar[bool] = True

    def __post_init__(self) -> None:
        check_positive("step_size", self.step_size)
        if isinstance(self.num_leapfrog_steps, bool) or not isinstance(self.num_leapfrog_steps, int) \
                or self.num_leapfrog_steps < 1:
            raise ValueError(f"num_leapfrog_steps must be an integer >= 1, got {self.num_leapfrog_steps!r}")
        DiagonalMass(self.mass)  # validates the mass

    @property
    def gradients_per_step(self) -> int:
        return self.num_leapfrog_steps

    def step(self, energy: Energy, state: ChainState, generator: torch.Generator | None = None, *,
             create_graph: bool = False, collect_info: bool = False) -> tuple[ChainState, Info]:
        state = state.evaluated(energy, create_graph=create_graph)
        x = state.x
        mass = self.mass.to(device=x.device, dtype=x.dtype) if isinstance(self.mass, Tensor) else self.mass
        momentum = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        momentum = momentum * (mass.sqrt() if isinstance(mass, Tensor) else mass**0.5)
        end, p = leapfrog(energy, state, momentum, per_chain(self.step_size, x), self.num_leapfrog_steps, mass,
                          create_graph=create_graph)
        kinetic0, kinetic1 = 0.5 * sum_event(momentum**2 / mass), 0.5 * sum_event(p**2 / mass)
        log_ratio = (state.energy + kinetic0) - (end.energy + kinetic1)
        out, accept_prob = metropolis_hastings(state, end, log_ratio, generator)
        info: Info = {"accept_prob": accept_prob}
        if collect_info:
            info["grad_norm"] = torch.linalg.vector_norm(state.grad.detach().flatten(1), dim=1)
            info["divergent"] = (~torch.isfinite(end.energy.detach())).to(x.dtype)
        return out, info
