"""AniLA (STANLEY): the anisotropic Langevin step of Karimi, Xie & Li, Algorithm 1 (lines 3-4), and its exact
Metropolis-adjusted form.

Written with the energy (the paper's ``f`` is ``-E``), per chain and coordinate, ``g = ∇x E(x)``,
``b = threshold``:

    γ  = b / max(b, |g|)                                   (0 < γ <= 1)
    x' = x - (h/2) · γ ⊙ g + noise_scale · sqrt(h · γ) ⊙ ξ,   ξ ~ N(0, I)

``h = 1`` and ``noise_scale = ε`` is the paper (its Brownian term is ε ξ). Switches (paper values first):
``granularity`` of ``|g|`` (``elementwise`` / ``pixel`` / ``sample``), ``gamma_update`` (``every_step`` /
``per_iteration``: frozen at a run's first step), ``noise_scaling`` (noise ∝ ``sqrt(γ)`` or ∝ ``γ``). A huge
threshold makes ``γ ≡ 1``: the chain is then bit for bit :class:`~anila.samplers.langevin.Langevin`'s.

Known flaw, measured in the docs: with ``γ`` recomputed from the state and no correction, the chain's
continuous-time limit targets a density ∝ ``π / γ``, not ``π``. :class:`MetropolisAniLA` removes the bias: the
same proposal, accepted with the asymmetric Gaussian proposal density at both ends.

>>> sampler = AniLA(step_size=1.0, threshold=0.01, noise_scale=0.1)
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import ClassVar

from anila.samplers.langevin import Adjusted, Unadjusted
from anila.samplers.rules import AniLAGamma


@dataclass(frozen=True)
class _AniLAFields:
    threshold: float = 0.01
    granularity: str = "elementwise"
    gamma_update: str = "every_step"
    noise_scaling: str = "sqrt_gamma"

    carried: ClassVar[tuple[str, ...]] = AniLAGamma.carried

    @cached_property  # built once per sampler: a step only reads it
    def rule(self) -> AniLAGamma:
        return AniLAGamma(self.threshold, self.granularity, self.gamma_update, self.noise_scaling)


@dataclass(frozen=True)
class AniLA(_AniLAFields, Unadjusted):
    """Anisotropic Langevin (unadjusted); reports ``info["clip_fraction"]``.

    >>> sampler = AniLA(step_size=1.0, threshold=0.01, noise_scale=0.1)
    """

    def __post_init__(self) -> None:
        super().__post_init__()
        _ = self.rule  # builds the rule, which validates its switches


@dataclass(frozen=True)
class MetropolisAniLA(_AniLAFields, Adjusted):
    """Metropolis-adjusted AniLA: the exact version of the paper's sampler; reports ``accept_prob``. With
    ``gamma_update = "per_iteration"`` the frozen ``γ`` is the chain's own first-step value, so the kernel
    depends on the starting point and invariance is approximate (``is_exact`` is then ``False``).

    >>> sampler = MetropolisAniLA(step_size=0.5, threshold=1.0)
    """

    @property
    def is_exact(self) -> bool:
        return self.gamma_update == "every_step"

    def __post_init__(self) -> None:
        super().__post_init__()
        _ = self.rule
