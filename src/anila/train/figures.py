"""End-of-run figures for 2-D models (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from torch import Tensor  # noqa: E402

from anila.io import save_figure  # noqa: E402


def _save(fig: plt.Figure, path: Path, title: str) -> Path:
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    try:
        save_figure(fig, path, dpi=120)  # atomic, like every output file
    finally:
        plt.close(fig)
    return path


def plot_samples(data: Tensor, samples: Tensor, bound: float, path: Path, title: str = "") -> Path:
    """Side-by-side scatter of data and model samples, both ``(n, 2)``."""
    fig, axes = plt.subplots(1, 2, figsize=(8, 4), sharex=True, sharey=True)
    for ax, points, name in ((axes[0], data, "data"), (axes[1], samples, "samples")):
        pts = points.detach().cpu().numpy()
        ax.scatter(pts[:, 0], pts[:, 1], s=2, alpha=0.5, linewidths=0)
        ax.set(xlim=(-bound, bound), ylim=(-bound, bound), aspect="equal", title=name)
    return _save(fig, path, title)


def plot_densities(log_model: Tensor, log_true: Tensor | None, bound: float, path: Path, title: str = "") -> Path:
    """Learned density ``exp(-E)`` normalised on the grid, beside the true one when known; ``(R, R)`` each."""
    panels = [("learned exp(-E)", log_model)] + ([("true density", log_true)] if log_true is not None else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 4), squeeze=False)
    for ax, (name, log_p) in zip(axes[0], panels, strict=True):
        ax.imshow(np.exp(log_p.detach().cpu().numpy()), origin="lower", extent=(-bound, bound, -bound, bound),
                  cmap="viridis")
        ax.set(title=name, aspect="equal")
    return _save(fig, path, title)


def image_grid(images: Tensor, nrow: int | None = None, pad: int = 1) -> np.ndarray:
    """Tile ``(n, C, H, W)`` images in [-1, 1] into one ``(rows·(H+pad)+pad, cols·(W+pad)+pad, C)`` array in [0, 1]."""
    x = ((images.detach().float().clamp(-1, 1) + 1) / 2).cpu().numpy()
    n, c, h, w = x.shape
    cols = nrow or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    grid = np.ones((rows * (h + pad) + pad, cols * (w + pad) + pad, c), dtype=np.float32)
    for i in range(n):
        r, k = divmod(i, cols)
        grid[pad + r * (h + pad): pad + r * (h + pad) + h, pad + k * (w + pad): pad + k * (w + pad) + w] = (
            x[i].transpose(1, 2, 0))
    return grid


def plot_image_grid(images: Tensor, path: Path, title: str = "", nrow: int | None = None) -> Path:
    """Save a grid of ``(n, C, H, W)`` images in [-1, 1] as a PNG (grey for one channel)."""
    grid = image_grid(images, nrow)
    fig, ax = plt.subplots(figsize=(6, 6 * grid.shape[0] / grid.shape[1]))
    ax.imshow(grid[..., 0] if grid.shape[2] == 1 else grid, cmap="gray" if grid.shape[2] == 1 else None,
              vmin=0, vmax=1, interpolation="nearest")
    ax.axis("off")
    return _save(fig, path, title)


def plot_points(points: Tensor, bound: float, path: Path, title: str = "") -> Path:
    """Scatter of ``(n, 2)`` points in the square ``[-bound, bound]²``."""
    fig, ax = plt.subplots(figsize=(4, 4))
    pts = points.detach().cpu().numpy()
    ax.scatter(pts[:, 0], pts[:, 1], s=2, alpha=0.5, linewidths=0)
    ax.set(xlim=(-bound, bound), ylim=(-bound, bound), aspect="equal")
    return _save(fig, path, title)


def plot_drawn_samples(samples: Tensor, path: Path, title: str = "", *, bound: float | None = None,
                       max_images: int = 64, max_dims: int = 4) -> Path:
    """The figure of ``anila sample --figure``: the samples alone, drawn as their shape suits.

    ``(n, C, H, W)`` images in [-1, 1]: a grid of the first ``max_images``; ``(n, 1)``: a histogram; ``(n, 2)``:
    a scatter (over ``[-bound, bound]²`` when ``bound`` is given); ``(n, D > 2)``: the pairwise scatters of the
    first ``max_dims`` coordinates with their histograms on the diagonal."""
    if samples.dim() == 4:
        return plot_image_grid(samples[:max_images], path, title)
    if samples.dim() != 2:
        raise ValueError(f"samples must be (n, C, H, W) images or (n, D) points, got shape {tuple(samples.shape)}")
    pts = samples.detach().float().cpu().numpy()
    d = min(pts.shape[1], max_dims)
    if d == 1:
        fig, ax = plt.subplots(figsize=(5, 4))
        ax.hist(pts[:, 0], bins=60, range=(-bound, bound) if bound else None, density=True, alpha=0.7)
        ax.set(xlabel="x", title=f"{len(pts)} samples")
        return _save(fig, path, title)
    if d == 2 and pts.shape[1] == 2:
        fig, ax = plt.subplots(figsize=(4.5, 4.5))
        ax.scatter(pts[:, 0], pts[:, 1], s=2, alpha=0.5, linewidths=0)
        if bound:
            ax.set(xlim=(-bound, bound), ylim=(-bound, bound))
        ax.set(aspect="equal", title=f"{len(pts)} samples")
        return _save(fig, path, title)
    fig, axes = plt.subplots(d, d, figsize=(2.2 * d + 0.6, 2.2 * d + 0.6), squeeze=False)
    for i in range(d):
        for j in range(d):
            ax = axes[i][j]
            if i == j:
                ax.hist(pts[:, i], bins=40, density=True, alpha=0.7)
                ax.set_yticks([])
            else:
                ax.scatter(pts[:, j], pts[:, i], s=1, alpha=0.3, linewidths=0)
            ax.tick_params(labelsize=6)
            if i == d - 1:
                ax.set_xlabel(f"x{j + 1}", fontsize=8)
            if j == 0 and i != 0:
                ax.set_ylabel(f"x{i + 1}", fontsize=8)
    shown = f"coordinates 1-{d} of {pts.shape[1]}" if d < pts.shape[1] else f"all {d} coordinates"
    return _save(fig, path, f"{title}\n{len(pts)} samples, {shown}".strip())


#: What ``anila sample --figure`` can write, by suffix (matplotlib's raster and vector formats).
FIGURE_FORMATS = ("png", "pdf", "svg", "jpg", "jpeg")
