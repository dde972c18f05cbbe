"""anila: energy-based models trained with MCMC, headlined by the anisotropic Langevin (AniLA) sampler.

>>> import anila, torch
>>> energy = anila.energies.MLPEnergy(dim=2, width=64, depth=4)
>>> sampler = anila.samplers.AniLA(step_size=1.0, threshold=0.01, noise_scale=0.1)
>>> x = anila.samplers.sample_chains(sampler, energy, torch.randn(100, 2), num_steps=100)
>>> x.shape
torch.Size([100, 2])

The subpackages (``anila.energies``, ``anila.samplers``, ...) are imported on first use, so that
``import anila`` and the command line's ``--help`` start without loading torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from anila.errors import AnilaError, ConfigError, DataError, TrainingDiverged

SUBPACKAGES = ("chains", "data", "energies", "metrics", "objectives", "samplers", "train")

if TYPE_CHECKING:
    from anila import chains, data, energies, metrics, objectives, samplers, train

    __version__: str

__all__ = [
    "AnilaError", "ConfigError", "DataError", "TrainingDiverged", "__version__", "chains", "data", "energies",
    "metrics", "objectives", "samplers", "train",
]


def package_version() -> str:
    """The installed package's version, from its metadata (written once, in ``pyproject.toml``)."""
    from importlib.metadata import PackageNotFoundError, version  # about 0.1 s: only when asked

    try:
        return version("anila")
    except PackageNotFoundError:  # a source tree on sys.path that was never installed
        return "0+unknown"


def __getattr__(name: str) -> Any:
    """Import a subpackage on first access (``anila.samplers`` works after a bare ``import anila``); read
    ``__version__`` from the package metadata on first access."""
    if name == "__version__":
        globals()["__version__"] = package_version()
        return globals()["__version__"]
    if name in SUBPACKAGES:
        return importlib.import_module(f"anila.{name}")
    raise AttributeError(f"module 'anila' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
