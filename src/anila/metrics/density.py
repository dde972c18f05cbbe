"""Exact 2-D density metrics: normalise densities on a grid and compare them.

A learned EBM has an unknown normaliser, but in 2-D it can be computed by quadrature: evaluate
``-E`` at the centres of an ``R × R`` grid over ``[-bound, bound]²`` and normalise with a log-sum-exp.
Both densities become distributions over the same cells, compared by

    KL(p ‖ q) = Σ_i p_i (log p_i - log q_i),   TV = ½ Σ_i |p_i - q_i|,   H² = 1 - Σ_i sqrt(p_i q_i).

Cells where ``p_i = 0`` contribute nothing to ``KL(p ‖ q)``; a cell with ``p_i > 0 = q_i`` makes it ``inf``,
which is reported as such, never replaced by a number.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor


def grid_points(bound: float, resolution: int = 256, *, device=None, dtype=None) -> Tensor:
    """Cell centres of an ``R × R`` grid over ``[-bound, bound]²``, shape ``(R*R, 2)``, row-major in y."""
    if bound <= 0 or resolution < 2:
        raise ValueError(f"need bound > 0 and resolution >= 2; got {bound}, {resolution}")
    width = 2 * bound / resolution
    centres = torch.linspace(-bound + width / 2, bound - width / 2, resolution, device=device, dtype=dtype)
    y, x = torch.meshgrid(centres, centres, indexing="ij")
    return torch.stack([x.reshape(-1), y.reshape(-1)], dim=-1)


@torch.no_grad()
def grid_log_prob(log_density: Callable[[Tensor], Tensor], bound: float, resolution: int = 256, *,
                  chunk: int = 65536, device=None, dtype=None) -> Tensor:
    """Log-probabilities of the grid cells under an unnormalised log-density: ``(R, R)``, logsumexp = 0.

    ``log_density`` maps ``(n, 2) -> (n,)`` (for an energy pass ``lambda x: -energy(x)``); rows index y.

    >>> from anila.energies import Gaussian
    >>> logp = grid_log_prob(Gaussian.isotropic(2).log_prob, bound=4.0, resolution=64)
    >>> logp.shape, round(float(logp.exp().sum()), 4)  # normalised over the grid's cells
    (torch.Size([64, 64]), 1.0)
    """
    points = grid_points(bound, resolution, device=device, dtype=dtype)
    values = torch.cat([log_density(p) for p in points.split(chunk)])
    if torch.isnan(values).any():
        raise ValueError("log-density is NaN on the evaluation grid")
    return (values - torch.logsumexp(values, dim=0)).view(resolution, resolution)


def _kl(log_p: Tensor, log_q: Tensor) -> Tensor:
    p = log_p.exp()
    terms = torch.where(p > 0, p * (log_p - log_q), torch.zeros_like(p))
    return terms.sum()


def density_divergences(log_p: Tensor, log_q: Tensor) -> dict[str, float]:
    """Compare two grid distributions given as log-probabilities of the same cells.

    Returns ``kl_pq = KL(p ‖ q)``, ``kl_qp = KL(q ‖ p)``, ``tv`` and ``hellinger`` (the distance, in [0, 1]).
    """
    if log_p.shape != log_q.shape:
        raise ValueError(f"grids differ: {tuple(log_p.shape)} vs {tuple(log_q.shape)}")
    log_p, log_q = log_p.double(), log_q.double()
    p, q = log_p.exp(), log_q.exp()
    bc = torch.exp(0.5 * (log_p + log_q)).sum().clamp(max=1.0)
    return {
        "kl_pq": float(_kl(log_p, log_q)),
        "kl_qp": float(_kl(log_q, log_p)),
        "tv": float(0.5 * (p - q).abs().sum()),
        "hellinger": float(torch.sqrt(1.0 - bc)),
    }


def energy_grid_divergences(energy: Callable[[Tensor], Tensor], true_log_density: Callable[[Tensor], Tensor],
                            bound: float, resolution: int = 256, *, device=None) -> dict[str, float]:
    """Grid divergences between the truth and the learned ``exp(-E)``: ``kl_true_model``
    (``KL(true ‖ learned)``), ``kl_model_true``, ``tv`` and ``hellinger``."""
    log_true = grid_log_prob(true_log_density, bound, resolution, device=device)
    log_model = grid_log_prob(lambda x: -energy(x), bound, resolution, device=device)
    d = density_divergences(log_true, log_model)
    return {"kl_true_model": d["kl_pq"], "kl_model_true": d["kl_qp"], "tv": d["tv"], "hellinger": d["hellinger"]}


@torch.no_grad()
def cell_log_prob(log_density: Callable[[Tensor], Tensor], bound: float, resolution: int = 64, *,
                  refine: int = 4, device=None, dtype=torch.float64) -> Tensor:
    """Log-probabilities of ``R × R`` cells, each integrated by the midpoint rule on ``refine²`` sub-cells.

    Unlike :func:`grid_log_prob` (the density at cell centres), this is the mass of each cell, the right
    reference for a histogram of samples. Returns ``(R, R)``, rows index y, logsumexp = 0 over the box.
    """
    fine = grid_log_prob(log_density, bound, resolution * refine, device=device, dtype=dtype)
    cells = fine.view(resolution, refine, resolution, refine)
    return torch.logsumexp(cells.permute(0, 2, 1, 3).reshape(resolution, resolution, -1), dim=-1)


def histogram_log_prob(samples: Tensor, bound: float, resolution: int = 64) -> Tensor:
    """Empirical log-probabilities of the ``R × R`` cells of ``[-bound, bound]²`` (``-inf`` for empty cells).

    ``samples``: ``(n, 2)``; points outside the box are dropped (count them with :func:`outside_fraction`).
    """
    x = samples.detach().reshape(-1, 2).double()
    idx = torch.floor((x + bound) / (2 * bound) * resolution).long()
    inside = ((idx >= 0) & (idx < resolution)).all(1)
    idx = idx[inside]
    counts = torch.bincount(idx[:, 1] * resolution + idx[:, 0], minlength=resolution * resolution).double()
    if counts.sum() == 0:
        raise ValueError(f"no sample falls inside [-{bound}, {bound}]²")
    return torch.log(counts / counts.sum()).view(resolution, resolution)


def outside_fraction(samples: Tensor, bound: float) -> float:
    """Fraction of ``(n, 2)`` samples outside ``[-bound, bound]²`` (or non-finite)."""
    x = samples.detach().reshape(-1, 2)
    return float((~(x.abs() <= bound).all(1)).double().mean())


def sample_divergences(samples: Tensor, true_log_density: Callable[[Tensor], Tensor] | None, bound: float,
                       resolution: int = 64, *, truth: Tensor | None = None) -> dict[str, float]:
    """Histogram of samples vs. the true cell masses.

    The plane is split into the ``R × R`` cells of the box plus one cell for everything outside it (true
    mass ≈ 0 by the choice of ``bound``). ``tv`` and ``hellinger`` are computed over all ``R² + 1`` cells, so
    samples thrown off the box count against the sampler; ``kl_hist_true`` is ``KL(hist ‖ true)`` of the
    in-box histogram renormalised (NaN when no sample is inside); ``outside`` is the fraction off the box.
    Pass ``truth = cell_log_prob(...)`` to reuse the cell masses (then ``true_log_density`` may be ``None``).
    """
    if truth is None:
        if true_log_density is None:
            raise ValueError("pass true_log_density or truth")
        truth = cell_log_prob(true_log_density, bound, resolution, device=samples.device)
    outside = outside_fraction(samples, bound)
    if outside == 1.0:
        return {"tv": 1.0, "kl_hist_true": math.nan, "hellinger": 1.0, "outside": 1.0}
    hist = histogram_log_prob(samples, bound, resolution).double()
    truth = truth.double()
    inside = 1.0 - outside
    p, q = inside * hist.exp(), truth.exp()
    bc = (inside**0.5) * torch.exp(0.5 * (hist + truth)).sum().clamp(max=1.0)
    return {"tv": float(0.5 * ((p - q).abs().sum() + outside)), "kl_hist_true": float(_kl(hist, truth)),
            "hellinger": float(torch.sqrt(1.0 - bc)), "outside": outside}
