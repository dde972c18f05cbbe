"""MCMC diagnostics: autocorrelation, effective sample size, split-R̂, acceptance rate and jump distance.

Axis convention for :func:`autocorrelation`, :func:`effective_sample_size` and :func:`split_rhat`: ``x`` is
``(chains, draws, *rest)``, chain axis 0 and draw axis 1; every trailing index is a separate scalar quantity
and the result has shape ``rest``. :func:`~anila.samplers.run_chains` records trajectories the other way round,
``(steps + 1, chains, *event)`` (the start first): convert them with :func:`trajectory_to_chains`, which also
flattens the event to one axis, and discard warm-up draws first (``traj[burn_in:]``).

    >>> from anila.energies import Gaussian
    >>> from anila.samplers import MALA, run_chains
    >>> g = torch.Generator().manual_seed(0)
    >>> result = run_chains(MALA(step_size=0.5), Gaussian.isotropic(2), torch.randn(4, 2, generator=g), 300,
    ...                     generator=g, record_trajectory=True)
    >>> ess = effective_sample_size(trajectory_to_chains(result.trajectory[100:]))  # 4 chains x 200 draws
    >>> ess.shape, bool((ess > 50).all() and (ess < 1000).all())
    (torch.Size([2]), True)

Computations are done in float64; results are returned in float64.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def _as_chains(x: Tensor, min_draws: int) -> Tensor:
    x = torch.as_tensor(x)
    if x.dim() < 2:
        raise ValueError(f"x must be (chains, draws, ...), got shape {tuple(x.shape)}")
    if x.shape[0] < 1 or x.shape[1] < min_draws:
        raise ValueError(f"need at least 1 chain and {min_draws} draws per chain; got shape {tuple(x.shape)}")
    x = x.to(torch.float64)
    if not torch.isfinite(x).all():
        raise ValueError("x contains NaN or inf")
    return x


def _autocovariance(x: Tensor) -> Tensor:
    """Biased autocovariance along dim 1 (``1/N Σ_{s} (x_s - x̄)(x_{s+t} - x̄)``), via a zero-padded FFT."""
    n = x.shape[1]
    centred = (x - x.mean(dim=1, keepdim=True)).movedim(1, -1).contiguous()  # FFT along the last, contiguous axis
    nfft = 1 << (2 * n - 1).bit_length()  # >= 2n - 1: no circular wrap-around
    f = torch.fft.rfft(centred, n=nfft, dim=-1)
    power = f.real.square() + f.imag.square()
    return torch.fft.irfft(power, n=nfft, dim=-1)[..., :n].movedim(-1, 1) / n


def autocorrelation(x: Tensor) -> Tensor:
    """Per-chain autocorrelation along the draw axis, computed with an FFT: ``(chains, draws, *rest)``.

    ``ρ_t = γ_t / γ_0`` with the biased autocovariance ``γ_t = (1/N) Σ_{s=0}^{N-1-t} (x_s - x̄)(x_{s+t} - x̄)``
    (each chain centred on its own mean), so ``ρ_0 = 1``. A constant chain gives NaN.

    >>> autocorrelation(torch.tensor([[1.0, -1.0, 1.0, -1.0]]))
    tensor([[ 1.0000, -0.7500,  0.5000, -0.2500]], dtype=torch.float64)
    """
    acov = _autocovariance(_as_chains(x, 1))
    return acov / acov.narrow(1, 0, 1)


def _chain_stats(x: Tensor) -> tuple[Tensor, Tensor]:
    """Mean within-chain variance ``W`` and ``var⁺ = (N-1)/N W + B/N`` over dim 0 (chains) and 1 (draws)."""
    m, n = x.shape[:2]
    w = x.var(dim=1).mean(dim=0)
    b_over_n = x.mean(dim=1).var(dim=0) if m > 1 else torch.zeros_like(w)
    return w, (n - 1) / n * w + b_over_n


def effective_sample_size(x: Tensor) -> Tensor:
    """Multi-chain effective sample size for the mean of each quantity: ``x (M, N, *rest) -> rest``.

    The plain (not rank-normalised, not split) estimator of Stan / Vehtari et al. (2021), total over chains:

        W = mean_m s²_m,   var⁺ = (N-1)/N · W + B/N,   B/N = var_m(x̄_m)
        ρ̂_t = 1 - (W - mean_m γ_{m,t}) / var⁺   (t >= 1),   ρ̂_0 = 1
        P_k = ρ̂_{2k} + ρ̂_{2k+1}, kept while positive (Geyer's initial positive sequence), then made
              non-increasing (initial monotone sequence: P_k <- min(P_0, ..., P_k))
        τ̂ = -1 + 2 Σ_k P_k,   ESS = M N / τ̂

    with ``γ_{m,t}`` the biased autocovariance of chain ``m`` (see :func:`autocorrelation`). As in Stan, τ̂ is
    floored at ``1 / log10(MN)`` (ESS at most ``MN log10(MN)``, reachable by antithetic chains). Quantities that
    are constant across all draws and chains get NaN. Needs at least 4 draws per chain.

    >>> effective_sample_size(torch.randn(4, 1000, 3)).shape  # ≈ 4000 each for independent draws
    torch.Size([3])
    """
    x = _as_chains(x, 4)
    m, n = x.shape[:2]
    rest = x.shape[2:]
    x = x.reshape(m, n, -1)
    w, var_plus = _chain_stats(x)
    acov = _autocovariance(x).mean(dim=0)  # (N, Q)
    rho = 1.0 - (w - acov) / var_plus
    rho[0] = 1.0
    pairs = rho[: 2 * (n // 2)].reshape(n // 2, 2, -1).sum(dim=1)  # (N // 2, Q): P_k
    positive = torch.cumprod((pairs > 0).to(x.dtype), dim=0)  # 1 up to the first non-positive pair, then 0
    monotone = torch.cummin(pairs, dim=0).values
    tau = -1.0 + 2.0 * (monotone * positive).sum(dim=0)
    tau = tau.clamp(min=1.0 / math.log10(m * n))
    ess = m * n / tau
    ess = torch.where(var_plus > 0, ess, torch.full_like(ess, math.nan))
    return ess.reshape(rest)


def split_rhat(x: Tensor) -> Tensor:
    """Split potential scale reduction factor: ``x (M, N, *rest) -> rest``.

    Each chain is split into its first and second half (the middle draw is dropped when ``N`` is odd), giving
    ``2M`` chains of ``n = ⌊N/2⌋`` draws; then ``R̂ = sqrt(var⁺ / W)`` with ``W`` the mean within-chain
    variance and ``var⁺ = (n-1)/n · W + B/n`` (``B/n`` the variance of the chain means). Close to 1 when the
    chains have mixed; values above 1.01 (strict) or 1.1 (lenient) signal a problem. A quantity constant within
    every half-chain gives ``inf`` (or NaN if it is constant everywhere). Needs at least 4 draws per chain.

    >>> split_rhat(torch.randn(4, 1000, 2)).shape  # each ≈ 1 for independent draws
    torch.Size([2])
    """
    x = _as_chains(x, 4)
    m, n = x.shape[:2]
    half = n // 2
    halves = torch.cat([x[:, :half], x[:, n - half:]], dim=0)
    w, var_plus = _chain_stats(halves)
    return torch.sqrt(var_plus / w)


def acceptance_rate(accept_prob: Tensor) -> float:
    """Mean Metropolis acceptance probability over steps and chains of a ``(steps, chains)`` tensor,
    e.g. ``run_chains(..., record_info=True).info["accept_prob"]``."""
    accept_prob = torch.as_tensor(accept_prob)
    if accept_prob.numel() == 0:
        raise ValueError("accept_prob is empty")
    if accept_prob.isnan().any() or (accept_prob < 0).any() or (accept_prob > 1).any():
        raise ValueError("accept_prob must lie in [0, 1]")
    return float(accept_prob.to(torch.float64).mean())


def mean_squared_jump(trajectory: Tensor) -> float:
    """Mean squared jump distance ``mean_{t, c} ‖x_{t+1, c} - x_{t, c}‖²`` of a ``(steps + 1, chains, *event)``
    trajectory (as recorded by :func:`~anila.samplers.run_chains`; with ``thin > 1`` a "step" is ``thin``
    transitions, and the final state may be closer than ``thin`` to the one before it).

    >>> mean_squared_jump(torch.tensor([[[0.0, 0.0]], [[3.0, 4.0]]]))
    25.0
    """
    trajectory = torch.as_tensor(trajectory)
    if trajectory.dim() < 2 or trajectory.shape[0] < 2 or trajectory.shape[1] < 1:
        raise ValueError(f"trajectory must be (steps + 1, chains, *event) with at least 2 states, "
                         f"got {tuple(trajectory.shape)}")
    steps = torch.diff(trajectory.to(torch.float64), dim=0)
    return float(steps.reshape(steps.shape[0], steps.shape[1], -1).pow(2).sum(-1).mean())


def trajectory_to_chains(trajectory: Tensor) -> Tensor:
    """``(steps, chains, *event) -> (chains, steps, D)`` with ``D = prod(event)`` (1 for scalar chains):
    the layout :func:`effective_sample_size`, :func:`split_rhat` and :func:`autocorrelation` expect.

    >>> trajectory_to_chains(torch.zeros(100, 8, 2)).shape
    torch.Size([8, 100, 2])
    """
    trajectory = torch.as_tensor(trajectory)
    if trajectory.dim() < 2:
        raise ValueError(f"trajectory must be (steps, chains, *event), got shape {tuple(trajectory.shape)}")
    chains = trajectory.movedim(0, 1)
    return chains.reshape(chains.shape[0], chains.shape[1], -1)
