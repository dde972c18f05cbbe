"""Runs on your own point cloud (``[data] name = "points"``): the data source and the end-of-run evaluation.

At the end of a run the folder gets

- ``points.json``: the source file, the split sizes and the standardisation (``mean``, ``scale``) that maps
  model coordinates ``z`` back to data units ``x = mean + scale * z``;
- ``samples.npy``: ``eval.num_samples`` final samples ``(n, D)`` in data units (the standardisation undone),
  from fresh chains run for :func:`sample_steps` steps;
- ``summary.json``: ``mmd``, ``energy_distance`` and ``sliced_w2`` of the samples against the held-out points
  (in model coordinates, where every coordinate has unit variance), the same three for the training points
  against the held-out ones (``floor_*``: what a perfect model scores at this sample size), and
  ``non_finite_samples``;
- figures in data units: ``density.png`` (``D <= 2``: learned density beside a histogram of the data),
  ``samples.png`` (``D = 2``: data beside samples) or ``corner.png`` (``D > 2``: pairwise marginals of the
  first four coordinates).
"""

from __future__ import annotations

from pathlib import Path

import torch

from anila.io import save_npy
from anila.metrics.density import grid_log_prob
from anila.train.summary import RunSummary, run_title, write_summary
from anila.train.trained import draw_samples, point_cloud, sample_settings

CORNER_DIMS = 4  # coordinates shown in the corner plot


LONG_RUN_STEPS = 1000  #: sampler steps from noise for the samples of a persistent / replay recipe


def sample_steps(config) -> int:
    """Sampler steps for the end-of-run samples, from fresh chain-init noise: the training K for short-run
    recipes (fresh noise chains, which is what they learn to sample from), and at least
    :data:`LONG_RUN_STEPS` for persistent and replay chains, which run only K steps per iteration from where
    they stopped, so fresh chains need many more steps to reach the model."""
    if config.chains.init in ("persistent", "replay"):
        return max(config.train.num_steps, LONG_RUN_STEPS)
    return config.train.num_steps


def point_sampler(config, device: torch.device):
    """``(data(num, generator) -> batch (num, D), cloud)`` for the config's point file."""
    cloud = point_cloud(config.data)
    return cloud.sampler(device), cloud


@torch.no_grad()
def _grid_1d(energy, bound: float, resolution: int, device) -> torch.Tensor:
    width = 2 * bound / resolution
    z = torch.linspace(-bound + width / 2, bound - width / 2, resolution, device=device)[:, None]
    values = -energy(z)
    return values - torch.logsumexp(values, dim=0)


def evaluate_points_run(config, energy: torch.nn.Module, out_dir: Path):
    """Samples, metrics against the held-out points, and figures for ``D``; writes the files listed above."""
    from anila.train.figures_points import plot_corner, plot_density_1d, plot_density_2d, plot_scatter_2d

    cloud = point_cloud(config.data)
    device = next(energy.parameters()).device
    generator = torch.Generator(device=device).manual_seed(config.train.seed + 1)
    energy.eval()
    samples = draw_samples(energy, config.eval.num_samples, sample_settings(config, num_steps=sample_steps(config)),
                           generator=generator)
    metrics = cloud.metrics(samples.cpu(), generator=torch.Generator().manual_seed(config.train.seed + 3))
    metrics.update({f"floor_{k}": v for k, v in cloud.floor(generator=torch.Generator().manual_seed(0)).items()})
    cloud.write_record(out_dir / "points.json")
    samples_data = cloud.to_data(samples.cpu())
    save_npy(out_dir / "samples.npy", samples_data.numpy())
    data = cloud.to_data(cloud.train)
    title = run_title(config)
    bound = config.eval.bound or cloud.bound()
    lo, hi = cloud.to_data(torch.full((cloud.dim,), -bound)), cloud.to_data(torch.full((cloud.dim,), bound))
    figures = []
    if cloud.dim == 1:
        log_model = _grid_1d(energy, bound, config.eval.grid_resolution, device)
        figures.append(plot_density_1d(log_model.cpu(), (float(lo[0]), float(hi[0])), data, samples_data,
                                       out_dir / "density.png", title))
    elif cloud.dim == 2:
        log_model = grid_log_prob(lambda z: -energy(z), bound, config.eval.grid_resolution, device=device)
        extent = (float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1]))
        figures.append(plot_density_2d(log_model.cpu(), extent, data, out_dir / "density.png", title))
        figures.append(plot_scatter_2d(data, samples_data, extent, out_dir / "samples.png", title))
    else:
        figures.append(plot_corner(data, samples_data, out_dir / "corner.png", max_dims=CORNER_DIMS, title=title))
    write_summary(out_dir, metrics, config)
    return RunSummary(out_dir=out_dir, metrics=metrics, figures=figures)
