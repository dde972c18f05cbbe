"""Training objectives on one protocol (:mod:`anila.objectives.base`): each ``[objective]`` spec in
:data:`OBJECTIVES` builds the :class:`~anila.objectives.base.Objective` of a run, whose loss the training loop
takes. The loss functions themselves (``(loss, metrics)``) are importable for use outside the loop."""

from anila.objectives.base import Batch, LossOnly, Objective, ObjectiveContext, ObjectiveSpec
from anila.objectives.contrastive import ContrastiveDivergenceLoss, contrastive_divergence
from anila.objectives.improved_cd import ImprovedCDLoss, NearestNeighbourBank, kl_term, nearest_neighbour_entropy
from anila.objectives.jem import JEM, ClassifierEnergy, JEMLoss, jem_loss
from anila.objectives.mpf import MinimumProbabilityFlow, minimum_probability_flow
from anila.objectives.nce import GaussianNoise, LogZ, NCELoss, nce_loss, perturbation_nce
from anila.objectives.recovery import DiffusionRecoveryLikelihood, RecoveryLikelihoodLoss, recovery_likelihood_loss
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
    MultilevelDenoisingScoreMatching,
    NoiseContrastiveEstimation,
    PerturbationNCE,
    ScoreMatching,
    SlicedScoreMatching,
    name_of,
)
from anila.objectives.stein import (
    KernelSteinDiscrepancy,
    SteinCritic,
    SteinCriticLoss,
    VectorFieldCritic,
    kernel_stein_discrepancy,
    ksd_loss,
)

__all__ = [
    "AtNoiseLevel", "Batch", "ClassifierEnergy", "ContrastiveDivergence", "ContrastiveDivergenceLoss",
    "DenoisingScoreMatching", "DiffusionRecoveryLikelihood", "GaussianNoise", "ImprovedCD", "ImprovedCDLoss", "JEM",
    "JEMLoss", "KernelSteinDiscrepancy", "LogZ", "LossOnly", "MinimumProbabilityFlow",
    "MultilevelDenoisingScoreMatching", "NCELoss", "NearestNeighbourBank", "NoiseConditionalEnergy",
    "NoiseConditionalMLP", "NoiseContrastiveEstimation", "OBJECTIVES", "Objective", "ObjectiveContext",
    "ObjectiveSpec", "PerturbationNCE", "RecoveryLikelihoodLoss", "ScoreMatching", "SlicedScoreMatching",
    "SteinCritic", "SteinCriticLoss", "VectorFieldCritic", "annealed_langevin", "contrastive_divergence",
    "denoising_score_matching", "exact_score_matching", "jem_loss", "kernel_stein_discrepancy", "kl_term",
    "ksd_loss", "minimum_probability_flow", "multilevel_dsm", "name_of", "nce_loss", "nearest_neighbour_entropy",
    "perturbation_nce", "recovery_likelihood_loss", "sliced_score_matching",
]
