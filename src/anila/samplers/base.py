"""Shared parts of every sampler: the chain state record, the step protocol and the Metropolis test.

A sampler is a frozen dataclass of hyperparameters with one method

    step(energy, state, generator=None, *, create_graph=False, collect_info=False) -> (state, info)

It never owns chain state: ``state`` goes in and comes out. ``info`` is a dict of per-chain tensors
(``accept_prob``, ``grad_norm``, ``clip_fraction``, ...) that never forces a host synchronisation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Protocol

import torch
from torch import Tensor

from anila.energies.base import Energy, energy_and_grad

Info = dict[str, Tensor]


@dataclass(frozen=True)
class ChainState:
    """Where the chains are, plus what is already known there.

    ``x``: ``(batch, *event)``. ``energy`` ``(batch,)`` and ``grad`` (like ``x``) are ``E`` and ``∇x E`` at
    ``x`` when already computed (Metropolis samplers reuse them from the accepted proposal), else ``None``.
    ``gamma``: the AniLA step-size factor frozen for the rest of this run (``gamma_update="per_iteration"``).
    """

    x: Tensor
    energy: Tensor | None = None
    grad: Tensor | None = None
    gamma: Tensor | None = None

    @classmethod
    def at(cls, x: Tensor) -> ChainState:
        return cls(x=x)

    def evaluated(self, energy: Energy, *, create_graph: bool = False) -> ChainState:
        """This state with ``energy`` and ``grad`` filled in (one forward + backward if missing)."""
        if self.grad is not None and self.energy is not None and not create_graph:
            return self
        e, g = energy_and_grad(energy, self.x, create_graph=create_graph)
        return replace(self, energy=e, grad=g)


class Sampler(Protocol):
    """One MCMC transition; see the module docstring."""

    def step(self, energy: Energy, state: ChainState, generator: torch.Generator | None = None, *,
             create_graph: bool = False, collect_info: bool = False) -> tuple[ChainState, Info]: ...


def sum_event(t: Tensor) -> Tensor:
    """Sum over every axis but the batch axis: ``(batch, *event) -> (batch,)``."""
    return t.flatten(1).sum(1)


def metropolis_accept(log_ratio: Tensor, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
    """Accept each chain with probability ``min(1, exp(log_ratio))``.

    ``log_ratio``: ``(batch,)``. Returns ``(accept, accept_prob)``, a bool and a float tensor ``(batch,)``.
    A non-finite ratio (a proposal whose energy is NaN or infinite) is rejected: the target puts no mass
    there; callers report such steps in ``info["divergent"]``.
    """
    log_ratio = torch.where(torch.isnan(log_ratio), torch.full_like(log_ratio, -math.inf), log_ratio)
    accept_prob = torch.exp(torch.clamp(log_ratio, max=0.0))
    u = torch.rand(log_ratio.shape, generator=generator, device=log_ratio.device, dtype=log_ratio.dtype)
    return u < accept_prob, accept_prob


def select(accept: Tensor, new: Tensor, old: Tensor) -> Tensor:
    """Per-chain choice ``accept ? new : old``; ``accept`` is ``(batch,)``, the others ``(batch, *event)``."""
    return torch.where(accept.view(-1, *([1] * (new.dim() - 1))), new, old)


def validate_positive(owner: object, *names: str, allow_none: bool = False) -> None:
    """Raise ``ValueError("<name> must be > 0, got v")`` for the first non-positive field."""
    for name in names:
        value = getattr(owner, name)
        if value is None and allow_none:
            continue
        if value is None or not (value > 0) or not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
