"""Run ``K`` transitions of any sampler: the one place that loops over steps.

The loop never synchronises with the host (no ``.item()``, no data-dependent Python branches), and
the energy's parameters receive no gradient while sampling. With ``differentiable_last_step=True`` the
final transition keeps the graph from its output to the energy's parameters (the chain before it is
detached), as improved contrastive divergence needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from anila.energies.base import Energy
from anila.samplers.base import ChainState, Sampler


@dataclass
class ChainResult:
    """What :func:`run_chains` returns.

    ``x``: final states ``(batch, *event)``; ``state``: the final :class:`ChainState` (pass it back in to
    continue the chains); ``trajectory``: ``(num_recorded, batch, *event)`` with the start at index 0
    and then every ``thin``-th state, or ``None``; ``info``: per-step diagnostics, each ``(num_steps, batch)``.
    """

    x: Tensor
    state: ChainState
    trajectory: Tensor | None = None
    info: dict[str, Tensor] = field(default_factory=dict)


def run_chains(sampler: Sampler, energy: Energy, x0: Tensor | ChainState, num_steps: int, *,
               generator: torch.Generator | None = None, record_trajectory: bool = False, thin: int = 1,
               record_info: bool = False, differentiable_last_step: bool = False) -> ChainResult:
    """Run ``num_steps`` transitions of ``sampler`` from ``x0`` (a tensor or a state to continue).

    >>> result = run_chains(MALA(step_size=0.1), Gaussian.isotropic(2), torch.zeros(8, 2), 50,
    ...                     record_info=True)                                  # doctest: +SKIP
    >>> result.info["accept_prob"].shape                                        # doctest: +SKIP
    torch.Size([50, 8])
    """
    if num_steps < 0 or thin < 1:
        raise ValueError(f"num_steps must be >= 0 and thin >= 1; got {num_steps}, {thin}")
    state = x0 if isinstance(x0, ChainState) else ChainState.at(x0.detach())
    trajectory = [state.x] if record_trajectory else None
    infos: list[dict[str, Tensor]] = []
    for k in range(num_steps):
        last = k == num_steps - 1
        create_graph = differentiable_last_step and last
        state, info = sampler.step(energy, state, generator, create_graph=create_graph,
                                   collect_info=record_info)
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
    )


def sample_chains(sampler: Sampler, energy: Energy, x0: Tensor, num_steps: int, *,
                  generator: torch.Generator | None = None, differentiable_last_step: bool = False) -> Tensor:
    """Final states after ``num_steps`` transitions: ``(batch, *event)``, same dtype and device as ``x0``.

    >>> g = torch.Generator().manual_seed(0)
    >>> x = sample_chains(AniLA(step_size=1.0, threshold=0.01, noise_scale=0.1), energy,
    ...                   torch.randn(100, 2, generator=g), num_steps=100, generator=g)  # doctest: +SKIP
    """
    return run_chains(sampler, energy, x0, num_steps, generator=generator,
                      differentiable_last_step=differentiable_last_step).x
