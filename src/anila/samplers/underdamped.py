"""Underdamped (kinetic) Langevin dynamics with the BAOAB splitting (Leimkuhler & Matthews 2013).

The dynamics, with unit mass, friction γ and temperature ``T = noise_scale²``,

    dx = v dt,    dv = -∇E(x) dt - γ v dt + sqrt(2 γ T) dW,

leave ``exp(-(E(x) + ½|v|²) / T)`` invariant. One step of size ``ε = step_size`` is
``B/2 A/2 O A/2 B/2`` (:mod:`anila.samplers.integrators`):

    v ← v - (ε/2) ∇E(x);  x ← x + (ε/2) v;  v ← c v + sqrt((1 - c²) T) ξ  (c = e^{-γε});
    x ← x + (ε/2) v;  v ← v - (ε/2) ∇E(x)

Shapes: ``x, v, ξ`` are ``(batch, *event)``; ``ε`` a float or a per-chain tensor. One forward+backward pass per
step (the gradient at the end is carried to the next step's first kick). Unadjusted: its stationary bias is
O(ε²) in ``x`` (measured in the docs). The momentum lives in ``state.extras["momentum"]``; a run that starts
without one draws ``v ~ N(0, T)``. Large γ recovers overdamped Langevin with ``h = ε²``; small γ moves
ballistically, which crosses between modes in fewer gradients.

>>> sampler = UnderdampedLangevin(step_size=0.1, friction=1.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch

from anila.energies.base import Energy
from anila.samplers.base import ChainState, EvaluatedState, Info, StepSize, StepSizeMixin, check_positive, per_chain
from anila.samplers.integrators import drift, kick, ornstein_uhlenbeck


@dataclass(frozen=True)
class UnderdampedLangevin(StepSizeMixin):
    """Kinetic Langevin with BAOAB; ``friction`` γ > 0, ``noise_scale`` ε (temperature ε²)."""

    step_size: StepSize = 0.1
    friction: float = 1.0
    noise_scale: float = 1.0

    is_exact: ClassVar[bool] = False
    carries_gradient: ClassVar[bool] = True
    carried: ClassVar[tuple[str, ...]] = ("momentum",)

    def __post_init__(self) -> None:
        check_positive("step_size", self.step_size)
        check_positive("friction", self.friction)
        check_positive("noise_scale", self.noise_scale)

    def step(self, energy: Energy, state: ChainState, generator: torch.Generator | None = None, *,
             create_graph: bool = False, collect_info: bool = False) -> tuple[ChainState, Info]:
        state = state.evaluated(energy, create_graph=create_graph)
        x, h = state.x, per_chain(self.step_size, state.x)
        temperature = self.noise_scale**2
        v = state.extras.get("momentum")
        if v is None:
            v = math.sqrt(temperature) * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        v = kick(v, state.grad, 0.5 * h)
        x = drift(x, v, 0.5 * h, 1.0)
        v = ornstein_uhlenbeck(v, h, self.friction, 1.0, temperature, generator)
        end = ChainState(x=drift(x, v, 0.5 * h, 1.0)).evaluated(energy, create_graph=create_graph)
        v = kick(v, end.grad, 0.5 * h)
        info: Info = {}
        if collect_info:
            info["grad_norm"] = torch.linalg.vector_norm(state.grad.detach().flatten(1), dim=1)
            info["kinetic_temperature"] = (v.detach() ** 2).flatten(1).mean(1)
        return EvaluatedState(x=end.x, energy=end.energy, grad=end.grad, extras={**state.extras, "momentum": v}), info
