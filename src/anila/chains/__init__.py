"""Chain initialisation strategies and the buffers the training loop owns."""

from anila.chains.init import (
    NOISE_DISTRIBUTIONS,
    STRATEGIES,
    ChainInit,
    NoiseInit,
    PersistentChains,
    ReplayBuffer,
)

__all__ = ["NOISE_DISTRIBUTIONS", "STRATEGIES", "ChainInit", "NoiseInit", "PersistentChains", "ReplayBuffer"]
