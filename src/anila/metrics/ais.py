"""Annealed importance sampling (AIS) for ``log Z = log ∫ exp(-E(x)) dx``, and test log-likelihoods.

Neal (2001), as used for EBMs in "How to train your EBM" (Song & Kingma, section 2) and by IGEBM. Between a
normalised base ``p_0 = exp(-E_0) / Z_0`` and the unnormalised target ``exp(-E)`` the geometric path is

    E_β(x) = (1 - β) E_0(x) + β E(x),        0 = β_0 < β_1 < ... < β_T = 1.

Every chain starts at ``x ~ p_0`` with ``log w = 0``; for ``t = 1..T``

    log w += -(β_t - β_{t-1}) (E(x) - E_0(x))                    (x distributed as p_{β_{t-1}})
    x ← num_steps transitions of a kernel leaving exp(-E_{β_t}) invariant   (MALA, Metropolis AniLA, HMC)

and ``Ẑ = Z_0 · mean_chains exp(log w)`` is unbiased for ``Z``. The reported ``log_z = log Z_0 + logmeanexp(log w)``
is a stochastic lower bound (``E log Ẑ <= log Z``, Jensen); its standard error is the delta-method
``sd(w) / (sqrt(n) · mean(w))`` over the ``n`` chains, computed from the normalised weights. A tiny ``ess`` (the
weights' effective sample size ``(Σ w)² / Σ w²``) means the standard error is not trustworthy: add
temperatures or transitions.

Bases: :class:`~anila.energies.analytic.Gaussian` (default ``N(0, I)``) or :class:`UniformBox` for models that
live on a box (image energies sampled with their state clamped to ``[-1, 1]``): the target is then ``exp(-E)``
restricted to the box, and proposals that leave it are rejected.

Cost per temperature: one forward + backward of ``E`` (the weight and the kernel's starting gradient) plus the
kernel's own passes (one per MALA step, ``L`` per HMC step). The loop never synchronises with the host.

>>> result = ais_log_partition(Gaussian.isotropic(2, std=0.5), MALA(step_size=0.1), num_chains=256,
...                            num_temperatures=200, generator=torch.Generator().manual_seed(0))  # doctest: +SKIP
>>> abs(result.log_z - math.log(2 * math.pi * 0.25)) < 4 * result.stderr                           # doctest: +SKIP
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from anila.energies.analytic import AnalyticEnergy, Gaussian
from anila.energies.base import Energy, energy_and_grad
from anila.samplers.base import ChainState


class UniformBox(AnalyticEnergy):
    """The uniform density on the box ``[low, high]^d``: ``E = 0`` inside, ``+inf`` outside,
    ``log_z = d · log(high - low)``. ``event_shape`` may be an image shape ``(C, H, W)``."""

    _reference: Tensor  # a buffer: follows .to() / .double(), and gives the samples' device and dtype

    def __init__(self, event_shape: tuple[int, ...], low: float = -1.0, high: float = 1.0):
        super().__init__()
        if not low < high:
            raise ValueError(f"the box needs low < high, got [{low}, {high}]")
        self.event_shape = tuple(event_shape)
        self.dim = math.prod(self.event_shape)
        self.low, self.high = float(low), float(high)
        self.log_z = self.dim * math.log(self.high - self.low)
        self.register_buffer("_reference", torch.zeros(()))

    def forward(self, x: Tensor) -> Tensor:
        inside = ((x >= self.low) & (x <= self.high)).flatten(1).all(1)
        zero = 0.0 * x.flatten(1).sum(1)  # keeps the graph (and the dtype) for energy_and_grad
        return torch.where(inside, zero, torch.full_like(zero, math.inf))

    def sample(self, num: int, generator: torch.Generator | None = None) -> Tensor:
        u = torch.rand(num, *self.event_shape, generator=generator, device=self._reference.device,
                       dtype=self._reference.dtype)
        return self.low + (self.high - self.low) * u


class _Restricted(nn.Module):
    """``E(x)`` inside the box of ``base``, ``+inf`` outside (so a Metropolis kernel rejects leaving it)."""

    def __init__(self, energy: Energy, base: UniformBox):
        super().__init__()
        self.energy, self.base = energy, base

    def forward(self, x: Tensor) -> Tensor:
        return self.energy(x) + self.base(x)


class _Tempered(nn.Module):
    """``E_β = (1 - β) E_0 + β E`` for a fixed ``β``."""

    def __init__(self, energy: Energy, base: AnalyticEnergy, beta: float):
        super().__init__()
        self.energy, self.base, self.beta = energy, base, beta

    def combine(self, target: Tensor, base: Tensor) -> Tensor:
        """``E_β`` (or its gradient) from the target's and the base's values at the same points."""
        if isinstance(self.base, UniformBox):  # base is 0 inside, inf outside: never form (1 - β) · inf
            return self.beta * target + base
        return (1.0 - self.beta) * base + self.beta * target

    def forward(self, x: Tensor) -> Tensor:
        return self.combine(self.energy(x), self.base(x))


def sigmoid_schedule(num_temperatures: int, sharpness: float = 4.0) -> list[float]:
    """``β_0 = 0 < ... < β_T = 1``: a rescaled sigmoid of ``sharpness · (2t/T - 1)``, dense at both ends
    (Grosse et al. 2015; Wu et al. 2017)."""
    if num_temperatures < 1:
        raise ValueError(f"num_temperatures must be >= 1, got {num_temperatures}")
    t = torch.linspace(-sharpness, sharpness, num_temperatures + 1, dtype=torch.float64)
    s = torch.sigmoid(t)
    beta = (s - s[0]) / (s[-1] - s[0])
    return [float(b) for b in beta]


@dataclass
class AISResult:
    """``log_z`` (estimate of ``log Z``), its ``stderr``, the final ``log_weights`` ``(num_chains,)`` (plus
    ``log Z_0``), the weights' effective sample size ``ess`` and the kernel's mean ``accept_prob``."""

    log_z: float
    stderr: float
    log_weights: Tensor
    ess: float
    accept_prob: float


def _check_kernel(sampler) -> None:
    if not sampler.is_exact:
        raise ValueError(f"AIS needs a kernel that leaves each tempered density invariant; {type(sampler).__name__} "
                         "is unadjusted: use MALA, MetropolisAniLA or HMC")


def ais_log_partition(energy: Energy, sampler, *, base: AnalyticEnergy | None = None, num_chains: int = 256,
                      num_temperatures: int = 1000, num_steps: int = 1, event_shape: tuple[int, ...] | None = None,
                      generator: torch.Generator | None = None, progress: bool = False) -> AISResult:
    """Estimate ``log ∫ exp(-E)`` by AIS along the geometric path from ``base`` (see the module docstring).

    ``sampler``: a Metropolis-adjusted transition (``MALA``, ``MetropolisAniLA``, ``HMC``), run ``num_steps``
    times per temperature. ``base``: a ``Gaussian`` (default ``N(0, I)`` of dimension ``prod(event_shape)``,
    flat events only) or a :class:`UniformBox`. Returns an :class:`AISResult`.
    """
    _check_kernel(sampler)
    if base is None:
        if event_shape is None or len(event_shape) != 1:
            raise ValueError("pass base=..., or event_shape=(dim,) for the default N(0, I) base")
        base = Gaussian.isotropic(event_shape[0])
    if num_chains < 2 or num_steps < 1:
        raise ValueError(f"num_chains must be >= 2 and num_steps >= 1; got {num_chains}, {num_steps}")
    target = _Restricted(energy, base) if isinstance(base, UniformBox) else energy
    betas = sigmoid_schedule(num_temperatures)
    x = base.sample(num_chains, generator=generator)
    log_w = torch.zeros(num_chains, dtype=torch.float64, device=x.device)
    accept = torch.zeros((), dtype=torch.float64, device=x.device)
    temperatures = range(1, len(betas))
    if progress:
        from tqdm.auto import tqdm

        temperatures = tqdm(temperatures, desc="AIS", unit="temperature", leave=False)
    for t in temperatures:
        e, g = energy_and_grad(target, x)
        e0, g0 = energy_and_grad(base, x)
        log_w = log_w - (betas[t] - betas[t - 1]) * (e - e0).to(torch.float64)
        kernel = _Tempered(target, base, betas[t])
        state = ChainState(x=x, energy=kernel.combine(e, e0), grad=kernel.combine(g, g0))
        for _ in range(num_steps):
            state, info = sampler.step(kernel, state, generator)
            accept = accept + info["accept_prob"].mean().to(torch.float64)
        x = state.x
    return summarise(log_w, base.log_z, accept / (num_temperatures * num_steps))


def summarise(log_weights: Tensor, log_z_base: float, accept_prob: Tensor | float = float("nan")) -> AISResult:
    """``log Z = log Z_0 + logmeanexp(log w)`` with its delta-method standard error and the weights' ESS."""
    n = log_weights.numel()
    log_mean = torch.logsumexp(log_weights, 0) - math.log(n)
    w = torch.exp(log_weights - log_weights.max())  # normalised: the ratio sd / mean does not depend on the shift
    stderr = w.std() / (math.sqrt(n) * w.mean())
    ess = w.sum() ** 2 / (w**2).sum()
    return AISResult(log_z=float(log_mean) + log_z_base, stderr=float(stderr), log_weights=log_weights.cpu(),
                     ess=float(ess), accept_prob=float(accept_prob))


def log_likelihood(energy: Energy, data: Tensor, *, log_z: float, log_z_stderr: float = 0.0,
                   batch_size: int = 1000) -> tuple[float, float]:
    """Mean log-likelihood ``mean_i (-E(x_i)) - log Z`` of ``data`` ``(n, *event)``, in nats per sample, and its
    standard error ``sqrt(var(E) / n + log_z_stderr²)`` (data sampling error plus the error of ``log Z``).

    >>> log_likelihood(target, target.sample(1000), log_z=target.log_z)   # doctest: +SKIP
    """
    if len(data) < 2:
        raise ValueError(f"log_likelihood needs at least 2 data points, got {len(data)}")
    with torch.no_grad():
        energies = torch.cat([energy(data[i:i + batch_size]) for i in range(0, len(data), batch_size)])
    energies = energies.to(torch.float64)
    stderr = math.sqrt(float(energies.var()) / len(energies) + log_z_stderr**2)
    return float(-energies.mean()) - log_z, stderr
