"""The check a training step must pass before the optimizers apply it (the divergence guard's first half).

On the device, once per iteration:

    ok = isfinite(loss) ∧ isfinite(E⁺) ∧ isfinite(E⁻) ∧ isfinite(‖∇θ L‖) ∧ (|E⁺ - E⁻| ≤ max_energy_gap)

(``E±`` the mean energies of the batch, when the objective reports them; the gap test only when a bound is
set). The loop (:mod:`anila.train.loop`) reads ``ok`` and raises :class:`StepRejected` on a failure with the
parameters untouched; :func:`~anila.train.guard.guarded_train`, above the loop, rolls back and retries.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from anila.errors import TrainingDiverged
from anila.train.distributed import current

ENERGY_KEYS = ("energy_pos", "energy_neg")


class StepRejected(TrainingDiverged):
    """A step failed :func:`check_step`; it was not applied."""

    def __init__(self, iteration: int, reason: str):
        self.iteration, self.reason = iteration, reason
        super().__init__(f"training diverged at iteration {iteration}: {reason}; the step was not applied")


def gradient_norm(parameters: Sequence[Tensor]) -> Tensor:
    """Global L2 norm of the parameters' gradients, on their device (no synchronisation)."""
    grads = [p.grad.detach() for p in parameters if p.grad is not None]
    if not grads:
        return torch.zeros(())
    total_norm = getattr(torch.nn.utils, "get_total_norm", None)  # torch >= 2.6: fused per device and dtype
    if total_norm is not None:
        return total_norm(grads)
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.float()) for g in grads]))


def check_step(loss: Tensor, metrics: dict[str, Tensor], grad_norm: Tensor,
               max_energy_gap: float | None = None) -> Tensor:
    """A 0-d bool tensor: the step may be applied (see the module docstring); AND-ed over the ranks of a
    multi-process run."""
    values = [loss.detach().float().reshape(()), grad_norm.detach().float().reshape(()).to(loss.device)]
    values += [metrics[k].detach().float().reshape(()) for k in ENERGY_KEYS if k in metrics]
    ok = torch.isfinite(torch.stack(values)).all()
    if max_energy_gap is not None and all(k in metrics for k in ENERGY_KEYS):
        gap = (metrics["energy_pos"] - metrics["energy_neg"]).abs()
        ok = ok & (gap <= max_energy_gap)
    return current().all_agree(ok)  # several processes: every rank must accept (a no-op in one process)


def rejection_reason(loss: Tensor, metrics: dict[str, Tensor], grad_norm: Tensor,
                     max_energy_gap: float | None = None) -> str:
    """Why :func:`check_step` failed, in words (reads the values: call it only after a failure)."""
    reasons = []
    if not torch.isfinite(loss).all():
        reasons.append(f"the loss is {loss.item()}")
    for key in ENERGY_KEYS:
        if key in metrics and not torch.isfinite(metrics[key]).all():
            reasons.append(f"the mean {'data' if key == 'energy_pos' else 'sample'} energy is {metrics[key].item()}")
    if not torch.isfinite(grad_norm).all():
        reasons.append(f"the parameter gradient norm is {grad_norm.item()}")
    if not reasons and max_energy_gap is not None:
        gap = (metrics["energy_pos"] - metrics["energy_neg"]).abs().item()
        reasons.append(f"the energy gap |E(x+) - E(x-)| = {gap:.4g} exceeds guard.max_energy_gap = {max_energy_gap}")
    return ", ".join(reasons) or "the step check failed"


__all__ = ["ENERGY_KEYS", "StepRejected", "check_step", "gradient_norm", "rejection_reason"]
