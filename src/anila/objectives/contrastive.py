"""Maximum likelihood with MCMC negatives: the contrastive divergence loss (AniLA Algorithm 1, eq. 7).

    L(θ) = mean_i E_θ(x⁺_i) - mean_j E_θ(x⁻_j) + α · mean(E_θ(x⁺)² + E_θ(x⁻)²)

with ``x⁻`` detached (its dependence on θ through the sampler is ignored, as in the paper). Its gradient
is the Monte Carlo estimate of ``-∇θ log p_θ(data)`` (tutorial seed, eq. 3-4). The optional ``α`` term
is the IGEBM / improved-CD L2 energy regulariser.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from anila.energies.base import Energy
from anila.objectives.base import Batch, Metrics, Objective


def contrastive_divergence(energy: Energy, x_pos: Tensor, x_neg: Tensor, *,
                           l2_reg: float = 0.0) -> tuple[Tensor, dict[str, Tensor]]:
    """Return ``(loss, metrics)``; one forward pass over the concatenated batch.

    ``x_pos``: data ``(n, *event)``; ``x_neg``: sampler output ``(m, *event)``, detached here. ``metrics``
    holds detached scalars ``energy_pos``, ``energy_neg`` and ``energy_gap = energy_pos - energy_neg``.

    >>> from anila.energies import MLPEnergy
    >>> data, samples = torch.randn(100, 2), 2 * torch.randn(100, 2)
    >>> loss, metrics = contrastive_divergence(MLPEnergy(dim=2), data, samples)
    >>> sorted(metrics)
    ['energy_gap', 'energy_neg', 'energy_pos']
    """
    energies = energy(torch.cat([x_pos, x_neg.detach()]))
    e_pos, e_neg = energies[: x_pos.shape[0]], energies[x_pos.shape[0]:]
    gap = e_pos.mean() - e_neg.mean()
    loss = gap
    if l2_reg:
        loss = loss + l2_reg * (e_pos.pow(2).mean() + e_neg.pow(2).mean())
    metrics = {"energy_pos": e_pos.mean().detach(), "energy_neg": e_neg.mean().detach(),
               "energy_gap": gap.detach()}
    return loss, metrics


class ContrastiveDivergenceLoss(Objective):
    """The CD objective of a run: :func:`contrastive_divergence` of the data batch against the chains' output,
    with the L2 term ``l2_reg`` (``train.l2_reg``)."""

    needs_negatives = True

    def __init__(self, l2_reg: float = 0.0):
        self.l2_reg = l2_reg

    def loss(self, energy: nn.Module, batch: Batch, generator: torch.Generator) -> tuple[Tensor, Metrics]:
        if batch.x_neg is None:
            raise ValueError("contrastive divergence needs the chains' samples: Batch.x_neg is None")
        return contrastive_divergence(energy, batch.x_pos, batch.x_neg, l2_reg=self.l2_reg)
