"""``anila compose``: sample the conjunction, disjunction or negation of independently trained energies.

The composed energy (:mod:`anila.energies.compose`) is sampled from fresh chains with the first checkpoint's
chain initialisation and sampler (or the sampler named on the command line), and the samples are written as
``samples.npy`` ``(num, *event)``, a figure ``samples.png`` (image grid, or a scatter for 2-D toys) and
``compose.json`` (what was composed, with which sampler).

>>> compose_checkpoints(["runs/a", "runs/b"], "and", "runs/a_and_b")   # doctest: +SKIP
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from anila.commands.common import with_sampler
from anila.config import Config
from anila.data.toy import toy_dataset
from anila.energies.compose import compose
from anila.errors import DataError
from anila.io import atomic_write_text, save_npy
from anila.samplers.registry import name_of
from anila.train.figures import plot_image_grid, plot_points
from anila.train.trained import draw_samples, load_trained_energy, sample_settings


def _load(checkpoints: list[str | Path]) -> tuple[list[Config], list[torch.nn.Module]]:
    configs, energies = [], []
    for path in checkpoints:
        config, energy = load_trained_energy(path)
        if config.objective.noise_conditional:
            raise DataError(f"{path}: a noise-conditional model (multilevel_dsm) has no single energy to compose")
        configs.append(config)
        energies.append(energy)
    shapes = {c.data.event_shape for c in configs}
    if len(shapes) > 1:
        raise DataError(f"the checkpoints model different sample shapes {sorted(shapes)}; compose models trained "
                        "on data of the same shape")
    return configs, energies


def compose_checkpoints(checkpoints: list[str | Path], operation: str, out_dir: str | Path, *, alpha: float = 0.5,
                        sampler: str | None = None, overrides: list[str] | tuple[str, ...] = (), num: int = 64,
                        num_steps: int | None = None, seed: int = 0, normalise: bool = False,
                        ais_temperatures: int = 300) -> torch.Tensor:
    """Sample ``operation`` (``and`` / ``or`` / ``not``) of the checkpoints' energies; returns the samples.

    ``normalise`` (``or`` only): estimate every model's ``log Z`` on its box by AIS
    (:func:`anila.commands.evaluate.model_log_partition`) and mix the models with equal weights."""
    if num < 1:
        raise DataError(f"--num must be >= 1, got {num}")
    if normalise and operation != "or":
        raise DataError("--normalise applies to --op or only (it shifts 'and' and 'not' by a constant)")
    configs, energies = _load(checkpoints)
    generator = torch.Generator().manual_seed(seed)
    log_partitions = None
    if normalise:
        from anila.commands.evaluate import model_log_partition

        results = [model_log_partition(c, e, ais_temperatures=ais_temperatures, generator=generator)
                   for c, e in zip(configs, energies, strict=True)]
        log_partitions = [r.log_z for r in results]
    try:
        energy = compose(operation, energies, alpha=alpha, log_partitions=log_partitions)
    except ValueError as exc:
        raise DataError(str(exc)) from None
    config = with_sampler(configs[0], sampler, overrides)
    samples = draw_samples(energy, num, sample_settings(config, num_steps=num_steps), generator=generator)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_npy(out_dir / "samples.npy", samples.cpu().numpy())
    names = f" {operation} ".join(Path(c).stem for c in checkpoints)
    title = f"{names}: {name_of(config.sampler)}"
    if config.data.is_toy:
        plot_points(samples, toy_dataset(config.data.name).bound, out_dir / "samples.png", title)
    else:
        plot_image_grid(samples, out_dir / "samples.png", title)
    steps = config.train.num_steps if num_steps is None else num_steps
    record = {"checkpoints": [str(c) for c in checkpoints], "operation": operation, "num": num, "num_steps": steps,
              "seed": seed, "sampler": config.to_dict()["sampler"], "nonfinite_samples":
              int((~torch.isfinite(samples.flatten(1))).any(1).sum())}
    if operation == "not":
        record["alpha"] = alpha
    if log_partitions is not None:
        record.update(log_partitions=log_partitions, log_partition_stderrs=[r.stderr for r in results],
                      ais_temperatures=ais_temperatures)
    atomic_write_text(out_dir / "compose.json", json.dumps(record, indent=2))
    return samples
