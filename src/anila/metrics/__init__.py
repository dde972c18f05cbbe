"""Metrics: exact grid-normalised density divergences for 2-D models, sample-based distances and mixture
mode metrics, MCMC diagnostics (ESS, split-R̂, acceptance rate, jump distance), ``log Z`` and test
log-likelihood by annealed importance sampling, FID / KID and their feature extractors, and OOD scores."""

from anila.metrics.ais import AISResult, UniformBox, ais_log_partition, log_likelihood, sigmoid_schedule
from anila.metrics.density import (
    cell_log_prob,
    density_divergences,
    energy_grid_divergences,
    grid_log_prob,
    grid_points,
    histogram_log_prob,
    outside_fraction,
    sample_divergences,
)
from anila.metrics.diagnostics import (
    acceptance_rate,
    autocorrelation,
    effective_sample_size,
    mean_squared_jump,
    split_rhat,
    trajectory_to_chains,
)
from anila.metrics.features import DomainClassifier, InceptionFeatures, extract, train_domain_classifier
from anila.metrics.fid import feature_statistics, fid, frechet_distance, kid
from anila.metrics.ood import auroc, ood_scores
from anila.metrics.samples import (
    energy_distance,
    median_heuristic,
    mmd,
    mode_metrics,
    mode_metrics_for,
    sliced_wasserstein,
)

__all__ = [
    "AISResult", "DomainClassifier", "InceptionFeatures", "UniformBox", "acceptance_rate", "ais_log_partition",
    "auroc", "autocorrelation", "cell_log_prob", "density_divergences", "effective_sample_size", "energy_distance",
    "energy_grid_divergences", "extract", "feature_statistics", "fid", "frechet_distance", "grid_log_prob",
    "grid_points", "histogram_log_prob", "kid", "log_likelihood", "mean_squared_jump", "median_heuristic", "mmd",
    "mode_metrics", "mode_metrics_for", "ood_scores", "outside_fraction", "sample_divergences", "sigmoid_schedule",
    "sliced_wasserstein", "split_rhat", "train_domain_classifier", "trajectory_to_chains",
]
