"""What a finished run reports: :class:`RunSummary` (in memory), ``summary.json`` (on disk) and the run's title.

``summary.json`` is readable without the code that wrote it:

    {"run": "demo_rings_anila", "data": "rings", "sampler": "anila", "objective": "cd", "iteration": 1000,
     "metrics": {"kl_true_model": 0.052, "tv": 0.11, ...},
     "better": {"kl_true_model": "lower", "tv": "lower", ...}}

``run`` is the run folder's name, ``iteration`` the last training iteration, ``metrics`` the final values and
``better`` says for each metric which direction is better: ``"lower"``, ``"higher"``, or ``"neither"`` for a
value that describes rather than grades (the mean energies of an image run, the ``floor_*`` references of point
data: the same distances between the training and the held-out points).

>>> record = summary_record({"tv": 0.1, "energy_data": -2.0}, run="r", data="rings", sampler="mala",
...                         objective="cd", iteration=10)
>>> record["better"]
{'tv': 'lower', 'energy_data': 'neither'}
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import nn

from anila.io import atomic_write_text
from anila.samplers.registry import name_of

if TYPE_CHECKING:
    from anila.config import Config


@dataclass
class RunSummary:
    """Where a run wrote its files, and its final metrics."""

    out_dir: Path
    metrics: dict[str, float] = field(default_factory=dict)
    figures: list[Path] = field(default_factory=list)
    energy: nn.Module | None = None  # the trained weights (not the EMA copy)


def run_title(config: Config) -> str:
    """``data: sampler, K`` for MCMC training; ``data: objective (samples: sampler, K)`` otherwise."""
    sampling = f"{name_of(config.sampler)}, K={config.train.num_steps}"
    if config.objective.uses_sampler:
        return f"{config.data.name}: {sampling}"
    if config.objective.sampling is not None:
        return f"{config.data.name}: {type(config.objective).__name__} ({config.objective.sampling} samples)"
    return f"{config.data.name}: {type(config.objective).__name__} (samples: {sampling})"

#: Which direction is better, for each metric a run reports (names not listed: :func:`better`).
BETTER = {
    # toys with a known density: divergences between the true and the learned density on the grid
    "kl_true_model": "lower", "kl_model_true": "lower", "tv": "lower", "hellinger": "lower",
    # point data: sample-based distances of the samples to the held-out points
    "mmd": "lower", "energy_distance": "lower", "sliced_w2": "lower", "non_finite_samples": "lower",
    # image runs: mean energies of data and samples (lower is likelier, neither is a grade)
    "energy_data": "neither", "energy_samples": "neither",
}


def better(metric: str) -> str:
    """``"lower"``, ``"higher"`` or ``"neither"`` for ``metric``; ``floor_*`` references are ``"neither"``,
    and a name this table does not know is ``"unknown"``."""
    if metric.startswith("floor_"):
        return "neither"
    return BETTER.get(metric, "unknown")


def summary_record(metrics: Mapping[str, float], *, run: str, data: str, sampler: str, objective: str,
                   iteration: int) -> dict[str, Any]:
    """The contents of ``summary.json`` (module docstring)."""
    values = {key: float(value) for key, value in metrics.items()}
    return {"run": run, "data": data, "sampler": sampler, "objective": objective, "iteration": int(iteration),
            "metrics": values, "better": {key: better(key) for key in values}}


def write_summary(out_dir: str | Path, metrics: Mapping[str, float], config: Config, *,
                  iteration: int | None = None) -> Path:
    """Write ``out_dir/summary.json`` atomically for a run of ``config`` (a :class:`~anila.config.Config`);
    ``iteration`` defaults to ``config.train.iterations`` (a summary is written once a run is complete)."""
    out_dir = Path(out_dir)
    resolved = config.to_dict()
    record = summary_record(metrics, run=out_dir.resolve().name, data=resolved["data"]["name"],
                            sampler=resolved["sampler"]["name"], objective=resolved["objective"]["name"],
                            iteration=config.train.iterations if iteration is None else iteration)
    path = out_dir / "summary.json"
    atomic_write_text(path, json.dumps(record, indent=2) + "\n")
    return path


__all__ = ["BETTER", "RunSummary", "better", "run_title", "summary_record", "write_summary"]
