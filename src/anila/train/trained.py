"""A trained model: load it from a checkpoint, and draw samples from it.

What ``anila sample`` and the subcommands (``eval``, ``ood``, ``explore``, ``compose``) need of a run, without
the training-run module (:mod:`anila.train.run`):

- :func:`load_trained_energy` rebuilds ``(config, energy)`` from a checkpoint file or run folder;
- :func:`draw_samples` / :func:`iter_samples` run fresh chains with explicit :class:`SampleSettings` (the sampler,
  its number of steps, the event shape, the noise the chains start from, or the objective's own procedure);
  :func:`sample_settings` reads them off a config, the one place that does;
- :func:`write_samples` streams samples into a ``.npy`` file, atomically.

>>> config, energy = load_trained_energy("runs/demo/demo_rings_anila")  # doctest: +SKIP
>>> g = torch.Generator().manual_seed(0)
>>> x = draw_samples(energy, 1000, sample_settings(config), generator=g)  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import math
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from anila.chains.augment import Augmentation, augment_every_n
from anila.chains.init import NoiseInit
from anila.config import Config, DataConfig, config_from_dict
from anila.data.points import PointCloud
from anila.errors import ConfigError, DataError, OutputError
from anila.io import NpyWriter
from anila.samplers.adapt import AdaptiveStepSize
from anila.samplers.base import Sampler
from anila.samplers.runner import sample_chains
from anila.train.checkpoint import load_checkpoint

MAX_SAMPLES = 10_000_000  #: ``write_samples(num=...)`` (``anila sample --num``) at most
MAX_SAMPLE_STEPS = 1_000_000  #: ``num_steps`` of ``write_samples`` (``anila sample --steps``) at most
SAMPLE_BATCH_VALUES = 2**22  #: numbers per batch of :func:`write_samples` (4M floats, 16 MB per chain state)

#: An objective's own sampling procedure: ``(energy, x0, generator) -> samples`` (annealed Langevin, ...).
OwnSampler = Callable[[nn.Module, Tensor, torch.Generator | None], Tensor]


@dataclass(frozen=True)
class SampleSettings:
    """How fresh samples of a trained energy are drawn: chains ``(n, *event_shape)`` started from ``noise`` and
    run ``num_steps`` steps of ``sampler``, or, when ``own`` is set, the objective's own procedure from the same
    starts (a noise-conditional model's annealed Langevin)."""

    sampler: Sampler
    num_steps: int
    event_shape: tuple[int, ...]
    noise: NoiseInit
    own: OwnSampler | None = None


def sample_settings(config: Config, *, num_steps: int | None = None) -> SampleSettings:
    """The :class:`SampleSettings` of a run's config; ``num_steps`` defaults to the training ``K``."""
    objective = config.objective
    return SampleSettings(sampler=config.sampler, num_steps=config.train.num_steps if num_steps is None else num_steps,
                          event_shape=config.data.event_shape, noise=config.chains.noise_init(),
                          own=objective.sample if objective.sampling is not None else None)


def iter_samples(energy: nn.Module, num: int, settings: SampleSettings, *, generator: torch.Generator | None = None,
                 batch_size: int = 10000, augment_every: int = 0) -> Iterator[Tensor]:
    """The batches of :func:`draw_samples`, one at a time (``(n, *event)`` each, ``n <= batch_size``)."""
    device = next(energy.parameters()).device
    for start in range(0, num, batch_size):
        n = min(batch_size, num - start)
        x0 = settings.noise.sample(n, settings.event_shape, generator=generator, device=device)
        if settings.own is not None:
            yield settings.own(energy, x0, generator).detach()
        elif augment_every > 0:
            yield augment_every_n(settings.sampler, energy, x0, settings.num_steps, augment_every, Augmentation(),
                                  generator).detach()
        else:
            yield sample_chains(settings.sampler, energy, x0, settings.num_steps, generator=generator).detach()


def draw_samples(energy: nn.Module, num: int, settings: SampleSettings, *, generator: torch.Generator | None = None,
                 batch_size: int = 10000, augment_every: int = 0) -> Tensor:
    """``num`` samples ``(num, *event)`` from fresh chains (:class:`SampleSettings`), ``batch_size`` at a time.

    ``augment_every`` > 0: improved CD's sampling Algorithm 2, augmentation transitions every that many steps
    (images only)."""
    return torch.cat(list(iter_samples(energy, num, settings, generator=generator, batch_size=batch_size,
                                       augment_every=augment_every)))


def point_cloud(data: DataConfig) -> PointCloud:
    """The :class:`~anila.data.points.PointCloud` of a ``[data]`` section with ``name = "points"``."""
    if data.path is None:
        raise ValueError(f"data set {data.name!r} has no point file (data.path)")
    return PointCloud.from_file(data.path, key=data.key, standardize=data.standardize, holdout=data.holdout)


def data_units(data: DataConfig) -> Callable[[Tensor], Tensor] | None:
    """The map from model coordinates back to the data's units: point data trains on standardised points;
    ``None`` (the identity) for every other data set."""
    return point_cloud(data).to_data if data.name == "points" else None


def write_samples(energy: nn.Module, num: int, out: str | Path, settings: SampleSettings, *,
                  generator: torch.Generator | None = None, augment_every: int = 0,
                  to_data: Callable[[Tensor], Tensor] | None = None, progress: bool | None = None) -> tuple[int, ...]:
    """Draw ``num`` samples batch by batch into the ``.npy`` file ``out``, renamed into place once complete
    (:class:`~anila.io.NpyWriter`): memory holds one batch, a failure leaves any previous ``out`` intact.
    ``to_data`` maps each batch to the units written (:func:`data_units`). Checks ``num`` and
    ``settings.num_steps`` against :data:`MAX_SAMPLES` / :data:`MAX_SAMPLE_STEPS` (:class:`ValueError`) and the
    file's size against the free disk space first. ``progress``: a bar over the batches (default: when stderr
    is a terminal). Returns the file's shape."""
    from tqdm.auto import tqdm

    if not 1 <= num <= MAX_SAMPLES:
        raise ValueError(f"num must be in [1, {MAX_SAMPLES}], got {num}")
    if not 0 <= settings.num_steps <= MAX_SAMPLE_STEPS:
        raise ValueError(f"num_steps must be in [0, {MAX_SAMPLE_STEPS}], got {settings.num_steps}")
    out = Path(out)
    event = settings.event_shape
    values = math.prod(event)
    size = num * values * 4
    folder = next((p for p in (out.parent, *out.parent.parents) if p.is_dir()), Path("."))
    free = shutil.disk_usage(folder).free
    if size > free:
        raise OutputError(f"{out}: {num} samples of shape {event} need {size / 2**20:.1f} MiB, {folder} has "
                          f"{free / 2**20:.1f} MiB free; lower the number of samples or write elsewhere")
    batch = max(1, min(10000, SAMPLE_BATCH_VALUES // values))
    batches = iter_samples(energy, num, settings, generator=generator, batch_size=batch, augment_every=augment_every)
    with NpyWriter(out, (num, *event)) as writer, tqdm(total=num, desc="sample", unit="samples",
                                                       disable=None if progress is None else not progress) as bar:
        for samples in batches:
            samples = samples.cpu() if to_data is None else to_data(samples.cpu())
            writer.write(samples.numpy())
            bar.update(len(samples))
    return (num, *event)


def adapted_config(config: Config, adaptation: AdaptiveStepSize | None) -> Config:
    """The config whose sampler uses the step size adapted during training (``[sampler] adapt = true``)."""
    if adaptation is None:
        return config
    return dataclasses.replace(config, sampler=config.sampler.with_step_size(float(adaptation.step_size())))


def load_trained_energy(checkpoint: str | Path) -> tuple[Config, nn.Module]:
    """Rebuild the config and the trained energy from a checkpoint file or run folder.

    The energy is in eval mode, with the EMA weights when the run kept them; the config's sampler has the step
    size adapted in training (``[sampler] adapt = true``). A sidecar without a config, a config that does not
    validate, or weights that do not fit the model the config builds (e.g. another width) raise
    :class:`~anila.errors.DataError` naming the checkpoint."""
    groups, meta = load_checkpoint(checkpoint)
    if not isinstance(meta.get("config"), dict):
        raise DataError(f"checkpoint {checkpoint} has no config in its sidecar, so its model cannot be rebuilt; "
                        "use a checkpoint written by anila train")
    try:
        config = config_from_dict(meta["config"])
    except ConfigError as exc:
        raise DataError(f"checkpoint {checkpoint}: its config is invalid ({exc})") from None
    if config.adaptation is not None and "adaptation" in groups:  # sample with the step adapted in training
        adaptation = AdaptiveStepSize(config.adaptation, 1.0)
        adaptation.load_state_dict(groups["adaptation"])
        config = adapted_config(config, adaptation)
    energy = config.build_energy()
    weights = groups.get("ema") or groups.get("model")  # sample with the EMA weights when kept
    if weights is None:
        raise DataError(f"checkpoint {checkpoint} holds no model weights (model.* tensors)")
    try:
        energy.load_state_dict(weights)
    except RuntimeError as exc:
        first = str(exc).splitlines()[1].strip() if len(str(exc).splitlines()) > 1 else str(exc)
        raise DataError(f"checkpoint {checkpoint}: its weights do not fit the model of its config ({first})"
                        ) from None
    energy.eval()
    return config, energy


__all__ = ["MAX_SAMPLES", "MAX_SAMPLE_STEPS", "SampleSettings", "adapted_config", "data_units", "draw_samples",
           "iter_samples", "load_trained_energy", "point_cloud", "sample_settings", "write_samples"]
