"""What every sampler shares: the chain state record, the sampler protocol, and small tensor helpers.

A sampler is a frozen dataclass of hyperparameters that keeps the :class:`Sampler` protocol:

    step(energy, state, generator=None, *, create_graph=False, collect_info=False) -> (state, info)
    is_exact            True when a Metropolis-Hastings correction makes exp(-E) exactly invariant
    carries_gradient    True when the state keeps E and ∇E from one step to the next
    gradients_per_step  energy gradients one step costs per returned chain (HMC: its leapfrog steps)
    with_step_size(h)   the same sampler with another step size: a float, or a per-chain tensor (batch,)

It never owns chain state: ``state`` goes in and comes out. What a sampler keeps between steps beyond the
position (a frozen AniLA γ, a running second moment, a momentum, the hot replicas of parallel tempering)
lives in ``state.extras`` under names the sampler declares in ``carried``. ``info`` is a dict of per-chain
tensors (``accept_prob``, ``grad_norm``, ``clip_fraction``, ...) that never forces a host synchronisation.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Protocol, TypeVar

import torch
from torch import Tensor

from anila.energies.base import Energy, energy_and_grad

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

Info = dict[str, Tensor]
StepSize = float | Tensor
_Dataclass = TypeVar("_Dataclass", bound="DataclassInstance")


@dataclass(frozen=True)
class ChainState:
    """Where the chains are, plus what is already known there.

    ``x``: ``(batch, *event)``. ``energy`` ``(batch,)`` and ``grad`` (like ``x``) are ``E`` and ``∇x E`` at
    ``x`` when already computed (samplers that carry them reuse them at the next step), else ``None``.
    ``extras``: the sampler's own per-chain state, by name (see the sampler's ``carried``); treated as
    immutable: a step returns a new dict.
    """

    x: Tensor
    energy: Tensor | None = None
    grad: Tensor | None = None
    extras: dict[str, Tensor] = field(default_factory=dict)

    @classmethod
    def at(cls, x: Tensor) -> ChainState:
        return cls(x=x)

    def evaluated(self, energy: Energy, *, create_graph: bool = False) -> EvaluatedState:
        """This state with ``energy`` and ``grad`` filled in (one forward + backward if missing)."""
        if self.grad is not None and self.energy is not None and not create_graph:
            if isinstance(self, EvaluatedState):
                return self
            return EvaluatedState(x=self.x, energy=self.energy, grad=self.grad, extras=self.extras)
        e, g = energy_and_grad(energy, self.x, create_graph=create_graph)
        return EvaluatedState(x=self.x, energy=e, grad=g, extras=self.extras)


@dataclass(frozen=True)
class EvaluatedState(ChainState):
    """A :class:`ChainState` whose ``energy`` ``(batch,)`` and ``grad`` (like ``x``) are known: what
    :meth:`ChainState.evaluated` returns, and what the integrators and the Metropolis correction take."""

    energy: Tensor
    grad: Tensor


class Sampler(Protocol):
    """One MCMC transition plus what the rest of the library may ask of it; see the module docstring."""

    step_size: StepSize

    @property
    def is_exact(self) -> bool: ...

    @property
    def carries_gradient(self) -> bool: ...

    @property
    def carried(self) -> tuple[str, ...]: ...

    @property
    def gradients_per_step(self) -> int: ...

    def with_step_size(self, step_size: StepSize) -> Sampler: ...

    def step(self, energy: Energy, state: ChainState, generator: torch.Generator | None = None, *,
             create_graph: bool = False, collect_info: bool = False) -> tuple[ChainState, Info]: ...


class StepSizeMixin:
    """``with_step_size`` and ``gradients_per_step = 1`` for a frozen dataclass with a ``step_size`` field."""

    carried: ClassVar[tuple[str, ...]] = ()

    @property
    def gradients_per_step(self) -> int:
        return 1

    def with_step_size(self: _Dataclass, step_size: StepSize) -> _Dataclass:
        """The same sampler with ``step_size`` (a float is validated; a per-chain tensor is taken as it is, and
        the other fields, already validated, are not checked again: no host synchronisation)."""
        if not isinstance(step_size, Tensor):
            return dataclasses.replace(self, step_size=step_size)
        new = copy.copy(self)
        object.__setattr__(new, "step_size", step_size)
        return new


def sum_event(t: Tensor) -> Tensor:
    """Sum over every axis but the batch axis: ``(batch, *event) -> (batch,)``."""
    return t.flatten(1).sum(1)


def per_chain(value: StepSize, like: Tensor) -> StepSize:
    """A float stays a float; a per-chain tensor ``(batch,)`` is viewed as ``(batch, 1, ..., 1)`` to broadcast
    against ``like`` ``(batch, *event)``, in ``like``'s dtype and device."""
    if isinstance(value, Tensor):
        return value.to(device=like.device, dtype=like.dtype).reshape(-1, *([1] * (like.dim() - 1)))
    return value


def sqrt(value: StepSize) -> StepSize:
    return value.sqrt() if isinstance(value, Tensor) else math.sqrt(value)


def select(accept: Tensor, new: Tensor, old: Tensor) -> Tensor:
    """Per-chain choice ``accept ? new : old``; ``accept`` is ``(batch,)``, the others ``(batch, *event)``."""
    return torch.where(accept.view(-1, *([1] * (new.dim() - 1))), new, old)


def check_positive(name: str, value: object, *, allow_none: bool = False) -> None:
    """Raise ``ValueError("<name> must be a finite number > 0, got v")`` unless ``value`` is one.

    A per-chain tensor step size is not inspected (that would synchronise with the device): whoever builds
    it (e.g. :mod:`anila.samplers.adapt`, whose step sizes are ``exp`` of a finite number) owns its range."""
    if isinstance(value, Tensor) or (value is None and allow_none):
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


def check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}")
