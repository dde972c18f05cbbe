"""Chain initialisation strategies and the buffers the training loop owns."""

from anila.chains.augment import Augmentation, augment_every_n
from anila.chains.init import (
    NOISE_DISTRIBUTIONS,
    STRATEGIES,
    ChainInit,
    NoiseInit,
    PersistentChains,
    ReplayBuffer,
)

__all__ = [
    "NOISE_DISTRIBUTIONS", "STRATEGIES", "Augmentation", "ChainInit", "NoiseInit", "PersistentChains", "ReplayBuffer",
    "augment_every_n",
]
