"""End-of-run figures for point clouds of any dimension ``D`` (matplotlib, no display needed).

- ``D = 1``: the learned density ``exp(-E)`` normalised on a grid, over histograms of the data and the samples;
- ``D = 2``: the learned density beside a 2-D histogram of the data (:func:`plot_density_2d`);
- ``D > 2``: pairwise marginals (a corner plot) of a few coordinates, data and samples overlaid
  (:func:`plot_corner`).

All axes are in the data's own units: pass points and samples already mapped back with
:meth:`anila.data.points.PointCloud.to_data`, and the grid's extent per axis.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from torch import Tensor

from anila.train.figures import _save, plt

DATA_COLOUR, SAMPLE_COLOUR = "tab:blue", "tab:orange"


def _np(x: Tensor) -> np.ndarray:
    return x.detach().float().cpu().numpy()


def plot_density_1d(log_model: Tensor, extent: tuple[float, float], data: Tensor, samples: Tensor, path: Path,
                    title: str = "") -> Path:
    """Learned density on a 1-D grid (``log_model (R,)``, log-probabilities of the cells over ``extent``), over
    density-normalised histograms of ``data (n, 1)`` and ``samples (m, 1)``."""
    lo, hi = extent
    width = (hi - lo) / len(log_model)
    centres = lo + width * (np.arange(len(log_model)) + 0.5)
    fig, ax = plt.subplots(figsize=(6, 4))
    bins = np.linspace(lo, hi, 61).tolist()
    ax.hist(_np(data)[:, 0], bins=bins, density=True, alpha=0.4, color=DATA_COLOUR, label="data")
    ax.hist(_np(samples)[:, 0], bins=bins, density=True, alpha=0.4, color=SAMPLE_COLOUR, label="samples")
    ax.plot(centres, np.exp(_np(log_model)) / width, color="k", label="learned exp(-E)")
    ax.set(xlim=extent, xlabel="x")
    ax.legend(fontsize=8)
    return _save(fig, path, title)


def plot_density_2d(log_model: Tensor, extent: tuple[float, float, float, float], data: Tensor, path: Path,
                    title: str = "") -> Path:
    """Learned density ``exp(-E)`` normalised on the grid (``log_model (R, R)``, rows index y) beside a 2-D
    histogram of ``data (n, 2)``, both over ``extent = (x_lo, x_hi, y_lo, y_hi)``."""
    fig, axes = plt.subplots(1, 2, figsize=(8, 4))
    axes[0].imshow(np.exp(_np(log_model)), origin="lower", extent=extent, cmap="viridis", aspect="auto")
    axes[0].set(title="learned exp(-E)")
    pts = _np(data)
    bins = int(np.clip(np.sqrt(len(pts)), 16, 64))
    axes[1].hist2d(pts[:, 0], pts[:, 1], bins=bins, range=[extent[:2], extent[2:]], cmap="viridis")
    axes[1].set(title=f"data histogram ({len(pts)} points)")
    for ax in axes:
        ax.set(xlim=extent[:2], ylim=extent[2:], xlabel="x1", ylabel="x2")
    return _save(fig, path, title)


def plot_scatter_2d(data: Tensor, samples: Tensor, extent: tuple[float, float, float, float], path: Path,
                    title: str = "") -> Path:
    """Data beside samples, both ``(n, 2)``, over ``extent``."""
    fig, axes = plt.subplots(1, 2, figsize=(8, 4), sharex=True, sharey=True)
    for ax, points, name, colour in ((axes[0], data, "data", DATA_COLOUR),
                                     (axes[1], samples, "samples", SAMPLE_COLOUR)):
        pts = _np(points)
        ax.scatter(pts[:, 0], pts[:, 1], s=2, alpha=0.5, linewidths=0, color=colour)
        ax.set(xlim=extent[:2], ylim=extent[2:], title=name)
    return _save(fig, path, title)


def plot_corner(data: Tensor, samples: Tensor, path: Path, *, dims: Sequence[int] | None = None, max_dims: int = 4,
                title: str = "", names: Sequence[str] | None = None) -> Path:
    """Pairwise marginals of ``data (n, D)`` and ``samples (m, D)`` for coordinates ``dims`` (default: the first
    ``max_dims``): 1-D histograms on the diagonal, data below it and samples above it (scatter), one shared
    range per coordinate (the data's 0.5 %-99.5 % quantiles, widened by 20 %)."""
    d = data.shape[1]
    dims = list(dims) if dims is not None else list(range(min(d, max_dims)))
    x, y = _np(data)[:, dims], _np(samples)[:, dims]
    lo, hi = np.quantile(x, 0.005, axis=0), np.quantile(x, 0.995, axis=0)
    pad = 0.2 * np.maximum(hi - lo, 1e-6)
    lo, hi = lo - pad, hi + pad
    k = len(dims)
    fig, axes = plt.subplots(k, k, figsize=(2.2 * k + 0.6, 2.2 * k + 0.6), squeeze=False)
    labels = [names[i] if names is not None else f"x{i + 1}" for i in dims]
    for i in range(k):
        for j in range(k):
            ax = axes[i][j]
            if i == j:
                bins = np.linspace(lo[i], hi[i], 41)
                ax.hist(x[:, i], bins=bins, density=True, alpha=0.5, color=DATA_COLOUR, label="data")
                ax.hist(y[:, i], bins=bins, density=True, alpha=0.5, color=SAMPLE_COLOUR, label="samples")
                ax.set_yticks([])
                if i == 0:
                    ax.legend(fontsize=6)
            else:
                pts, colour = (x, DATA_COLOUR) if i > j else (y, SAMPLE_COLOUR)
                ax.scatter(pts[:, j], pts[:, i], s=1, alpha=0.3, linewidths=0, color=colour)
                ax.set_ylim(lo[i], hi[i])
            ax.set_xlim(lo[j], hi[j])
            ax.tick_params(labelsize=6)
            if i == k - 1:
                ax.set_xlabel(labels[j], fontsize=8)
            if j == 0 and i != 0:
                ax.set_ylabel(labels[i], fontsize=8)
    shown = f"coordinates {', '.join(labels)} of {d}" if k < d else f"all {d} coordinates"
    return _save(fig, path, f"{title}\n{shown}; below the diagonal: data, above: samples".strip())
