"""Cooperative learning of an energy and a generator (Xie, Lu, Gao, Zhu, Wu 2018, CoopNets; tutorial seed,
section 6.3).

A generator ``x = g_φ(z) + σ ε``, ``z ~ N(0, I)``, proposes the chains' starting points; ``K`` MCMC steps on the
energy revise them to ``x̃``; the energy learns by contrastive divergence on the revised samples, and the
generator learns to produce what the MCMC made of its proposals (it absorbs the sampler's work, so later chains
start closer to ``p_θ``). One iteration (the paper's Algorithm, steps G1, D1, G2, D2, G3), with ``z`` held by
the objective between :meth:`CooperativeLoss.chain_starts` and :meth:`CooperativeLoss.loss`::

    G1  z ~ N(0, I) (n, latent);  x_start = g_φ(z) + σ ε (detached)
    D1  the loop's chains: x_start -> x̃ (n, *event), detached
    G2  latent inference: ``infer_steps`` Langevin steps from z on log N(z; 0, I) + log N(x̃; g_φ(z), σ² I) -> z̃
    D2, G3 (one loss, disjoint parameters):
    L = [mean E_θ(x⁺) - mean E_θ(x̃) + α mean(E_θ(x⁺)² + E_θ(x̃)²)]          θ: CD on the revised samples
      + w · mean_i ‖g_φ(z̃_i) - x̃_i‖² / 2                                       φ: regression onto x̃

The generator's half is the maximum-likelihood step of the latent-variable model ``x̃ = g(z) + σ ε`` with the
latent inferred (G2), up to the factor ``1/σ²`` folded into ``w = generator_weight``. The inference matters:
regressing ``g(z)`` onto ``x̃`` with the proposal's own ``z`` (``infer_steps = 0``) fits the conditional mean
``E[x̃ | z]``, which averages the chains' noise away, so the generator's spread shrinks and the energy then
learns the wrong density (measured on a 2-D Gaussian: the mean off by 0.6). The two halves touch disjoint
parameters, so ``L`` is a genuine loss in both. ``[chains] init = "generator"`` says the objective supplies
the starts.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from anila.energies.generators import LatentGenerator
from anila.objectives.base import Batch, Metrics, Objective
from anila.objectives.contrastive import contrastive_divergence


class CooperativeLoss(Objective):
    """The cooperative objective of a run: :class:`~anila.energies.generators.LatentGenerator` ``generator``
    (``σ > 0``; an auxiliary module with its own ``optimizer``) starts the chains; CD plus the generator's
    regression onto the revised samples at the latents inferred by :meth:`infer`.
    Metrics: ``energy_pos``, ``energy_neg``, ``energy_gap`` and ``generator_mse`` (mean ``‖g(z) - x̃‖²``)."""

    needs_negatives = True

    def __init__(self, generator: LatentGenerator, optimizer: torch.optim.Optimizer, *,
                 generator_weight: float = 1.0, infer_steps: int = 10, infer_step_size: float = 0.1,
                 l2_reg: float = 0.0):
        self.generator, self.optimizer = generator, optimizer
        self.generator_weight, self.l2_reg = generator_weight, l2_reg
        self.infer_steps, self.infer_step_size = infer_steps, infer_step_size
        self._z: Tensor | None = None  # this iteration's latents: set by chain_starts, used by loss

    def chain_starts(self, x_pos: Tensor, chains, buffer, generator: torch.Generator) -> tuple[Tensor, None]:
        with torch.no_grad():
            x0, _, z = self.generator.sample_with_means(x_pos.shape[0], generator)
        self._z = z
        return x0.view(x_pos.shape).to(x_pos.dtype), None

    def infer(self, z: Tensor, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """G2: ``infer_steps`` Langevin steps on ``z`` targeting ``p(z | x) ∝ N(z; 0, I) N(x; g(z), σ² I)``
        (step ``δ``: ``z ← z + δ²/2 ∇ log p(z|x) + δ ξ``); detached, no parameter gradients."""
        delta, s2 = self.infer_step_size, self.generator.sigma.detach() ** 2
        z = z.detach()
        for _ in range(self.infer_steps):
            with torch.enable_grad():
                z = z.requires_grad_(True)
                log_p = -0.5 * z.pow(2).sum() - 0.5 * (x - self.generator.mean(z)).pow(2).sum() / s2
                grad, = torch.autograd.grad(log_p, z)
            noise = torch.randn(z.shape, generator=generator, device=z.device, dtype=z.dtype)
            z = (z + 0.5 * delta**2 * grad + delta * noise).detach()
        return z

    def loss(self, energy: nn.Module, batch: Batch, generator: torch.Generator) -> tuple[Tensor, Metrics]:
        if batch.x_neg is None or self._z is None:
            raise ValueError("cooperative learning needs the chains' samples and the starts from chain_starts")
        revised = batch.x_neg.detach()
        loss, metrics = contrastive_divergence(energy, batch.x_pos, revised, l2_reg=self.l2_reg)
        z = self.infer(self._z, revised.flatten(1), generator)
        mse = (self.generator.mean(z) - revised.flatten(1)).pow(2).sum(1).mean()
        metrics["generator_mse"] = mse.detach()
        return loss + self.generator_weight * 0.5 * mse, metrics

    def modules(self) -> dict[str, nn.Module]:
        return {"generator": self.generator}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"generator": self.optimizer}
