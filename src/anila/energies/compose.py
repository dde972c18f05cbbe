"""Composition of independently trained energies: conjunction, disjunction and negation.

Each operator is an ``nn.Module`` energy ``x -> (batch,)`` built from energies with the same event shape, so
any sampler draws from the composed model. Improved CD (Du et al., section 3.4 "Compositionality") sums
independently trained energies; Du, Li & Mordatch (2020, "Compositional visual generation with energy
based models", cited there) define the three operators, with
``p_i(x) ∝ exp(-E_i(x))``:

    conjunction (AND)   E(x) = Σ_i w_i E_i(x)                 p ∝ Π_i p_i^{w_i}      (product of experts)
    disjunction (OR)    E(x) = -log Σ_i exp(-E_i(x))          p ∝ Σ_i Z_i p_i        (mixture)
    negation (A NOT B)  E(x) = E_a(x) - alpha · E_b(x)         p ∝ p_a / p_b^alpha

Shapes: every ``E_i(x)`` is ``(batch,)``; so is the result. Two caveats follow from the formulas. The
disjunction weights each component by its own normaliser ``Z_i = ∫ exp(-E_i)``, which independently
trained energies do not share: the mixture is equal-weighted only when the ``Z_i`` agree (pass
``log_partitions``, e.g. AIS estimates from :mod:`anila.metrics.ais`, to fix the weights). The negation
is a proper density only where ``p_a`` decays faster than ``p_b^alpha`` (for Gaussians: ``Σ_a⁻¹ - alpha Σ_b⁻¹`` positive
definite); sample it with the state clamped to a box (images) or a small ``alpha``.

>>> from anila.energies import Gaussian
>>> both = Conjunction([Gaussian.isotropic(2), Gaussian.isotropic(2, mean=torch.ones(2))])
>>> both(torch.zeros(5, 2)).shape
torch.Size([5])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from anila.energies.base import Energy

OPERATIONS = ("and", "or", "not")


def _as_modules(energies: Sequence[Energy]) -> nn.ModuleList:
    if len(energies) < 1:
        raise ValueError("compose at least one energy")
    return nn.ModuleList(e if isinstance(e, nn.Module) else _Wrapped(e) for e in energies)


class _Wrapped(nn.Module):
    """A plain callable energy as a module (so composed energies move with ``.to``)."""

    def __init__(self, fn: Energy):
        super().__init__()
        self.fn = fn

    def forward(self, x: Tensor) -> Tensor:
        return self.fn(x)


class Conjunction(nn.Module):
    """``E(x) = Σ_i w_i E_i(x)``: the product of experts ``p ∝ Π_i p_i^{w_i}`` (default ``w_i = 1``)."""

    def __init__(self, energies: Sequence[Energy], weights: Sequence[float] | None = None):
        super().__init__()
        self.energies = _as_modules(energies)
        weights = [1.0] * len(self.energies) if weights is None else [float(w) for w in weights]
        if len(weights) != len(self.energies) or any(not w > 0 for w in weights):
            raise ValueError(f"weights must be {len(self.energies)} positive numbers, got {weights}")
        self.weights = tuple(weights)

    def forward(self, x: Tensor) -> Tensor:
        return sum(w * e(x) for w, e in zip(self.weights, self.energies, strict=True))


class Disjunction(nn.Module):
    """``E(x) = -logsumexp_i(-E_i(x))``: the mixture ``p ∝ Σ_i exp(-E_i) = Σ_i Z_i p_i``.

    With ``log_partitions = (log Z_1, ...)`` (e.g. AIS estimates) each term is normalised first,
    ``E(x) = -logsumexp_i(-E_i(x) - log Z_i)``: the equal-weight mixture ``p = (1/k) Σ_i p_i`` up to the
    constant ``log k``."""

    def __init__(self, energies: Sequence[Energy], log_partitions: Sequence[float] | None = None):
        super().__init__()
        self.energies = _as_modules(energies)
        if log_partitions is not None and len(log_partitions) != len(self.energies):
            raise ValueError(f"give one log partition per energy: {len(self.energies)} energies, "
                             f"{len(log_partitions)} values")
        self.log_partitions = None if log_partitions is None else tuple(float(v) for v in log_partitions)

    def forward(self, x: Tensor) -> Tensor:
        terms = torch.stack([-e(x) for e in self.energies], dim=-1)
        if self.log_partitions is not None:
            terms = terms - torch.tensor(self.log_partitions, dtype=terms.dtype, device=terms.device)
        return -torch.logsumexp(terms, dim=-1)


class Negation(nn.Module):
    """``E(x) = E_a(x) - alpha · E_b(x)``: "A and not B", ``p ∝ p_a / p_b^alpha`` (``alpha > 0``)."""

    def __init__(self, energy_a: Energy, energy_b: Energy, alpha: float = 0.5):
        super().__init__()
        if not alpha > 0:
            raise ValueError(f"alpha must be > 0, got {alpha}")
        self.energy_a, self.energy_b = _as_modules([energy_a, energy_b])
        self.alpha = float(alpha)

    def forward(self, x: Tensor) -> Tensor:
        return self.energy_a(x) - self.alpha * self.energy_b(x)


def compose(operation: str, energies: Sequence[Energy], *, alpha: float = 0.5,
            log_partitions: Sequence[float] | None = None) -> nn.Module:
    """The composed energy for ``operation`` in :data:`OPERATIONS` (``"not"`` takes exactly two energies;
    ``log_partitions`` applies to ``"or"`` only)."""
    if log_partitions is not None and operation != "or":
        raise ValueError("log_partitions apply to 'or' only (they shift 'and' and 'not' by a constant)")
    if operation == "and":
        return Conjunction(energies)
    if operation == "or":
        return Disjunction(energies, log_partitions)
    if operation == "not":
        if len(energies) != 2:
            raise ValueError(f"'not' composes exactly two energies (A and not B), got {len(energies)}")
        return Negation(energies[0], energies[1], alpha=alpha)
    raise ValueError(f"operation must be one of {', '.join(OPERATIONS)}; got {operation!r}")
