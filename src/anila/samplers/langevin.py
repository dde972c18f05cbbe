"""Langevin and MALA: the Langevin proposal with ``G ≡ 1``, unadjusted or Metropolis-adjusted.

    x' = x - (h/2) · ∇E(x) + noise_scale · sqrt(h) · ξ,     ξ ~ N(0, I),   x, ξ: (batch, *event)

``h = step_size`` (a float or a per-chain tensor). With ``noise_scale = 1`` this is the unadjusted Langevin
algorithm (ULA; Roberts & Tweedie 1996) targeting ``exp(-E)`` up to an O(h) bias; :class:`MALA` adds the
Metropolis-Hastings correction (Roberts & Tweedie 1996, eq. 2.2) and targets ``exp(-E)`` exactly. A
``noise_scale`` ε ≠ 1 is a temperature ``T = ε²``: the unadjusted chain then targets ``exp(-E/T)``.

:class:`LangevinFamily` holds what every Langevin-type sampler shares (``step_size``, ``noise_scale``,
``grad_clip``); a member names its rule (:mod:`anila.samplers.rules`) and its transition
(:func:`~anila.samplers.proposal.unadjusted_step` or :func:`~anila.samplers.proposal.adjusted_step`).

>>> x = sample_chains(MALA(step_size=0.05), energy, torch.randn(100, 2), num_steps=100)  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from functools import cached_property
from typing import ClassVar

import torch

from anila.energies.base import Energy
from anila.samplers.base import ChainState, Info, StepSize, StepSizeMixin, check_positive
from anila.samplers.proposal import adjusted_step, unadjusted_step
from anila.samplers.rules import Identity, StepSizeRule


@dataclass(frozen=True)
class LangevinFamily(StepSizeMixin):
    """Shared hyperparameters: ``step_size`` h, ``noise_scale`` ε (temperature ε²), ``grad_clip`` (clip ``∇E``
    elementwise to ``[-grad_clip, grad_clip]`` before the step, or ``None``)."""

    step_size: StepSize = 0.01
    noise_scale: float = 1.0
    grad_clip: float | None = None

    carries_gradient: ClassVar[bool] = False

    @property
    def is_exact(self) -> bool:
        """No correction here; :class:`Adjusted` adds one (a member may narrow it further: ``MetropolisAniLA``)."""
        return False

    def __post_init__(self) -> None:
        check_positive("step_size", self.step_size)
        check_positive("grad_clip", self.grad_clip, allow_none=True)
        if isinstance(self.noise_scale, bool) or not (self.noise_scale >= 0 and math.isfinite(self.noise_scale)):
            raise ValueError(f"noise_scale must be a finite number >= 0, got {self.noise_scale!r}")
        if self.is_exact and self.noise_scale == 0:
            raise ValueError("noise_scale must be > 0 for a Metropolis-adjusted sampler")

    @cached_property  # built once per sampler: a step only reads it
    def rule(self) -> StepSizeRule:
        return Identity()


@dataclass(frozen=True)
class Unadjusted(LangevinFamily):
    """An unadjusted Langevin-family step; ``clamp = (low, high)`` clamps the new state (e.g. images)."""

    clamp: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.clamp is not None and (len(self.clamp) != 2 or not self.clamp[0] < self.clamp[1]):
            raise ValueError(f"clamp must be (low, high) with low < high, got {self.clamp!r}")

    def step(self, energy: Energy, state: ChainState, generator: torch.Generator | None = None, *,
             create_graph: bool = False, collect_info: bool = False) -> tuple[ChainState, Info]:
        return unadjusted_step(self.rule, self, energy, state, generator, create_graph=create_graph,
                               collect_info=collect_info, clamp=self.clamp)


@dataclass(frozen=True)
class Adjusted(LangevinFamily):
    """A Metropolis-adjusted Langevin-family step; reports ``info["accept_prob"]``."""

    carries_gradient: ClassVar[bool] = True

    @property
    def is_exact(self) -> bool:
        return True

    def step(self, energy: Energy, state: ChainState, generator: torch.Generator | None = None, *,
             create_graph: bool = False, collect_info: bool = False) -> tuple[ChainState, Info]:
        return adjusted_step(self.rule, self, energy, state, generator, create_graph=create_graph,
                             collect_info=collect_info)


@dataclass(frozen=True)
class Langevin(Unadjusted):
    """Unadjusted Langevin: ``x' = x - step_size/2 · ∇E(x) + noise_scale · sqrt(step_size) · ξ``.

    >>> sampler = Langevin(step_size=0.01)
    """


@dataclass(frozen=True)
class MALA(Adjusted):
    """Metropolis-adjusted Langevin: the :class:`Langevin` proposal plus the Metropolis-Hastings correction.

    >>> sampler = MALA(step_size=0.05)
    """


@dataclass(frozen=True)
class LowTemperature(StepSizeMixin):
    """A Langevin-family proposal without its correction, at noise ``noise_scale``: what
    :func:`low_temperature` returns (``rule`` is the original sampler's step-size rule)."""

    rule: StepSizeRule = dataclasses.field(default_factory=Identity)
    step_size: StepSize = 0.01
    noise_scale: float = 0.0
    grad_clip: float | None = None

    is_exact: ClassVar[bool] = False
    carries_gradient: ClassVar[bool] = False

    def step(self, energy: Energy, state: ChainState, generator: torch.Generator | None = None, *,
             create_graph: bool = False, collect_info: bool = False) -> tuple[ChainState, Info]:
        return unadjusted_step(self.rule, self, energy, state, generator, create_graph=create_graph,
                               collect_info=collect_info)

