"""Metrics: exact grid-normalised density divergences for 2-D models, sample-based distances and mixture
mode metrics, and MCMC diagnostics (ESS, split-R̂, acceptance rate, jump distance)."""

from anila.metrics.density import density_divergences, energy_grid_divergences, grid_log_prob, grid_points
from anila.metrics.diagnostics import (
    acceptance_rate,
    autocorrelation,
    effective_sample_size,
    mean_squared_jump,
    split_rhat,
    trajectory_to_chains,
)
from anila.metrics.samples import (
    energy_distance,
    median_heuristic,
    mmd,
    mode_metrics,
    mode_metrics_for,
    sliced_wasserstein,
)

__all__ = [
    "acceptance_rate", "autocorrelation", "density_divergences", "effective_sample_size", "energy_distance",
    "energy_grid_divergences", "grid_log_prob", "grid_points", "mean_squared_jump", "median_heuristic", "mmd",
    "mode_metrics", "mode_metrics_for", "sliced_wasserstein", "split_rhat", "trajectory_to_chains",
]
