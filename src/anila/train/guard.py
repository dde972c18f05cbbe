"""The divergence guard: a bad step is never applied; the run rolls back, cools down and retries.

Every iteration, before ``optimizer.step()``, :func:`check_step` computes on the device

    ok = isfinite(loss) ∧ isfinite(E⁺) ∧ isfinite(E⁻) ∧ isfinite(‖∇θ L‖) ∧ (|E⁺ - E⁻| ≤ max_energy_gap)

(``E±`` the mean energies of the batch, when the objective reports them; the gap test only when a bound is
set) and the loop reads ``ok`` once (the iteration's one host synchronisation). A failed check raises
:class:`StepRejected` with the parameters untouched (both live in :mod:`anila.train.step_check`, which the
loop imports; this module imports the loop). :func:`guarded_train` (the ``[guard]`` config
section, :class:`GuardSettings`) then

1. rolls back to the last good checkpoint (every checkpoint holds a state whose steps all passed the check),
2. multiplies the learning rate of every optimizer (the energy's and the objective's own) and the sampler's
   ``step_size`` by ``shrink``,
3. re-seeds the loop's generator with ``seed + retry · 1_000_003`` (the retry draws other chains and batches),

and retries, logging why through ``on_event`` (the run layer appends to ``events.jsonl``). After
``max_retries`` retries in a row the next rejection stops the run with :class:`~anila.errors.TrainingDiverged`
(exit code 3). Retries count consecutive failures: once ``reset_after`` iterations in a row have passed the
check since the last rollback, the count starts again from 0 (the shrunk lr and step stay), so a long run with
rare spikes is not stopped by their total. A NaN is never replaced by a number: the step is dropped, the state
goes back.

>>> guard = GuardSettings(max_retries=3, shrink=0.5, max_energy_gap=100.0)
>>> guarded_train(state, GuardState(sampler), chains, data, settings, guard, rollback=rollback)  # doctest: +SKIP

(a complete run: ``examples/resume_an_interrupted_run.py``, or :func:`anila.train.run_training`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from anila.errors import TrainingDiverged
from anila.samplers.base import Sampler
from anila.train.loop import train
from anila.train.step_check import ENERGY_KEYS, StepRejected, check_step, gradient_norm, rejection_reason

RESEED_STRIDE = 1_000_003


@dataclass(frozen=True)
class GuardSettings:
    """The ``[guard]`` config section: ``max_retries`` rollbacks in a row (0: stop at the first bad step),
    each shrinking the learning rate and sampler step by ``shrink`` in (0, 1); ``reset_after``: good iterations
    in a row after which the count of retries starts again from 0 (0: never, the count is over the whole run);
    ``max_energy_gap``: reject a step whose ``|mean E(x⁺) - mean E(x⁻)|`` exceeds it (default: no bound)."""

    max_retries: int = 3
    shrink: float = 0.5
    max_energy_gap: float | None = None
    reset_after: int = 200

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")
        if self.reset_after < 0:
            raise ValueError(f"reset_after must be >= 0, got {self.reset_after}")
        if not 0 < self.shrink < 1:
            raise ValueError(f"shrink must be in (0, 1), got {self.shrink}")
        if self.max_energy_gap is not None and not (self.max_energy_gap > 0 and math.isfinite(self.max_energy_gap)):
            raise ValueError(f"max_energy_gap must be a finite number > 0, got {self.max_energy_gap}")


@dataclass
class GuardState:
    """What the guard changes during a run: the (possibly shrunk) sampler, the retries in a row and the
    iteration the run last went back to (``good_since``: the good stretch is counted from there)."""

    sampler: Sampler
    retries: int = 0
    good_since: int = 0


def shrink_sampler(sampler: Sampler, factor: float) -> Sampler:
    """The same sampler with ``step_size`` multiplied by ``factor``."""
    return sampler.with_step_size(sampler.step_size * factor)


def _param_groups(state) -> list[dict[str, Any]]:
    return [group for optimizer in state.optimizers() for group in optimizer.param_groups]


def guarded_train(state, guard_state: GuardState, chains, data, settings, guard: GuardSettings, *,
                  rollback: Callable[[Any], None], on_event: Callable[[dict[str, Any]], None] | None = None,
                  **train_kwargs) -> Any:
    """:func:`~anila.train.loop.train` with rollback and retries on :class:`StepRejected`.

    ``rollback(state)`` restores ``state`` from the last good checkpoint; ``guard_state.sampler`` is the
    sampler used (and shrunk); ``train_kwargs`` go to ``train``. Raises :class:`TrainingDiverged` once
    ``guard.max_retries`` retries are spent."""
    emit = on_event or (lambda event: None)
    while True:
        try:
            return train(state, guard_state.sampler, chains, data, settings, max_energy_gap=guard.max_energy_gap,
                         **train_kwargs)
        except StepRejected as exc:
            lr_before = state.optimizer.param_groups[0]["lr"]
            step_before = guard_state.sampler.step_size
            good = exc.iteration - 1 - guard_state.good_since  # iterations in a row that passed the check
            if guard.reset_after and good >= guard.reset_after and guard_state.retries:
                emit({"event": "retries_reset", "iteration": exc.iteration, "good_iterations": good,
                      "retries": guard_state.retries})
                guard_state.retries = 0
            if guard_state.retries >= guard.max_retries:
                emit({"event": "diverged", "iteration": exc.iteration, "reason": exc.reason,
                      "retries": guard_state.retries, "lr": lr_before, "step_size": step_before})
                raise TrainingDiverged(
                    f"training diverged at iteration {exc.iteration}: {exc.reason}; stopped after "
                    f"{guard_state.retries} retries in a row (guard.max_retries) at lr {lr_before:.3g} and sampler "
                    f"step {step_before:.3g}; lower train.lr or sampler.step_size, or set train.l2_reg > 0") from None
            guard_state.retries += 1
            lrs = [group["lr"] * guard.shrink for group in _param_groups(state)]
            rollback(state)  # restores every optimizer, the objective's included (new param_groups)
            guard_state.good_since = state.iteration
            for group, lr in zip(_param_groups(state), lrs, strict=True):  # the lr of every optimizer, shrunk
                group["lr"] = lr
            guard_state.sampler = shrink_sampler(guard_state.sampler, guard.shrink)
            if state.adaptation is not None:  # an adapted step: cool the adapted value down as well
                state.adaptation.scale(guard.shrink)
            seed = settings.seed + guard_state.retries * RESEED_STRIDE
            state.generator.manual_seed(seed)
            emit({"event": "step_rejected", "iteration": exc.iteration, "reason": exc.reason,
                  "retry": guard_state.retries, "rolled_back_to": state.iteration, "lr": [lr_before, lrs[0]],
                  "step_size": [step_before, guard_state.sampler.step_size],
                  "seed": seed})


__all__ = ["ENERGY_KEYS", "RESEED_STRIDE", "GuardSettings", "GuardState", "StepRejected", "check_step",
           "gradient_norm", "guarded_train", "rejection_reason", "shrink_sampler"]
