"""Run ``K`` transitions of any sampler: the one place that loops over steps.

The loop never synchronises with the host (no ``.item()``, no data-dependent Python branches), and the energy's
parameters receive no gradient while sampling. With ``differentiable_last_step=True`` the final transition keeps
the graph from its output to the energy's parameters (the chain before it is detached), as improved contrastive
divergence needs. With ``num_warmup > 0`` and an ``adaptation`` (:class:`~anila.samplers.adapt.DualAveraging`)
the run first adapts each chain's step size toward the target acceptance for ``num_warmup`` steps (not
recorded), then runs ``num_steps`` steps with each chain's averaged step (``ChainResult.step_size``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from anila.energies.base import Energy
from anila.samplers.adapt import DualAveraging
from anila.samplers.base import ChainState, Sampler


@dataclass
class ChainResult:
    """What :func:`run_chains` returns.

    ``x``: final states ``(batch, *event)``; ``state``: the final :class:`ChainState` (pass it back in to
    continue the chains); ``trajectory``: ``(num_recorded, batch, *event)`` with the start at index 0
    and then every ``thin``-th state, or ``None``; ``info``: per-step diagnostics, each ``(num_steps, batch)``;
    ``accept_rate``: each chain's mean acceptance probability over the ``num_steps`` steps (exact samplers),
    else ``None``; ``step_size``: the step size the recorded steps used (per chain after a warm-up).
    """

    x: Tensor
    state: ChainState
    trajectory: Tensor | None = None
    info: dict[str, Tensor] = field(default_factory=dict)
    accept_rate: Tensor | None = None
    step_size: float | Tensor | None = None


def warm_up(sampler: Sampler, energy: Energy, state: ChainState, num_warmup: int, adaptation: DualAveraging,
            generator: torch.Generator | None) -> tuple[Sampler, ChainState]:
    """Adapt each chain's step size for ``num_warmup`` steps; returns the sampler with the averaged per-chain
    step sizes and the state reached."""
    if not sampler.is_exact:
        raise ValueError(f"step-size adaptation needs a Metropolis sampler (an acceptance rate to aim at); "
                         f"{type(sampler).__name__} is unadjusted: use mala, metropolis_anila, hmc, ...")
    adapted = adaptation.init(sampler.step_size, shape=state.x.shape[:1], device=state.x.device)
    for _ in range(num_warmup):
        current = sampler.with_step_size(DualAveraging.step_size(adapted))
        state, info = current.step(energy, state, generator)
        adapted = adaptation.update(adapted, info["accept_prob"])
    return sampler.with_step_size(DualAveraging.final_step_size(adapted)), state


def check_chain_start(energy: Energy, x0: Tensor) -> None:
    """``ValueError`` for a start ``x0`` of another dtype than the energy module's parameters, or with NaN / inf
    entries (one host synchronisation)."""
    parameter = next(energy.parameters(), None) if isinstance(energy, nn.Module) else None
    if parameter is not None and parameter.is_floating_point() and parameter.dtype != x0.dtype:
        raise ValueError(f"x0 is {x0.dtype} but the energy's parameters are {parameter.dtype}; pass "
                         f"x0.to({parameter.dtype}) (or convert the energy)")
    if not bool(torch.isfinite(x0).all()):
        raise ValueError(f"x0 holds {int((~torch.isfinite(x0)).sum())} NaN or infinite values: chains started "
                         "there stay NaN; start from finite points")


def run_chains(sampler: Sampler, energy: Energy, x0: Tensor | ChainState, num_steps: int, *,
               generator: torch.Generator | None = None, record_trajectory: bool = False, thin: int = 1,
               record_info: bool = False, differentiable_last_step: bool = False, num_warmup: int = 0,
               adaptation: DualAveraging | None = None, check_start: bool = True) -> ChainResult:
    """Run ``num_steps`` transitions of ``sampler`` from ``x0`` (a tensor or a state to continue).

    ``check_start`` (default): refuse, with a ``ValueError``, a start tensor that holds NaN or infinite values
    or whose dtype differs from the energy module's parameters. That costs one host synchronisation before the
    first step (none inside the loop); the training loop, whose chain starts are its own, passes ``False``.

    >>> result = run_chains(MALA(step_size=0.1), Gaussian.isotropic(2), torch.zeros(8, 2), 50,
    ...                     record_info=True)                                  # doctest: +SKIP
    >>> result.info["accept_prob"].shape                                        # doctest: +SKIP
    torch.Size([50, 8])
    """
    if num_steps < 0 or thin < 1 or num_warmup < 0:
        raise ValueError(f"num_steps and num_warmup must be >= 0 and thin >= 1; got {num_steps}, {num_warmup}, {thin}")
    if not isinstance(x0, ChainState) and not x0.is_floating_point():
        raise ValueError(f"x0 must be a floating-point tensor (chains move continuously), got {x0.dtype}; "
                         "pass x0.float() or x0.double()")
    if check_start and not isinstance(x0, ChainState):
        check_chain_start(energy, x0)
    state = x0 if isinstance(x0, ChainState) else ChainState.at(x0.detach())
    if num_warmup > 0:
        if adaptation is None:
            raise ValueError("num_warmup > 0 needs an adaptation, e.g. adaptation=DualAveraging(target_accept=0.57)")
        sampler, state = warm_up(sampler, energy, state, num_warmup, adaptation, generator)
    trajectory = [state.x] if record_trajectory else None
    infos: list[dict[str, Tensor]] = []
    accept_sum: Tensor | None = None
    for k in range(num_steps):
        last = k == num_steps - 1
        create_graph = differentiable_last_step and last
        state, info = sampler.step(energy, state, generator, create_graph=create_graph,
                                   collect_info=record_info)
        if "accept_prob" in info:
            accept = info["accept_prob"].detach()
            accept_sum = accept if accept_sum is None else accept_sum + accept
        if record_info:
            infos.append({key: value.detach() for key, value in info.items()})
        if trajectory is not None and ((k + 1) % thin == 0 or last):
            trajectory.append(state.x.detach())
    stacked = {key: torch.stack([i[key] for i in infos]) for key in infos[0]} if infos else {}
    return ChainResult(
        x=state.x,
        state=state,
        trajectory=torch.stack(trajectory) if trajectory is not None else None,
        info=stacked,
        accept_rate=accept_sum / num_steps if accept_sum is not None else None,
        step_size=sampler.step_size,
    )


def sample_chains(sampler: Sampler, energy: Energy, x0: Tensor, num_steps: int, *,
                  generator: torch.Generator | None = None, differentiable_last_step: bool = False,
                  check_start: bool = True) -> Tensor:
    """Final states after ``num_steps`` transitions: ``(batch, *event)``, same dtype and device as ``x0``
    (``check_start``: see :func:`run_chains`).

    >>> g = torch.Generator().manual_seed(0)
    >>> x = sample_chains(AniLA(step_size=1.0, threshold=0.01, noise_scale=0.1), energy,
    ...                   torch.randn(100, 2, generator=g), num_steps=100, generator=g)  # doctest: +SKIP
    """
    return run_chains(sampler, energy, x0, num_steps, generator=generator,
                      differentiable_last_step=differentiable_last_step, check_start=check_start).x
