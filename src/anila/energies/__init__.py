"""Energies: the protocol, analytic targets with known density, and networks for points and images."""

from anila.energies.analytic import AnalyticEnergy, Gaussian, GaussianMixture, Rings
from anila.energies.base import Energy, energy_and_grad, score
from anila.energies.conv import ClassConditionalEnergy, ConvNetEnergy, MultiScaleEnergy, ResNetEnergy
from anila.energies.networks import ACTIVATIONS, MLPEnergy, make_activation

__all__ = [
    "ACTIVATIONS", "AnalyticEnergy", "ClassConditionalEnergy", "ConvNetEnergy", "Energy", "Gaussian",
    "GaussianMixture", "MLPEnergy", "MultiScaleEnergy", "ResNetEnergy", "Rings", "energy_and_grad",
    "make_activation", "score",
]
