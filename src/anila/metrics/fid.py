"""Fréchet distance (FID) and kernel inception distance (KID) between two sets of features.

The features come from any extractor ``(n, C, H, W) -> (n, F)`` (:mod:`anila.metrics.features`: Inception-v3
pool features, or a small classifier trained on the data set itself for a "domain" FID). With feature means
``μ_a, μ_b`` ``(F,)`` and covariances ``Σ_a, Σ_b`` ``(F, F)`` (Heusel et al. 2017):

    FID = ‖μ_a - μ_b‖² + tr(Σ_a + Σ_b - 2 (Σ_a Σ_b)^{1/2})

computed in float64 (see :func:`frechet_distance` for the square root). KID (Bińkowski et al. 2018) is the
unbiased estimate of the squared MMD with the cubic polynomial kernel ``k(x, y) = (xᵀy / F + 1)³``, for
two sets of ``m`` features each,

    MMD²_u = 1/(m(m-1)) Σ_{i≠j} k(a_i, a_j) + 1/(m(m-1)) Σ_{i≠j} k(b_i, b_j) - 2/m² Σ_{i,j} k(a_i, b_j),

averaged over ``num_subsets`` disjoint blocks of each set; the spread over blocks gives its standard
error. FID is biased upwards for small sets (it is ≈ 0 only as the sets grow); KID is unbiased, so two
sets from one distribution give KID ≈ 0 within its error.

>>> g = torch.Generator().manual_seed(0)
>>> features_real, features_fake = torch.randn(500, 8, generator=g), torch.randn(500, 8, generator=g) + 1.0
>>> fid(features_real, features_fake) > fid(features_real, torch.randn(500, 8, generator=g))
True
>>> value, stderr = kid(features_real, features_fake, subset_size=100, generator=g)  # (value, stderr)
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor


def feature_statistics(features: Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``(F,)`` and unbiased covariance ``(F, F)`` of ``features`` ``(n, F)``, as float64 arrays."""
    x = features.detach().double().cpu().numpy()
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"features must be (n >= 2, F), got {tuple(features.shape)}")
    if not np.isfinite(x).all():
        raise ValueError("features contain NaN or infinite values: the images (or the model's samples) are broken")
    return x.mean(0), np.cov(x, rowvar=False).reshape(x.shape[1], x.shape[1])


def _psd_sqrt(cov: np.ndarray) -> np.ndarray:
    """Symmetric square root of a covariance (eigenvalues below 0 from round-off set to 0)."""
    values, vectors = np.linalg.eigh(cov)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def frechet_distance(mean_a: np.ndarray, cov_a: np.ndarray, mean_b: np.ndarray, cov_b: np.ndarray) -> float:
    """``‖μ_a - μ_b‖² + tr(Σ_a + Σ_b - 2 (Σ_a Σ_b)^{1/2})`` between two Gaussians (float64).

    ``tr (Σ_a Σ_b)^{1/2}`` is computed as ``Σ_i sqrt(λ_i)`` over the eigenvalues of the symmetric
    ``Σ_a^{1/2} Σ_b Σ_a^{1/2}``, which has the same eigenvalues as ``Σ_a Σ_b``. This equals the trace of
    ``scipy.linalg.sqrtm(Σ_a Σ_b)`` (tested) but stays real and finite for the singular covariances of
    ReLU features with dead units, where ``sqrtm`` warns and returns complex round-off."""
    diff = mean_a - mean_b
    root_a = _psd_sqrt(cov_a)
    middle = root_a @ cov_b @ root_a
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh(0.5 * (middle + middle.T)), 0, None)).sum()
    return float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_sqrt)


def fid(features_a: Tensor, features_b: Tensor) -> float:
    """The Fréchet distance between the Gaussians fitted to two feature sets ``(n_a, F)`` and ``(n_b, F)``."""
    return frechet_distance(*feature_statistics(features_a), *feature_statistics(features_b))


def _polynomial_mmd2(a: Tensor, b: Tensor) -> Tensor:
    """Unbiased MMD² with ``k(x, y) = (xᵀy / F + 1)³`` for two equal-size sets ``(m, F)``."""
    m, dim = a.shape
    k_aa = (a @ a.T / dim + 1) ** 3
    k_bb = (b @ b.T / dim + 1) ** 3
    k_ab = (a @ b.T / dim + 1) ** 3
    within = (k_aa.sum() - k_aa.diagonal().sum() + k_bb.sum() - k_bb.diagonal().sum()) / (m * (m - 1))
    return within - 2 * k_ab.mean()


def kid(features_a: Tensor, features_b: Tensor, *, num_subsets: int = 10, subset_size: int = 1000,
        generator: torch.Generator | None = None) -> tuple[float, float]:
    """KID: the unbiased polynomial-kernel MMD² averaged over ``num_subsets`` disjoint blocks, and its error.

    Each set is shuffled and cut into ``num_subsets`` disjoint blocks of ``m = min(subset_size, n_a // k,
    n_b // k)`` features; block ``i`` of ``a`` is compared with block ``i`` of ``b``. The block estimates are
    independent and unbiased, so the standard error ``sd(blocks) / sqrt(num_subsets)`` is honest (overlapping
    random subsets, as in the reference code, make it optimistic)."""
    a, b = features_a.detach().double().cpu(), features_b.detach().double().cpu()
    if a.dim() != 2 or b.dim() != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"features must be (n, F) with the same F; got {tuple(a.shape)}, {tuple(b.shape)}")
    if not (torch.isfinite(a).all() and torch.isfinite(b).all()):
        raise ValueError("features contain NaN or infinite values: the images (or the model's samples) are broken")
    if num_subsets < 2:
        raise ValueError(f"num_subsets must be >= 2 (its spread is the error bar), got {num_subsets}")
    m = min(subset_size, len(a) // num_subsets, len(b) // num_subsets)
    if m < 2:
        raise ValueError(f"KID needs >= 2 features per block: {len(a)} and {len(b)} features cannot fill "
                         f"{num_subsets} blocks; pass more samples or fewer subsets")
    a = a[torch.randperm(len(a), generator=generator)[:m * num_subsets]].view(num_subsets, m, -1)
    b = b[torch.randperm(len(b), generator=generator)[:m * num_subsets]].view(num_subsets, m, -1)
    values = torch.stack([_polynomial_mmd2(a[i], b[i]) for i in range(num_subsets)])
    return float(values.mean()), float(values.std()) / math.sqrt(num_subsets)
