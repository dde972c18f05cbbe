"""Step-size rules: the diagonal preconditioner ``G`` of a Langevin step, and the per-chain state it keeps.

The Langevin proposal (:mod:`anila.samplers.proposal`) is

    x' = x - (h/2) · G ⊙ g + noise_scale · sqrt(h) · G^p ⊙ ξ,      g = ∇x E(x),  ξ ~ N(0, I)

with ``p = 1/2`` for every rule here except AniLA's ``noise_scaling = "gamma"`` (``p = 1``). A rule is a frozen
dataclass that keeps the :class:`StepSizeRule` protocol:

    factor(grad, extras) -> (G or None, extras')   G broadcasts against grad; None means G ≡ 1
    drift(grad, G)       -> G ⊙ grad               (grad itself for G = None; a rule may compute it more cheaply)
    describe(G, x)       -> per-chain diagnostics (AniLA: clip_fraction)
    noise_power          p
    fresh_factor         G is a new tensor no one else holds (the proposal may scale it in place)

``extras`` is the chain state's dict; a rule reads and writes only its own keys (``carried``). Metropolis
samplers call ``factor`` at both ends of a proposal with the extras *before* the step, so ``G`` is a function of
the position for that step and the Gaussian proposal density is exact at both ends.

Rules (shapes: ``grad`` is ``(batch, *event)``):
- :class:`Identity`: ``G ≡ 1`` (Langevin, MALA).
- :class:`AniLAGamma`: ``G = γ = b / max(b, |g|)`` (Karimi, Xie, Li, Algorithm 1), ``|g|`` per coordinate, per
  pixel (L2 over channels) or per sample; recomputed every step or frozen for a run (``per_iteration``).
- :class:`RMSPreconditioner`: pSGLD (Li et al. 2016, Algorithm 1) ``V ← αV + (1-α) g⊙g``,
  ``G = 1/(λ + sqrt(V))``; the ``Γ(x)`` correction term is dropped, as in the paper's experiments.
- :class:`DiagonalMass`: a fixed ``G = 1/m`` (a diagonal mass matrix ``m``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol

import torch
from torch import Tensor

from anila.samplers.base import check_choice, check_positive

GRANULARITIES = ("elementwise", "pixel", "sample")
GAMMA_UPDATES = ("every_step", "per_iteration")
NOISE_SCALINGS = ("sqrt_gamma", "gamma")
Extras = dict[str, Tensor]


class StepSizeRule(Protocol):
    """What the Langevin proposal asks of a rule (see the module docstring)."""

    @property
    def noise_power(self) -> float: ...

    @property
    def fresh_factor(self) -> bool: ...

    @property
    def carried(self) -> tuple[str, ...]: ...

    def factor(self, grad: Tensor, extras: Extras) -> tuple[Tensor | None, Extras]: ...

    def drift(self, grad: Tensor, factor: Tensor | None) -> Tensor: ...

    def describe(self, factor: Tensor, x: Tensor) -> dict[str, Tensor]: ...


@dataclass(frozen=True)
class Identity:
    """``G ≡ 1``: isotropic Langevin."""

    noise_power: ClassVar[float] = 0.5
    carried: ClassVar[tuple[str, ...]] = ()
    fresh_factor: ClassVar[bool] = False

    def factor(self, grad: Tensor, extras: Extras) -> tuple[Tensor | None, Extras]:
        return None, extras

    def drift(self, grad: Tensor, factor: Tensor | None) -> Tensor:
        return grad

    def describe(self, factor: Tensor, x: Tensor) -> dict[str, Tensor]:
        return {}


def anila_gamma(grad: Tensor, threshold: float, granularity: str = "elementwise") -> Tensor:
    """AniLA step-size factor ``γ = b / max(b, |g|)`` (``0 < γ <= 1``).

    ``grad``: ``(batch, *event)``. Returns ``(batch, *event)`` for ``elementwise``; for ``pixel`` the
    L2 norm over the channel axis 1, shape ``(batch, 1, *spatial)``; for ``sample`` the L2 norm over
    all event axes, shape ``(batch, 1, ..., 1)``. Every result broadcasts against ``grad``.

    >>> anila_gamma(torch.tensor([[0.5, -4.0]]), threshold=1.0)
    tensor([[1.0000, 0.2500]])
    """
    if granularity == "elementwise":
        magnitude = grad.abs()
    elif granularity == "pixel":
        if grad.dim() < 3:
            raise ValueError("granularity='pixel' needs inputs shaped (batch, channels, ...); "
                             f"got {tuple(grad.shape)}: use 'elementwise' or 'sample'")
        magnitude = torch.linalg.vector_norm(grad, dim=1, keepdim=True)
    elif granularity == "sample":
        magnitude = torch.linalg.vector_norm(grad.flatten(1), dim=1).view(-1, *([1] * (grad.dim() - 1)))
    else:
        raise ValueError(f"granularity must be one of {', '.join(GRANULARITIES)}; got {granularity!r}")
    if grad.requires_grad:  # a differentiable step (improved CD): out of place, autograd needs the inputs
        return threshold / magnitude.clamp_min(threshold)
    # ``magnitude`` is ours: the same arithmetic as ``threshold / m`` (reciprocal, then product), no new buffers.
    return magnitude.clamp_min_(threshold).reciprocal_().mul_(threshold)


@dataclass(frozen=True)
class AniLAGamma:
    """AniLA's ``γ = threshold / max(threshold, |g|)``; see the module docstring for the switches.

    With ``update = "per_iteration"`` the first step of a run stores ``γ`` in ``extras["gamma"]`` and every
    later step reuses it. The elementwise drift ``γ ⊙ g`` equals ``clamp(g, -b, b)`` exactly (``γ = 1`` where
    ``|g| <= b``, else ``γ g = b sign(g)``), one operation instead of two."""

    threshold: float = 0.01
    granularity: str = "elementwise"
    update: str = "every_step"
    noise_scaling: str = "sqrt_gamma"

    carried: ClassVar[tuple[str, ...]] = ("gamma",)

    def __post_init__(self) -> None:
        check_positive("threshold", self.threshold)
        check_choice("granularity", self.granularity, GRANULARITIES)
        check_choice("gamma_update", self.update, GAMMA_UPDATES)
        check_choice("noise_scaling", self.noise_scaling, NOISE_SCALINGS)

    @property
    def noise_power(self) -> float:
        return 0.5 if self.noise_scaling == "sqrt_gamma" else 1.0

    @property
    def fresh_factor(self) -> bool:
        """``factor`` returns a new tensor that nothing else holds (the proposal may then scale it in place)."""
        return self.update == "every_step"

    def factor(self, grad: Tensor, extras: Extras) -> tuple[Tensor, Extras]:
        if self.update == "per_iteration":
            if "gamma" in extras:
                return extras["gamma"], extras
            gamma = anila_gamma(grad, self.threshold, self.granularity)
            return gamma, {**extras, "gamma": gamma}
        return anila_gamma(grad, self.threshold, self.granularity), extras

    def drift(self, grad: Tensor, factor: Tensor | None) -> Tensor:
        if self.granularity == "elementwise" and self.update == "every_step":
            return grad.clamp(-self.threshold, self.threshold)
        return grad if factor is None else factor * grad

    def describe(self, factor: Tensor, x: Tensor) -> dict[str, Tensor]:
        """``clip_fraction``: per chain, the fraction of coordinates whose step is cut (``γ < 1``)."""
        return {"clip_fraction": (factor.detach() < 1).to(x.dtype).expand_as(x).flatten(1).mean(1)}


@dataclass(frozen=True)
class RMSPreconditioner:
    """pSGLD's RMSprop preconditioner ``G = 1 / (λ + sqrt(V))``, ``V ← α V + (1 - α) g ⊙ g``.

    ``V`` is kept in ``extras["second_moment"]``; at the first step of a run (no ``V`` yet) it starts at
    ``g ⊙ g``, so the first step is not inflated by ``V = 0`` (the bias correction Adam applies at step 1).
    ``update = "per_iteration"`` freezes ``G`` at the first step of a run (``extras["preconditioner"]``)."""

    alpha: float = 0.99
    damping: float = 1e-5
    update: str = "every_step"

    noise_power: ClassVar[float] = 0.5
    carried: ClassVar[tuple[str, ...]] = ("second_moment", "preconditioner")

    def __post_init__(self) -> None:
        if not (isinstance(self.alpha, float | int) and 0 <= self.alpha < 1):
            raise ValueError(f"alpha must be in [0, 1), got {self.alpha!r}")
        check_positive("damping", self.damping)
        check_choice("preconditioner_update", self.update, GAMMA_UPDATES)

    @property
    def fresh_factor(self) -> bool:
        return self.update == "every_step"

    def factor(self, grad: Tensor, extras: Extras) -> tuple[Tensor, Extras]:
        if "preconditioner" in extras:
            return extras["preconditioner"], extras
        square = grad * grad
        previous = extras.get("second_moment")
        moment = square if previous is None else torch.lerp(square, previous, self.alpha)
        if grad.requires_grad:  # a differentiable step: out of place (sqrt's backward needs its output)
            preconditioner = 1.0 / (moment.sqrt() + self.damping)
        else:
            preconditioner = moment.sqrt().add_(self.damping).reciprocal_()
        if self.update == "per_iteration":
            return preconditioner, {**extras, "preconditioner": preconditioner}
        return preconditioner, {**extras, "second_moment": moment}

    def drift(self, grad: Tensor, factor: Tensor | None) -> Tensor:
        return grad if factor is None else factor * grad

    def describe(self, factor: Tensor, x: Tensor) -> dict[str, Tensor]:
        """``preconditioner_mean``: per chain, the mean of ``G`` over coordinates."""
        return {"preconditioner_mean": factor.detach().expand_as(x).flatten(1).mean(1)}


@dataclass(frozen=True)
class DiagonalMass:
    """A fixed diagonal preconditioner ``G = 1 / mass`` (a scalar or a tensor shaped like one sample)."""

    mass: float | Tensor = 1.0

    noise_power: ClassVar[float] = 0.5
    carried: ClassVar[tuple[str, ...]] = ()
    fresh_factor: ClassVar[bool] = False

    def __post_init__(self) -> None:
        mass = torch.as_tensor(self.mass)
        if not bool((mass > 0).all()) or not bool(torch.isfinite(mass).all()):
            raise ValueError("mass must be finite and > 0 (a scalar or one value per coordinate)")

    def factor(self, grad: Tensor, extras: Extras) -> tuple[Tensor, Extras]:
        mass = torch.as_tensor(self.mass, device=grad.device, dtype=grad.dtype)
        return mass.reciprocal().expand_as(grad[:1]), extras

    def drift(self, grad: Tensor, factor: Tensor | None) -> Tensor:
        return grad if factor is None else factor * grad

    def describe(self, factor: Tensor, x: Tensor) -> dict[str, Tensor]:
        return {}


def power(factor: Tensor, exponent: float, *, inplace: bool) -> Tensor:
    """``factor ** exponent`` for the two exponents the rules use (1/2 and 1), in place when allowed."""
    if exponent == 1.0:
        return factor if inplace else factor.clone()
    if exponent == 0.5:
        return factor.sqrt_() if inplace else factor.sqrt()
    return factor.pow_(exponent) if inplace else factor.pow(exponent)


__all__ = ["GAMMA_UPDATES", "GRANULARITIES", "NOISE_SCALINGS", "AniLAGamma", "DiagonalMass", "Identity",
           "RMSPreconditioner", "StepSizeRule", "anila_gamma"]
