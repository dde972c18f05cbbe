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
