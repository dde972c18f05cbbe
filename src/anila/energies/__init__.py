"""Energies: the protocol, analytic targets with known density, networks for points and images, and the
and / or / not composition of trained energies."""

from anila.energies.analytic import AnalyticEnergy, Gaussian, GaussianMixture, Rings
from anila.energies.base import Energy, energy_and_grad, score
from anila.energies.compose import OPERATIONS, Conjunction, Disjunction, Negation, compose
from anila.energies.conv import ClassConditionalEnergy, ConvNetEnergy, MultiScaleEnergy, ResNetEnergy
from anila.energies.networks import ACTIVATIONS, MLPEnergy, make_activation
from anila.energies.noise_conditional import NoiseConditionalConvNet

__all__ = [
    "ACTIVATIONS", "OPERATIONS", "AnalyticEnergy", "ClassConditionalEnergy", "Conjunction", "ConvNetEnergy",
    "Disjunction", "Energy", "Gaussian", "GaussianMixture", "MLPEnergy", "MultiScaleEnergy", "Negation",
    "NoiseConditionalConvNet", "ResNetEnergy", "Rings", "compose", "energy_and_grad", "make_activation", "score",
]
