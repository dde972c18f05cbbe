"""Metrics: exact grid-normalised density divergences for 2-D models."""

from anila.metrics.density import density_divergences, energy_grid_divergences, grid_log_prob, grid_points

__all__ = ["density_divergences", "energy_grid_divergences", "grid_log_prob", "grid_points"]
