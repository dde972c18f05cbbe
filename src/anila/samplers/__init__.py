"""Samplers built from parts: step-size rules, one Langevin proposal, integrators, one Metropolis-Hastings
correction, step-size adaptation, and the runner. ``REGISTRY`` / ``SAMPLERS`` name every sampler.

>>> sampler = AniLA(step_size=1.0, threshold=0.01, noise_scale=0.1)
>>> x = sample_chains(sampler, energy, x0, num_steps=100, generator=g)  # doctest: +SKIP
"""

from anila.samplers.adapt import AdaptiveStepSize, DualAveraging, DualAveragingState
from anila.samplers.anila import AniLA, MetropolisAniLA
from anila.samplers.base import ChainState, EvaluatedState, Sampler
from anila.samplers.hmc import HMC
from anila.samplers.langevin import MALA, Langevin, LangevinFamily, LowTemperature
from anila.samplers.metropolis import metropolis_accept, metropolis_hastings
from anila.samplers.proposal import adjusted_step, unadjusted_step
from anila.samplers.psgld import MetropolisPreconditionedLangevin, PreconditionedLangevin
from anila.samplers.registry import REGISTRY, SAMPLERS, Entry, accepts, low_temperature, make, name_of
from anila.samplers.rules import (
    GAMMA_UPDATES,
    GRANULARITIES,
    NOISE_SCALINGS,
    AniLAGamma,
    DiagonalMass,
    Identity,
    RMSPreconditioner,
    StepSizeRule,
    anila_gamma,
)
from anila.samplers.runner import ChainResult, run_chains, sample_chains
from anila.samplers.tempering import ParallelTempering
from anila.samplers.underdamped import UnderdampedLangevin

__all__ = [
    "AdaptiveStepSize", "AniLA", "AniLAGamma", "ChainResult", "ChainState", "DiagonalMass", "DualAveraging",
    "DualAveragingState", "Entry", "EvaluatedState", "GAMMA_UPDATES", "GRANULARITIES", "HMC", "Identity", "Langevin",
    "LangevinFamily", "LowTemperature", "MALA", "MetropolisAniLA", "MetropolisPreconditionedLangevin",
    "NOISE_SCALINGS", "ParallelTempering", "PreconditionedLangevin", "REGISTRY", "RMSPreconditioner", "SAMPLERS",
    "Sampler", "StepSizeRule", "UnderdampedLangevin", "accepts", "adjusted_step", "anila_gamma", "low_temperature",
    "make", "metropolis_accept", "metropolis_hastings", "name_of", "run_chains", "sample_chains", "unadjusted_step"
]
