"""Training: the loop, the divergence guard, checkpoints and exact resume, figures and curves, and the
config-driven run (:func:`run_training`, what ``anila train`` calls).

>>> from anila.train import TrainSettings, make_train_state, train
>>> settings = TrainSettings(iterations=10, batch_size=100, num_steps=20, lr=1e-3)

The names that read a :class:`~anila.config.Config` are imported on first use (the config module itself imports
the loop and guard settings from here): :func:`run_training` and :class:`RunSummary` (the training run), and
:func:`load_trained_energy`, :func:`sample_settings` and :func:`draw_samples` (a trained model,
:mod:`anila.train.trained`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from anila.train.checkpoint import list_checkpoints, load_checkpoint, load_latest_checkpoint, save_checkpoint
from anila.train.distributed import DistributedContext, init_distributed
from anila.train.ema import EMA
from anila.train.guard import GuardSettings, GuardState, guarded_train
from anila.train.loop import TrainSettings, TrainState, attach_objective, make_train_state, train, train_step
from anila.train.resume import capture, restore, resume_run
from anila.train.step_check import StepRejected, check_step

if TYPE_CHECKING:
    from anila.train.curves import plot_curves, read_metrics
    from anila.train.run import run_training
    from anila.train.summary import RunSummary
    from anila.train.trained import SampleSettings, draw_samples, load_trained_energy, sample_settings

#: Names resolved on first access, and the module that defines each.
LAZY = {"RunSummary": "anila.train.summary", "SampleSettings": "anila.train.trained",
        "draw_samples": "anila.train.trained", "load_trained_energy": "anila.train.trained",
        "sample_settings": "anila.train.trained", "run_training": "anila.train.run",
        "plot_curves": "anila.train.curves", "read_metrics": "anila.train.curves"}

__all__ = [
    "EMA", "DistributedContext", "GuardSettings", "GuardState", "RunSummary", "SampleSettings", "StepRejected",
    "TrainSettings",
    "TrainState", "attach_objective", "capture", "check_step", "draw_samples", "guarded_train", "init_distributed",
    "list_checkpoints", "load_checkpoint", "load_latest_checkpoint", "load_trained_energy", "make_train_state",
    "plot_curves", "read_metrics", "restore", "resume_run", "run_training", "sample_settings", "save_checkpoint",
    "train", "train_step",
]


def __getattr__(name: str) -> Any:
    if name in LAZY:
        return getattr(importlib.import_module(LAZY[name]), name)
    raise AttributeError(f"module 'anila.train' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
