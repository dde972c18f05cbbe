"""Parallel tempering (replica exchange; Swendsen & Wang 1986, Geyer 1991) over a ladder of temperatures.

Each returned chain has ``M = num_temperatures`` replicas at temperatures ``1 = T_1 < ... < T_M = max_temperature``
(geometric ladder), replica ``k`` targeting ``exp(-E/T_k)``. One step:

1. every replica takes one step of the base sampler (``mala`` or ``langevin``) on ``E/T_k`` with step ``h T_k``
   (so the drift is ``(h/2)∇E`` at every level and the noise grows as ``sqrt(T_k)``);
2. neighbouring levels ``(k, k+1)`` of the same chain, the even or the odd pairs (a fair coin per step), swap
   states with probability ``min(1, exp((1/T_k - 1/T_{k+1}) (E(x_k) - E(x_{k+1}))))``, which keeps the product
   of the tempered densities invariant.

Only the ``T = 1`` replicas are returned in ``state.x`` (``(batch, *event)``); the hot ones travel in
``state.extras["replicas"]`` (``((M-1)·batch, *event)``) with their cached energies and gradients. With the MALA
base every level is exact, so the ``T = 1`` marginal is exactly ``exp(-E)``. Cost: ``M`` forward+backward passes
per returned chain per step (``gradients_per_step``).

>>> sampler = ParallelTempering(step_size=0.05, num_temperatures=4, max_temperature=10.0)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from anila.energies.base import Energy
from anila.samplers.base import ChainState, EvaluatedState, Info, StepSize, StepSizeMixin, check_choice, check_positive
from anila.samplers.langevin import MALA, Adjusted, Langevin

BASES: dict[str, type[MALA] | type[Langevin]] = {"mala": MALA, "langevin": Langevin}


class _Tempered:
    """``x -> E(x) · β`` with one inverse temperature per chain ``(M·batch,)``."""

    def __init__(self, energy: Energy, beta: Tensor):
        self.energy, self.beta = energy, beta

    def __call__(self, x: Tensor) -> Tensor:
        return self.energy(x) * self.beta


@dataclass(frozen=True)
class ParallelTempering(StepSizeMixin):
    """Replica exchange around a Langevin-family base sampler; reports ``accept_prob`` (MALA base, ``T = 1``) and
    ``swap_prob`` (mean swap acceptance of the pairs tried)."""

    step_size: StepSize = 0.01
    num_temperatures: int = 4
    max_temperature: float = 10.0
    base: str = "mala"

    carries_gradient: ClassVar[bool] = True
    carried: ClassVar[tuple[str, ...]] = ("replicas", "replica_energy", "replica_grad")

    def __post_init__(self) -> None:
        check_positive("step_size", self.step_size)
        if isinstance(self.num_temperatures, bool) or not isinstance(self.num_temperatures, int) \
                or self.num_temperatures < 2:
            raise ValueError(f"num_temperatures must be an integer >= 2, got {self.num_temperatures!r}")
        check_positive("max_temperature", self.max_temperature)
        if not self.max_temperature > 1:
            raise ValueError(f"max_temperature must be > 1, got {self.max_temperature!r}")
        check_choice("base", self.base, tuple(BASES))

    @property
    def is_exact(self) -> bool:
        return issubclass(BASES[self.base], Adjusted)  # every level Metropolis-adjusted

    @property
    def gradients_per_step(self) -> int:
        return self.num_temperatures

    def temperatures(self, device=None, dtype=None) -> Tensor:
        """The ladder ``T_k = max_temperature^(k/(M-1))``, ``k = 0..M-1``: shape ``(M,)``."""
        k = torch.arange(self.num_temperatures, device=device, dtype=torch.float64)
        return (self.max_temperature ** (k / (self.num_temperatures - 1))).to(dtype)

    def step(self, energy: Energy, state: ChainState, generator: torch.Generator | None = None, *,
             create_graph: bool = False, collect_info: bool = False) -> tuple[ChainState, Info]:
        x, m = state.x, self.num_temperatures
        b = x.shape[0]
        temps = self.temperatures(x.device, x.dtype)
        beta = temps.reciprocal().repeat_interleave(b)  # (M·b,), level-major
        tempered = _Tempered(energy, beta)
        full = self._full_state(state, m)
        step = self.step_size.repeat(m) if isinstance(self.step_size, Tensor) else self.step_size
        base = BASES[self.base](step_size=step * temps.repeat_interleave(b))
        full, info = base.step(tempered, full, generator, create_graph=create_graph, collect_info=collect_info)
        full = full.evaluated(tempered, create_graph=create_graph)

        # Swap neighbouring levels of the same chain; energies below are untempered.
        e = (full.energy / beta).view(m, b)
        log_ratio = (beta.view(m, b)[:-1] - beta.view(m, b)[1:]) * (e[:-1] - e[1:])  # (M-1, b)
        parity = (torch.rand((), generator=generator, device=x.device) < 0.5).long()
        active = (torch.arange(m - 1, device=x.device) % 2 == parity).unsqueeze(1)  # (M-1, 1)
        u = torch.rand(log_ratio.shape, generator=generator, device=x.device, dtype=x.dtype)
        swap_prob = torch.exp(torch.clamp(torch.nan_to_num(log_ratio, nan=-torch.inf), max=0.0))
        swap = (active & (u < swap_prob)).long()
        zero = torch.zeros_like(swap[:1])
        source = torch.arange(m, device=x.device).unsqueeze(1) + torch.cat([swap, zero]) - torch.cat([zero, swap])
        index = (source * b + torch.arange(b, device=x.device)).flatten()  # (M·b,): where each slot's state comes from
        scale = beta / beta[index]  # re-temper the cached energy and gradient for the new level
        new_x, new_e = full.x[index], full.energy[index] * scale
        new_g = full.grad[index] * scale.view(-1, *([1] * (x.dim() - 1)))
        extras = {k: v[index] if v.dim() > 0 and v.shape[0] == m * b else v for k, v in full.extras.items()}
        extras.update(replicas=new_x[b:], replica_energy=new_e[b:], replica_grad=new_g[b:])
        out = EvaluatedState(x=new_x[:b], energy=new_e[:b], grad=new_g[:b], extras=extras)
        info = {k: v[:b] for k, v in info.items()}
        info["swap_prob"] = (swap_prob * active).sum(0) / active.sum().clamp_min(1)
        return out, info

    @staticmethod
    def _full_state(state: ChainState, m: int) -> ChainState:
        """All ``M·b`` replicas, level-major; a run's first step starts every level at ``state.x``."""
        extras = {k: v for k, v in state.extras.items() if k not in ("replicas", "replica_energy", "replica_grad")}
        if "replicas" not in state.extras:
            return ChainState(x=state.x.repeat(m, *([1] * (state.x.dim() - 1))), extras=extras)
        x = torch.cat([state.x, state.extras["replicas"]])
        if state.energy is None or state.grad is None:
            return ChainState(x=x, extras=extras)
        return ChainState(x=x, energy=torch.cat([state.energy, state.extras["replica_energy"]]),
                          grad=torch.cat([state.grad, state.extras["replica_grad"]]), extras=extras)
