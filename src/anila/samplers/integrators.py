"""Splitting integrators of Hamiltonian and kinetic Langevin dynamics, built from three pieces.

With position ``x``, momentum ``p`` (both ``(batch, *event)``), a diagonal mass ``m`` and a step ``ε`` (a float
or a per-chain tensor viewed as ``(batch, 1, ..., 1)``):

    B  (kick)    p ← p - ε ∇E(x)
    A  (drift)   x ← x + ε p / m
    O  (friction) p ← c p + sqrt((1 - c²) m T) ξ,   c = exp(-γ ε),  ξ ~ N(0, I)   (Ornstein-Uhlenbeck, exact)

Leapfrog (velocity Verlet) is ``B/2 A B/2`` repeated, with the inner half kicks merged (Neal 2011, eq. 5.18-5.20):
symplectic and reversible, so HMC's Metropolis test corrects its energy error exactly. BAOAB is
``B/2 A/2 O A/2 B/2`` (Leimkuhler & Matthews 2013), one gradient per step, whose configurational marginal is
accurate to O(ε²) at stationarity for any friction γ.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from anila.energies.base import Energy
from anila.samplers.base import ChainState, EvaluatedState, StepSize


def kick(p: Tensor, grad: Tensor, step: StepSize) -> Tensor:
    """B: ``p - step · ∇E``."""
    return p - step * grad


def drift(x: Tensor, p: Tensor, step: StepSize, mass: Tensor | float) -> Tensor:
    """A: ``x + step · p / m``."""
    return x + step * p / mass


def ornstein_uhlenbeck(p: Tensor, step: StepSize, gamma: float, mass: Tensor | float, temperature: float,
             generator: torch.Generator | None) -> Tensor:
    """O: the exact Ornstein-Uhlenbeck update of the momentum over time ``step`` with friction ``gamma``."""
    c = torch.exp(-gamma * step) if isinstance(step, Tensor) else math.exp(-gamma * step)
    sd = ((1 - c * c) * temperature) ** 0.5
    noise = torch.randn(p.shape, generator=generator, device=p.device, dtype=p.dtype)
    root_mass = mass.sqrt() if isinstance(mass, Tensor) else math.sqrt(mass)
    return c * p + sd * root_mass * noise


def leapfrog(energy: Energy, state: EvaluatedState, p: Tensor, step: StepSize, num_steps: int,
             mass: Tensor | float, *, create_graph: bool = False) -> tuple[EvaluatedState, Tensor]:
    """``num_steps`` leapfrog steps from an evaluated ``state`` with momentum ``p``; returns the evaluated end
    state and its momentum. Cost: ``num_steps`` forward+backward passes."""
    p = kick(p, state.grad, 0.5 * step)
    current = state
    for i in range(num_steps):
        current = ChainState(x=drift(current.x, p, step, mass)).evaluated(energy, create_graph=create_graph)
        p = kick(p, current.grad, step if i < num_steps - 1 else 0.5 * step)
    return current, p
