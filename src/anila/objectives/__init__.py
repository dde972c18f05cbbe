"""Training objectives, each a function returning ``(loss, metrics)``; :mod:`anila.objectives.select` wraps them
as the small configs that ``[objective]`` builds."""

from anila.objectives.contrastive import contrastive_divergence
from anila.objectives.improved_cd import NearestNeighbourBank, kl_term, nearest_neighbour_entropy
from anila.objectives.nce import GaussianNoise, nce_loss, perturbation_nce
from anila.objectives.score_matching import (
    NoiseConditionalEnergy,
    NoiseConditionalMLP,
    annealed_langevin,
    denoising_score_matching,
    exact_score_matching,
    multilevel_dsm,
    sliced_score_matching,
)
from anila.objectives.select import (
    OBJECTIVES,
    AtNoiseLevel,
    ContrastiveDivergence,
    DenoisingScoreMatching,
    ImprovedCD,
    LogZEnergy,
    MultilevelDenoisingScoreMatching,
    NoiseContrastiveEstimation,
    PerturbationNCE,
    ScoreMatching,
    SlicedScoreMatching,
    bind_objective,
)

__all__ = [
    "OBJECTIVES", "AtNoiseLevel", "ContrastiveDivergence", "DenoisingScoreMatching", "GaussianNoise", "ImprovedCD",
    "LogZEnergy", "MultilevelDenoisingScoreMatching", "NearestNeighbourBank", "NoiseConditionalEnergy",
    "NoiseConditionalMLP", "NoiseContrastiveEstimation", "PerturbationNCE", "ScoreMatching", "SlicedScoreMatching",
    "annealed_langevin", "bind_objective", "contrastive_divergence", "denoising_score_matching",
    "exact_score_matching", "kl_term", "multilevel_dsm", "nce_loss", "nearest_neighbour_entropy", "perturbation_nce",
    "sliced_score_matching",
]
