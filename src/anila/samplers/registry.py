"""The sampler registry: one line per sampler, read by the config, the CLI, the tests, the benchmark and the
studies. Adding a sampler is a file with its class and one :class:`Entry` here.

An entry holds the class and the settings the rest of the library uses without knowing the sampler:
``toy`` (hyperparameters for unit-scale 2-D targets), ``image`` (for images in ``[-1, 1]``, the paper's
low-temperature regime), ``leapfrog`` (``step_size`` is an integrator step ε, which moves like a Langevin step
``h = ε²``) and ``target_accept`` (the acceptance that step-size adaptation aims at).

>>> make("mala", langevin_step=0.01)
MALA(step_size=0.01, noise_scale=1.0, grad_clip=None)
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from anila.samplers.anila import AniLA, MetropolisAniLA
from anila.samplers.base import Sampler
from anila.samplers.hmc import HMC
from anila.samplers.langevin import MALA, Langevin, LangevinFamily, LowTemperature
from anila.samplers.psgld import MetropolisPreconditionedLangevin, PreconditionedLangevin
from anila.samplers.tempering import ParallelTempering
from anila.samplers.underdamped import UnderdampedLangevin


@dataclass(frozen=True)
class Entry:
    cls: type
    toy: dict[str, Any] = field(default_factory=dict)
    image: dict[str, Any] = field(default_factory=dict)
    leapfrog: bool = False
    target_accept: float = 0.57


REGISTRY: dict[str, Entry] = {
    "langevin": Entry(Langevin, dict(step_size=0.01), dict(step_size=1.0, noise_scale=0.01)),
    "anila": Entry(AniLA, dict(step_size=0.5, threshold=0.1, noise_scale=0.3),
                   dict(step_size=1.0, noise_scale=0.01, threshold=0.01)),
    "mala": Entry(MALA, dict(step_size=0.01), dict(step_size=1e-4)),
    "metropolis_anila": Entry(MetropolisAniLA, dict(step_size=0.5, threshold=0.1),
                              dict(step_size=1e-4, threshold=0.01)),
    "psgld": Entry(PreconditionedLangevin, dict(step_size=0.01), dict(step_size=1e-2, noise_scale=0.01)),
    "metropolis_psgld": Entry(MetropolisPreconditionedLangevin, dict(step_size=0.01), dict(step_size=1e-6)),
    "hmc": Entry(HMC, dict(step_size=0.05, num_leapfrog_steps=3), dict(step_size=1e-3, num_leapfrog_steps=5),
                 leapfrog=True, target_accept=0.65),
    "underdamped": Entry(UnderdampedLangevin, dict(step_size=0.1, friction=1.0),
                         dict(step_size=0.1, friction=1.0, noise_scale=0.01), leapfrog=True),
    "parallel_tempering": Entry(ParallelTempering, dict(step_size=0.01, num_temperatures=3, max_temperature=4.0),
                                dict(step_size=1e-4, num_temperatures=3, max_temperature=4.0)),
}

#: Sampler names used by configs and the CLI.
SAMPLERS: dict[str, type] = {name: entry.cls for name, entry in REGISTRY.items()}


def name_of(sampler: Sampler) -> str:
    """The registry name of a sampler instance (the inverse of :data:`SAMPLERS`)."""
    for name, entry in REGISTRY.items():
        if type(sampler) is entry.cls:
            return name
    raise ValueError(f"{type(sampler).__name__} is not registered in anila.samplers.registry.REGISTRY")


def make(name: str, *, langevin_step: float | None = None, image: bool = False, **overrides: Any) -> Sampler:
    """The registered sampler ``name`` with its example settings (``toy`` or ``image``), the fields of
    ``overrides`` that it has (others are ignored: a study may pass ``threshold`` to every sampler), and, with
    ``langevin_step = h``, the step size that moves like a Langevin step ``h`` (``sqrt(h)`` for integrators)."""
    entry = REGISTRY[name]
    fields = {f.name for f in dataclasses.fields(entry.cls)}
    kwargs = dict(entry.image if image else entry.toy)
    kwargs.update({k: v for k, v in overrides.items() if k in fields})
    if langevin_step is not None:
        kwargs["step_size"] = math.sqrt(langevin_step) if entry.leapfrog else langevin_step
    return entry.cls(**kwargs)


def accepts(name: str, field_name: str) -> bool:
    """Whether the registered sampler ``name`` has the hyperparameter ``field_name`` (e.g. ``threshold``)."""
    return field_name in {f.name for f in dataclasses.fields(REGISTRY[name].cls)}


def low_temperature(sampler: Sampler, temperature: float) -> LowTemperature:
    """The unadjusted Langevin step that ``sampler`` corresponds to, with its noise scaled by ``sqrt(temperature)``:
    temperature 0 is (preconditioned) gradient descent on the energy (improved CD, Figure 7).

    A Langevin-family sampler keeps its rule (AniLA's γ, pSGLD's G), step and gradient clip; any other registered
    sampler gives plain Langevin at its Langevin-equivalent step (``ε²`` for integrators) and noise 1."""
    if not temperature >= 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if isinstance(sampler, LangevinFamily):
        return LowTemperature(rule=sampler.rule, step_size=sampler.step_size,
                              noise_scale=sampler.noise_scale * math.sqrt(temperature), grad_clip=sampler.grad_clip)
    entry = REGISTRY[name_of(sampler)]
    step = sampler.step_size**2 if entry.leapfrog else sampler.step_size
    return LowTemperature(step_size=step, noise_scale=math.sqrt(temperature))
