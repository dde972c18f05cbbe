"""Samplers: one Langevin core (Langevin, AniLA and their Metropolis-adjusted forms), HMC, and the runner.

>>> sampler = AniLA(step_size=1.0, threshold=0.01, noise_scale=0.1)
>>> x = sample_chains(sampler, energy, x0, num_steps=100, generator=g)  # doctest: +SKIP
"""

from anila.samplers.base import ChainState, Sampler, metropolis_accept
from anila.samplers.hmc import HMC
from anila.samplers.langevin import (
    GAMMA_UPDATES,
    GRANULARITIES,
    MALA,
    NOISE_SCALINGS,
    AniLA,
    Langevin,
    MetropolisAniLA,
    anila_gamma,
    langevin_step,
)
from anila.samplers.runner import ChainResult, run_chains, sample_chains

#: Sampler names used by configs and the CLI.
SAMPLERS = {"langevin": Langevin, "anila": AniLA, "mala": MALA, "metropolis_anila": MetropolisAniLA, "hmc": HMC}

__all__ = [
    "GAMMA_UPDATES", "GRANULARITIES", "HMC", "MALA", "NOISE_SCALINGS", "SAMPLERS", "AniLA", "ChainResult",
    "ChainState", "Langevin", "MetropolisAniLA", "Sampler", "anila_gamma", "langevin_step",
    "metropolis_accept", "run_chains", "sample_chains",
]
