"""anila: energy-based models trained with MCMC, headlined by the anisotropic Langevin (AniLA) sampler.

>>> import anila, torch
>>> energy = anila.energies.MLPEnergy(dim=2, width=64, depth=4)
>>> sampler = anila.samplers.AniLA(step_size=1.0, threshold=0.01, noise_scale=0.1)
>>> x = anila.samplers.sample_chains(sampler, energy, torch.randn(100, 2), num_steps=100)
"""

from anila import chains, data, energies, metrics, objectives, samplers, train
from anila.errors import AnilaError, ConfigError, DataError, TrainingDiverged

__version__ = "0.1.0"
__all__ = [
    "AnilaError", "ConfigError", "DataError", "TrainingDiverged", "__version__", "chains", "data", "energies",
    "metrics", "objectives", "samplers", "train",
]
