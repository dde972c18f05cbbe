"""The energy protocol and the one helper every sampler uses to differentiate an energy.

The conventions (docs/concepts.md): ``energy(x) -> (batch,)``, low energy = high probability,
``p(x) ∝ exp(-E(x))`` and ``score(x) = -∇x E(x)``. Samples have shape ``(batch, *event_shape)``.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import Tensor


@runtime_checkable
class Energy(Protocol):
    """Anything callable as ``energy(x) -> (batch,)``: an ``nn.Module``, an analytic energy or a plain function
    (``x`` is positional, so any ``Callable[[Tensor], Tensor]`` is one)."""

    def __call__(self, x: Tensor, /) -> Tensor: ...


def energy_and_grad(energy: Energy, x: Tensor, *, create_graph: bool = False) -> tuple[Tensor, Tensor]:
    """Return ``(E(x), ∇x E(x))`` with one forward and one backward pass.

    Shapes: ``x`` is ``(batch, *event)``; returns energies ``(batch,)`` and a gradient shaped like ``x``.
    Only the input gradient is computed: the energy's parameters receive no ``.grad``.
    With ``create_graph=False`` both outputs are detached; with ``create_graph=True`` they keep the
    graph to the energy's parameters (and ``x`` is still treated as a leaf, cut from its history).

    >>> e, g = energy_and_grad(lambda x: 0.5 * (x ** 2).sum(1), torch.ones(3, 2))
    >>> torch.equal(g, torch.ones(3, 2))
    True
    """
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        e = energy(x)
        if e.shape != x.shape[:1]:
            raise ValueError(
                f"energy returned shape {tuple(e.shape)} for input {tuple(x.shape)}; "
                f"an energy must return one value per sample, shape ({x.shape[0]},)"
            )
        (g,) = torch.autograd.grad(e.sum(), x, create_graph=create_graph)
    if create_graph:
        return e, g
    return e.detach(), g


def score(energy: Energy, x: Tensor) -> Tensor:
    """``score(x) = -∇x E(x)``, shaped like ``x``."""
    return -energy_and_grad(energy, x)[1]
