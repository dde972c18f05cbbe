"""True log-densities of the ``pinwheel`` and ``2spirals`` toys, to quadrature / root-finding accuracy.

Neither has a closed form, but both are exact push-forwards of simple noise, so their densities are integrals
in one variable (``2spirals``) or sums over the roots of a 1-D equation (``pinwheel``). Both are computed well
below the accuracy that a 256² grid metric resolves; the tests check them against histograms of samples.

``2spirals`` (:func:`two_spirals_log_density`): ``x = s (c(n) + j) / 3 + ε`` with ``n = 3π √u``,
``c(n) = (-n cos n, n sin n)``, ``j ~ U[0, ½]²``, ``ε ~ N(0, 0.1² I)``, ``s = ±1`` with equal probability. Per
coordinate, ``j/3 + ε`` has density ``f(t) = (Φ(t/σ) - Φ((t - w)/σ)) / w`` with ``w = 1/6``, ``σ = 0.1``, so

    p(x) = ½ ∫₀¹ [f(x₁ - c₁/3) f(x₂ - c₂/3) + f(-x₁ - c₁/3) f(-x₂ - c₂/3)] du,

integrated by the midpoint rule in ``v = √u`` (``du = 2v dv``; ``n = 3π v`` is then uniform) on
:data:`SPIRAL_NODES` nodes. Against 8192 nodes, on the 256² grid over ``[-4, 4]²``, the L1 distance of the
densities is 1.8e-4 and the largest error, at the spirals' outer ends where the curve stops abruptly, is
0.9 % of the density there.

``pinwheel`` (:func:`pinwheel_log_density`): ``x = 2 R(-φ_k(r)) (r, t)`` with arm ``k`` uniform on ``0..4``,
``r ~ N(1, 0.3²)``, ``t ~ N(0, 0.1²)``, ``φ_k(r) = 2πk/5 + ¼ eʳ`` and ``R(θ)`` the rotation by ``θ``. In polar
coordinates ``(ρ, β)`` of ``(r, t)`` and ``(2ρ, α)`` of ``x``, the map keeps the radius and sends
``β -> α = β - φ_k(ρ cos β)``, so with ``g(β) = β - ¼ exp(ρ cos β) - α``

    p(x) = Σ_{β: g(β) ∈ (2π/5) ℤ} (1/5) N(ρ cos β; 1, 0.3²) N(ρ sin β; 0, 0.1²) / (4 |g'(β)|),

``g'(β) = 1 + ¼ exp(ρ cos β) ρ sin β``. The roots are bracketed on a grid of ``[0, 2π]`` fine enough that
``g / (2π/5)`` moves by at most :data:`PINWHEEL_MAX_MOVE` between grid points (``|g'| <= 1 + ¼ e^ρ ρ``),
so no root is skipped, and polished by three Newton steps (largest change against a 25 times finer grid on
the 256² grid: 4e-7, with densities up to 0.27).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

SPIRAL_NODES = 320
SPIRAL_SD, SPIRAL_BOX = 0.1, 0.5 / 3
PINWHEEL_MAX_MOVE = 0.25
PINWHEEL_ARMS, PINWHEEL_RADIAL, PINWHEEL_TANGENTIAL, PINWHEEL_RATE = 5, 0.3, 0.1, 0.25
_CHUNK = 2048  # points per block: blocks are (chunk, nodes) float64


def _log_box_gauss(t: Tensor) -> Tensor:
    """Log-density of ``U[0, w] + N(0, σ²)`` at ``t``. It is symmetric about ``w/2``, so it is computed on the
    lower side, ``log(Φ(-s/σ) - Φ(-(s + w)/σ)) - log w`` with ``s = |t - w/2| - w/2``, from log-tails: finite
    however far ``t`` is from the box."""
    s = (t - SPIRAL_BOX / 2).abs() - SPIRAL_BOX / 2
    near, far = torch.special.log_ndtr(-s / SPIRAL_SD), torch.special.log_ndtr(-(s + SPIRAL_BOX) / SPIRAL_SD)
    return near + torch.log1p(-torch.exp(far - near)) - math.log(SPIRAL_BOX)


def _per_coordinate(values: Tensor, centres: Tensor) -> Tensor:
    """``_log_box_gauss(values[:, None] - centres)``, ``(n, nodes)``, evaluated once per distinct value (a grid
    has only ``R`` distinct values per coordinate among its ``R²`` points)."""
    unique, inverse = torch.unique(values, return_inverse=True)
    return _log_box_gauss(unique[:, None] - centres)[inverse]


def two_spirals_log_density(x: Tensor) -> Tensor:
    """Log-density of ``2spirals`` at ``x (batch, 2)``: shape ``(batch,)``, same dtype; finite everywhere."""
    v = (torch.arange(SPIRAL_NODES, dtype=torch.float64, device=x.device) + 0.5) / SPIRAL_NODES
    n = 3 * math.pi * v
    a, b = -n * torch.cos(n) / 3, n * torch.sin(n) / 3
    log_weight = torch.log(2 * v / SPIRAL_NODES)  # du = 2 v dv, midpoint rule
    out = []
    for block in x.to(torch.float64).split(_CHUNK):
        arms = [torch.logsumexp(log_weight + _per_coordinate(sign * block[:, 0], a)
                                + _per_coordinate(sign * block[:, 1], b), dim=1) for sign in (1.0, -1.0)]
        out.append(torch.logaddexp(*arms) - math.log(2.0))
    return torch.cat(out).to(x.dtype)


def _normal_log_pdf(z: Tensor, mean: float, sd: float) -> Tensor:
    return -0.5 * ((z - mean) / sd) ** 2 - math.log(sd * math.sqrt(2 * math.pi))


def _pinwheel_block(block: Tensor) -> Tensor:
    """:func:`pinwheel_log_density` of one block of float64 points ``(n, 2)``."""
    period = 2 * math.pi / PINWHEEL_ARMS
    rho = (block.norm(dim=1) / 2)[:, None]
    alpha = torch.atan2(block[:, 1], block[:, 0])[:, None]
    top = float(rho.max()) if len(block) else 0.0
    steps = max(16, math.ceil(PINWHEEL_ARMS * (1 + PINWHEEL_RATE * math.exp(top) * top) / PINWHEEL_MAX_MOVE))
    beta_grid = torch.linspace(0, 2 * math.pi, steps + 1, dtype=torch.float64, device=block.device)

    def g(beta):
        return beta - PINWHEEL_RATE * torch.exp(rho * torch.cos(beta)) - alpha

    def g_prime(beta):
        return 1 + PINWHEEL_RATE * torch.exp(rho * torch.cos(beta)) * rho * torch.sin(beta)

    level = g(beta_grid) / period  # roots: where it crosses an integer
    k = torch.floor(level)
    lo, hi = level[:, :-1], level[:, 1:]
    crossed = k[:, 1:] != k[:, :-1]
    m = torch.maximum(k[:, :-1], k[:, 1:])  # the integer crossed (rising or falling)
    frac = ((m - lo) / (hi - lo)).clamp(0, 1)
    beta = beta_grid[:-1] + frac * (beta_grid[1] - beta_grid[0])
    for _ in range(3):  # Newton on g(β) - m·period
        beta = beta - (g(beta) - m * period) / g_prime(beta)
    r, t = rho * torch.cos(beta), rho * torch.sin(beta)
    log_terms = (_normal_log_pdf(r, 1.0, PINWHEEL_RADIAL) + _normal_log_pdf(t, 0.0, PINWHEEL_TANGENTIAL)
                 - math.log(PINWHEEL_ARMS) - math.log(4.0) - torch.log(g_prime(beta).abs()))
    return torch.logsumexp(log_terms.masked_fill(~crossed, -math.inf), dim=1)


def pinwheel_log_density(x: Tensor) -> Tensor:
    """Log-density of ``pinwheel`` at ``x (batch, 2)``: shape ``(batch,)``, same dtype."""
    return torch.cat([_pinwheel_block(block) for block in x.to(torch.float64).split(_CHUNK)]).to(x.dtype)
