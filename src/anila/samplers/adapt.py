"""Step-size adaptation by dual averaging (Hoffman & Gelman 2014, Algorithm 5, section 3.2.1).

For a Metropolis sampler with acceptance probability ``a_m`` at adaptation step ``m = 1, 2, ...`` and a target
``δ = target_accept``, with ``μ = log(10 h_0)``:

    H_m      = (1 - 1/(m + t0)) H_{m-1} + (δ - a_m) / (m + t0)
    log h_m  = μ - sqrt(m) / γ · H_m
    log h̄_m  = m^(-κ) log h_m + (1 - m^(-κ)) log h̄_{m-1}

``h_m`` is the step used next; after the warm-up the averaged ``h̄`` is kept (it converges to the step size whose
mean acceptance is δ). Defaults ``γ = 0.05``, ``t0 = 10``, ``κ = 0.75``; targets ≈ 0.57 for MALA-type samplers and
0.65-0.8 for HMC. With ``window = W`` the count is capped at ``W`` (``m → min(m, W)`` in every formula): the
average ``H`` then forgets at rate ``1/(W + t0)``, so a stretch spent far from the target (a flat, untrained energy
accepts every step while the step sits at its bound) is forgotten within about ``W`` updates. Everything is a
tensor on the chains' device (``(batch,)``: one step size per chain, or ``()``), so nothing synchronises with the
host.

Two uses: :func:`~anila.samplers.runner.run_chains` adapts each chain's step during ``num_warmup`` steps; the
training loop keeps one :class:`AdaptiveStepSize` across iterations (``[sampler] adapt = true``), updated once per
iteration from the iteration's mean acceptance, and checkpointed with the run.

>>> adaptation = DualAveraging(target_accept=0.57)
>>> state = adaptation.init(0.1, shape=(4,))
>>> state = adaptation.update(state, torch.full((4,), 0.9))
>>> bool((adaptation.step_size(state) > 0.1).all())
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
from torch import Tensor


@dataclass(frozen=True)
class DualAveragingState:
    """``log_step`` (the current iterate), ``log_step_avg``, ``h_bar``, ``mu`` (all shaped alike) and ``count``
    (0-d): tensors only, ready for a checkpoint."""

    log_step: Tensor
    log_step_avg: Tensor
    h_bar: Tensor
    mu: Tensor
    count: Tensor

    def state_dict(self) -> dict[str, Tensor]:
        return {name: getattr(self, name).clone() for name in ("log_step", "log_step_avg", "h_bar", "mu", "count")}

    @classmethod
    def from_state_dict(cls, tensors: dict[str, Tensor]) -> DualAveragingState:
        return cls(**{name: tensors[name].clone() for name in ("log_step", "log_step_avg", "h_bar", "mu", "count")})


@dataclass(frozen=True)
class DualAveraging:
    """Hyperparameters of the dual-averaging adaptation (module docstring)."""

    target_accept: float = 0.57
    gamma: float = 0.05
    t0: float = 10.0
    kappa: float = 0.75
    window: float | None = None

    def __post_init__(self) -> None:
        if not 0 < self.target_accept < 1:
            raise ValueError(f"target_accept must be in (0, 1), got {self.target_accept!r}")
        if not (self.gamma > 0 and self.t0 >= 0 and 0.5 < self.kappa <= 1):
            raise ValueError("dual averaging needs gamma > 0, t0 >= 0 and kappa in (0.5, 1]")
        if self.window is not None and not self.window >= 1:
            raise ValueError(f"window must be >= 1, got {self.window!r}")

    def init(self, step_size: float | Tensor, *, shape: tuple[int, ...] = (),
             device: torch.device | str | None = None) -> DualAveragingState:
        """Start from ``step_size`` (a float or a tensor of ``shape``)."""
        log_step = torch.log(torch.as_tensor(step_size, dtype=torch.float64, device=device)).expand(shape).clone()
        zeros = torch.zeros_like(log_step)
        return DualAveragingState(log_step=log_step, log_step_avg=log_step.clone(), h_bar=zeros,
                                  mu=log_step + math.log(10.0), count=torch.zeros((), dtype=torch.float64,
                                                                                   device=log_step.device))

    def update(self, state: DualAveragingState, accept_prob: Tensor) -> DualAveragingState:
        """One adaptation step from the acceptance probabilities just observed (shaped like the state)."""
        count = state.count + 1
        m = count if self.window is None else count.clamp_max(self.window)
        weight = 1.0 / (m + self.t0)
        accept = torch.nan_to_num(accept_prob.detach().to(torch.float64), nan=0.0)  # a NaN proposal was rejected
        h_bar = (1 - weight) * state.h_bar + weight * (self.target_accept - accept)
        log_step = state.mu - m.sqrt() / self.gamma * h_bar
        eta = m.pow(-self.kappa)
        log_step_avg = eta * log_step + (1 - eta) * state.log_step_avg
        return DualAveragingState(log_step=log_step, log_step_avg=log_step_avg, h_bar=h_bar, mu=state.mu, count=count)

    @staticmethod
    def step_size(state: DualAveragingState) -> Tensor:
        """The step to use next (the iterate ``h_m``)."""
        return state.log_step.exp()

    @staticmethod
    def final_step_size(state: DualAveragingState) -> Tensor:
        """The step to keep after the warm-up (the average ``h̄_m``)."""
        return state.log_step_avg.exp()


class AdaptiveStepSize:
    """One step size adapted across training iterations (owned by the loop, like a replay buffer).

    Each iteration samples with :meth:`step_size` and then calls :meth:`update` with the mean acceptance over its
    chains and steps. The recursion forgets (``window``, default 50 iterations) because the energy changes under
    it, and the step is kept within ``[h0 · 1e-4, h0 · 1e2]`` of the configured ``h0``: an untrained, nearly flat
    energy accepts any step, and an unbounded step would fling the chains away. :meth:`scale` multiplies the step
    (the divergence guard's cool-down).

    >>> adapter = AdaptiveStepSize(DualAveraging(0.57), 0.1)
    >>> for _ in range(20):                    # the chains accept too rarely: the step comes down
    ...     adapter.update(torch.tensor(0.2))
    >>> bool(adapter.step_size() < 0.1)
    True
    """

    MIN_FACTOR, MAX_FACTOR, WINDOW = 1e-4, 1e2, 50.0

    def __init__(self, settings: DualAveraging, step_size: float, device: torch.device | str | None = None):
        self.settings = settings if settings.window is not None else replace(settings, window=self.WINDOW)
        self.state = self.settings.init(step_size, device=device)
        self.log_bounds = (math.log(step_size * self.MIN_FACTOR), math.log(step_size * self.MAX_FACTOR))

    def step_size(self) -> Tensor:
        return DualAveraging.step_size(self.state).float()

    def update(self, accept_rate: Tensor) -> None:
        state = self.settings.update(self.state, accept_rate.reshape(()))
        self.state = replace(state, log_step=state.log_step.clamp(*self.log_bounds))

    def scale(self, factor: float) -> None:
        shift = math.log(factor)
        self.state = replace(self.state, log_step=self.state.log_step + shift, mu=self.state.mu + shift,
                             log_step_avg=self.state.log_step_avg + shift)
        self.log_bounds = (self.log_bounds[0] + shift, self.log_bounds[1] + shift)

    def state_dict(self) -> dict[str, Tensor]:
        return {**self.state.state_dict(), "log_bounds": torch.tensor(self.log_bounds, dtype=torch.float64)}

    def load_state_dict(self, tensors: dict[str, Tensor]) -> None:
        self.state = DualAveragingState.from_state_dict(tensors)
        if "log_bounds" in tensors:
            low, high = (float(v) for v in tensors["log_bounds"])
            self.log_bounds = (low, high)
