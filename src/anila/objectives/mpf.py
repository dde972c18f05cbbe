"""Minimum probability flow for continuous data (Sohl-Dickstein, Battaglino & DeWeese 2011; tutorial seed,
Song & Kingma 2021, section 6.1), with a Langevin (MALA-proposal) or Gaussian random-walk connectivity.

Derivation. Pick a transition density ``T(x'|x) > 0`` (the connectivity) and let the rate from ``x`` to
``x'`` be ``Γ(x'|x) = T(x'|x) exp(½[E(x) - E(x') + log T(x|x') - log T(x'|x)])``. Then ``p_θ(x) Γ(x'|x) =
sqrt(p_θ(x) T(x'|x) p_θ(x') T(x|x')) / Z_θ`` is symmetric in ``(x, x')``: the dynamics satisfy detailed
balance with respect to ``p_θ``, so ``p_θ`` is their equilibrium. MPF minimises the initial probability flow
out of the data under these dynamics (the rate of change of ``KL(p_data ‖ p_t)`` at ``t = 0``, seed 6.1):

    K(θ) = E_{x ~ data} E_{x' ~ T(·|x)} exp( ½[E_θ(x) - E_θ(x') + log T(x|x') - log T(x'|x)] ).

``Z_θ`` cancels in ``E(x) - E(x')``. The exponent is half the log Metropolis-Hastings ratio of the move
``x -> x'`` for ``p_θ``. Consistency: with ``r = p_θ / p_data`` and the symmetric weight ``w(x, x') =
sqrt(p_data(x) T(x'|x) p_data(x') T(x|x'))``, ``K = ∫∫ w sqrt(r(x')/r(x)) = ½ ∫∫ w [sqrt(r'/r) + sqrt(r/r')]
≥ ∫∫ w``, with equality iff ``r`` is constant, i.e. ``p_θ = p_data`` (``T > 0`` everywhere connects all
states). For a **fixed** ``T`` the bound ``∫∫ w`` does not depend on θ, so ``K(·; T)`` is minimised exactly at
the data.

- ``connectivity = "gaussian"``: ``x' = x + sqrt(h) ε``, symmetric and θ-free: ``K = E exp(½[E(x) - E(x')])``.
- ``connectivity = "langevin"``: the MALA proposal ``x' = x - (h/2)∇E(x) + sqrt(h) ε``, built from the current
  energy but **held fixed** (its gradients detached, so ``T`` is a constant of each step). Then the data's
  parameters θ* minimise ``K(·; T_θ*)``, so θ* is a fixed point of training; for an exponential family
  (``E_θ`` linear in θ) ``K(·; T)`` is convex in θ, and a fixed point ``θ̂`` minimises ``K(·; T_θ̂)``, so it is
  the data's. The proposal follows the model towards its own high-density regions, which is where
  ``p_θ`` and ``p_data`` disagree most.

For small ``h`` both reduce to score matching (``K ≈ 1 + (h/4)·[E_data(½‖∇E‖² - tr ∇²E)] + o(h)`` for the
random walk, the minimum-velocity limit), but ``K`` itself needs first derivatives of E only (Langevin) or
none (Gaussian). The data-state exclusion of discrete MPF is void here: ``x' = x`` has probability zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from anila.energies.base import energy_and_grad
from anila.objectives.base import LossOnly, Metrics, Objective, ObjectiveContext, ObjectiveSpec

CONNECTIVITIES = ("langevin", "gaussian")


def _sum_event(t: Tensor) -> Tensor:
    return t.flatten(1).sum(1)


def minimum_probability_flow(energy: nn.Module, x: Tensor, *, step_size: float, connectivity: str = "langevin",
                             num_proposals: int = 1,
                             generator: torch.Generator | None = None) -> tuple[Tensor, Metrics]:
    """The MPF loss ``K(θ) = mean_{i,k} exp(½ a_ik)`` with ``a_ik`` the log MH ratio of ``x_i -> x'_ik``.

        a = E_θ(x) - E_θ(x') + log T(x|x') - log T(x'|x),     x' ~ T(·|x),  k = 1..num_proposals

    ``x``: the data ``(n, *event)``. ``T``: ``connectivity`` (``"langevin"``: ``x' = x - (h/2) g(x) + sqrt(h) ε``
    with ``g = ∇E`` detached, and ``log T(x|x') - log T(x'|x) = (‖x' - x + (h/2) g(x)‖² - ‖x - x' +
    (h/2) g(x')‖²) / (2h)``; ``"gaussian"``: ``x' = x + sqrt(h) ε``, the log ratio is 0), ``h = step_size``.
    Only ``E_θ(x) - E_θ(x')`` carries the graph to θ (``T`` is held fixed, see the module docstring).
    ``metrics``: detached ``acceptance`` (mean ``min(1, e^a)``: the MALA/random-walk acceptance rate of these
    moves under the model) and ``log_flow`` (``log K``).

    >>> from anila.energies import MLPEnergy
    >>> g = torch.Generator().manual_seed(0)
    >>> loss, metrics = minimum_probability_flow(MLPEnergy(dim=2), torch.randn(64, 2, generator=g),
    ...                                          step_size=0.1, generator=g)
    >>> sorted(metrics)
    ['acceptance', 'log_flow']
    """
    if connectivity not in CONNECTIVITIES:
        raise ValueError(f"connectivity must be one of {', '.join(CONNECTIVITIES)}; got {connectivity!r}")
    if not (step_size > 0 and math.isfinite(step_size)):
        raise ValueError(f"step_size must be a finite number > 0, got {step_size!r}")
    if num_proposals < 1:
        raise ValueError(f"num_proposals must be >= 1, got {num_proposals}")
    x = x.detach().repeat(num_proposals, *([1] * (x.dim() - 1)))
    noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    if connectivity == "gaussian":
        x_new = x + math.sqrt(step_size) * noise
        log_ratio = torch.zeros(x.shape[0], device=x.device, dtype=x.dtype)
    else:
        _, g = energy_and_grad(energy, x)
        x_new = x - 0.5 * step_size * g + math.sqrt(step_size) * noise
        _, g_new = energy_and_grad(energy, x_new)
        forward = _sum_event((x_new - x + 0.5 * step_size * g).pow(2))  # = h ‖ε‖²
        backward = _sum_event((x - x_new + 0.5 * step_size * g_new).pow(2))
        log_ratio = (forward - backward) / (2 * step_size)
    with torch.enable_grad():
        e = energy(torch.cat([x, x_new]))
        n = x.shape[0]
        exponent = e[:n] - e[n:] + log_ratio
        flow = torch.exp(0.5 * exponent)
        loss = flow.mean()
    metrics = {"acceptance": torch.exp(exponent.detach().clamp(max=0)).mean(), "log_flow": torch.log(loss.detach())}
    return loss, metrics


@dataclass(frozen=True)
class MinimumProbabilityFlow(ObjectiveSpec):
    """Minimum probability flow (section 6.1) with a held-fixed Langevin/MALA-proposal (``connectivity =
    "langevin"``) or Gaussian random-walk (``"gaussian"``) connectivity of step ``step_size``,
    ``num_proposals`` moves per data point. Two energy evaluations and (Langevin) two input gradients per
    point; first derivatives only."""

    step_size: float = 0.05
    connectivity: str = "langevin"
    num_proposals: int = 1

    def __post_init__(self) -> None:
        if self.connectivity not in CONNECTIVITIES:
            raise ValueError(f"connectivity must be one of {', '.join(CONNECTIVITIES)}; got {self.connectivity!r}")
        if not self.step_size > 0:
            raise ValueError(f"step_size must be > 0, got {self.step_size}")
        if self.num_proposals < 1:
            raise ValueError(f"num_proposals must be >= 1, got {self.num_proposals}")

    def __call__(self, energy, x: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Metrics]:
        return minimum_probability_flow(energy, x, step_size=self.step_size, connectivity=self.connectivity,
                                        num_proposals=self.num_proposals, generator=generator)

    def build(self, context: ObjectiveContext) -> Objective:
        return LossOnly(self)
