"""Energies: the protocol, analytic targets with known density, and networks."""

from anila.energies.analytic import AnalyticEnergy, Gaussian, GaussianMixture, Rings
from anila.energies.base import Energy, energy_and_grad, score
from anila.energies.networks import ACTIVATIONS, MLPEnergy, make_activation

__all__ = [
    "ACTIVATIONS", "AnalyticEnergy", "Energy", "Gaussian", "GaussianMixture", "MLPEnergy", "Rings",
    "energy_and_grad", "make_activation", "score",
]
