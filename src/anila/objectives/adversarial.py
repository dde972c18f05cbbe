"""Adversarial training of an EBM with a variational sampler (tutorial seed, Song & Kingma 2021, section 6.3).

Maximum likelihood needs samples of ``p_θ ∝ exp(-E_θ)``. Instead of MCMC, a sampler ``q_φ`` that draws in one
forward pass is trained alongside the energy, each on its own half of a max-min game. Re-derived: for any
``q``, ``log Z_θ = log E_q[exp(-E_θ)/q] >= -E_q[E_θ] + H(q)`` (Jensen), with equality iff ``q = p_θ``, so

    -E_data[log p_θ] = E_data[E_θ] + log Z_θ  >=  E_data[E_θ] - E_q[E_θ] + H(q_φ)     (seed eq. 31-32)

and the gap is ``KL(q_φ ‖ p_θ)``. Maximising the bound over ``φ`` (``min_φ E_q[E_θ] - H(q_φ)`` = ``KL(q ‖ p_θ)``
up to ``log Z_θ``) makes it tight; minimising it over ``θ`` is maximum likelihood with the negatives from
``q_φ``. Because ``log Z`` is bounded *below* here, the energy's step is that of a lower bound on the NLL:
when ``q_φ`` lags ``p_θ`` the energy can exploit it (the instability GANs share).

The loss handed to the loop (one backward) is the sum of the two halves, written so each parameter set gets
its own gradient (``x_q ~ q_φ``, ``n`` of them, as many as data points):

    L = [mean E_θ(x⁺) - mean E_θ(stopgrad x_q) + α mean(E_θ(x⁺)² + E_θ(x_q)²)]            θ-half (CD, l2 = α)
      + [mean E_{stopgrad θ}(x_q) - w · Ĥ(q_φ)]                                              φ-half

The ``stopgrad θ`` energy is the first-order frozen-parameter surrogate of
:func:`~anila.objectives.improved_cd.kl_term` (value ``mean E(x_q)``, gradient reaching ``φ`` only through
``x_q``). Its value is therefore not a quantity that both updates lower together; the contract test checks
each half instead. ``w = entropy_weight`` (1: the bound). Two samplers:

- :class:`AdversarialFlowLoss` (``adversarial_flow``): ``q_φ`` a RealNVP flow
  (:class:`~anila.energies.generators.CouplingFlow`), ``Ĥ = -mean log q_φ(x_q)`` exact per sample.
- :class:`NoisySamplerLoss` (``adversarial_noisy``): the noisy generator ``x = g_φ(z) + σ ε`` of VERA
  (Grathwohl, Kelly, Hashemi, Norouzi, Swersky, Duvenaud 2021, "No MCMC for me"), whose marginal entropy
  has no closed form; only its gradient is estimated, by :func:`noisy_entropy_surrogate`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from anila.energies.generators import CouplingFlow, LatentGenerator
from anila.objectives.base import Batch, Metrics, Objective
from anila.objectives.contrastive import contrastive_divergence
from anila.objectives.improved_cd import kl_term


def noisy_entropy_surrogate(x: Tensor, means: Tensor, sigma: Tensor | float) -> tuple[Tensor, dict[str, Tensor]]:
    """A scalar whose gradient is an estimate of ``-∇_φ H(q_φ)`` for the noisy sampler ``x = g_φ(z) + σ ε``.

    ``x``: ``(n, D)`` flat samples with their graph (to ``g_φ`` and, when learned, ``σ``); ``means``: ``(n, D)``,
    ``g_φ(z_j)`` of the same draws. Re-derived: for a reparameterised ``x``, ``∇_φ H = -E[∇_x log q(x)ᵀ ∂x/∂φ]``
    (the ``E_q[∇_φ log q_φ]`` part is zero), and the marginal score is a posterior mean,
    ``∇_x log q(x) = E_{z ~ q(z|x)}[(g(z) - x)/σ²]``. VERA estimates it with posterior samples of ``z`` from a
    few HMC steps started at the ``z`` that drew ``x``; here it is **self-normalised importance sampling with
    the prior as proposal, over the batch's own latents**: weights ``w_ij ∝ N(x_i; g(z_j), σ² I)``,

        ŝ_i = Σ_j w_ij (g(z_j) - x_i) / σ²,     surrogate = mean_i ⟨stopgrad ŝ_i, x_i⟩,

    so ``∇_φ surrogate = mean_i ŝ_iᵀ ∂x_i/∂φ ≈ -∇_φ H``. Bias: the term ``j = i`` (the latent that drew
    ``x_i``, ``(g(z_i) - x_i)/σ² = -ε_i/σ``) is correlated with ``x_i``; it alone gives the gradient of the
    conditional entropy ``H(x|z) = D log σ + const`` (zero for ``g``, ``-D/σ`` for ``σ``), and the other
    latents add the spread of ``g``. When few ``g(z_j)`` lie within ``σ`` of ``x_i`` (small ``σ`` against the
    spread of ``g``, a high-dimensional latent, a small batch) the own term dominates and the estimate
    falls towards ``∇H(x|z)``, i.e. it underestimates the entropy's pull on ``g`` (a mode-seeking bias); the
    self-normalisation adds an ``O(1/n)`` bias. (Leaving ``j = i`` out removes the correlation but, at a small
    effective sample size, gives scores of size ``distance/σ²`` that blow the sampler apart.) Metric ``ess``:
    the mean effective sample size ``1 / Σ_j w_ij²`` of the weights (1: the own latent only). The value is 0.
    """
    if x.shape[0] < 2:
        raise ValueError("the noisy sampler's entropy estimate needs a batch of at least 2 samples")
    with torch.no_grad():
        xd, md = x.detach(), means.detach()
        s2 = torch.as_tensor(sigma).detach().to(xd) ** 2
        log_w = -torch.cdist(xd, md, compute_mode="donot_use_mm_for_euclid_dist").pow(2) / (2 * s2)
        w = torch.softmax(log_w, dim=1)
        score = (w @ md - xd) / s2
        ess = 1.0 / w.pow(2).sum(1)
    surrogate = (score * (x - xd)).sum(1).mean()  # value 0, gradient mean_i ŝ_iᵀ ∂x_i/∂φ
    return surrogate, {"ess": ess.mean()}


class _AdversarialLoss(Objective):
    """Shared part: the θ-half on ``q_φ``'s detached samples, the φ-half's frozen energy, the sampler's Adam."""

    def __init__(self, sampler: CouplingFlow | LatentGenerator, optimizer: torch.optim.Optimizer, *,
                 entropy_weight: float, l2_reg: float):
        self.sampler, self.optimizer = sampler, optimizer
        self.entropy_weight, self.l2_reg = entropy_weight, l2_reg
        self.negatives: Tensor | None = None  #: the last loss's detached samples of q_φ

    def draw(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        """``n`` samples (with graph), ``-Ĥ`` as a differentiable scalar, and sampler metrics."""
        raise NotImplementedError

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` detached samples of ``q_φ`` (one forward pass)."""
        with torch.no_grad():  # both samplers' sample() return (x, ...); no entropy estimate needed here
            return self.sampler.sample(n, generator)[0].detach()

    def chain_starts(self, x_pos, chains, buffer, generator):
        """Samples of ``q_φ`` as chain starts (for evaluation: ``q_φ`` followed by a few MCMC steps)."""
        return self.sample(x_pos.shape[0], generator), None

    def loss(self, energy: nn.Module, batch: Batch, generator: torch.Generator) -> tuple[Tensor, Metrics]:
        x_q, neg_entropy, sampler_metrics = self.draw(batch.x_pos.shape[0], generator)
        self.negatives = x_q.detach()
        energy_half, metrics = contrastive_divergence(energy, batch.x_pos, x_q.detach(), l2_reg=self.l2_reg)
        frozen, _ = kl_term(energy, x_q)  # mean E(x_q), gradient to φ only
        sampler_half = frozen + self.entropy_weight * neg_entropy
        return energy_half + sampler_half, {**metrics, **sampler_metrics}

    def modules(self) -> dict[str, nn.Module]:
        return {"sampler": self.sampler}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"sampler": self.optimizer}


class AdversarialFlowLoss(_AdversarialLoss):
    """Adversarial training with a RealNVP flow ``q_φ`` (exact entropy). Metrics: ``energy_pos``, ``energy_neg``
    (mean energy of ``q_φ``'s samples), ``energy_gap``, ``entropy = -mean log q_φ(x_q)`` and
    ``kl = mean E_θ(x_q) + mean log q_φ(x_q)``, the Monte Carlo ``KL(q_φ ‖ p_θ) - log Z_θ``."""

    sampler: CouplingFlow

    def draw(self, n, generator=None):
        x, log_q = self.sampler.sample(n, generator)
        return x, log_q.mean(), {"entropy": -log_q.mean().detach()}

    def loss(self, energy, batch, generator):
        loss, metrics = super().loss(energy, batch, generator)
        metrics["kl"] = metrics["energy_neg"] - metrics["entropy"]
        return loss, metrics


class NoisySamplerLoss(_AdversarialLoss):
    """Adversarial training with the noisy generator ``x = g_φ(z) + σ ε`` (VERA's sampler) and the entropy
    gradient of :func:`noisy_entropy_surrogate`. Metrics: ``energy_pos``, ``energy_neg``, ``energy_gap``, ``ess``,
    ``sigma``."""

    sampler: LatentGenerator

    def draw(self, n, generator=None):
        x, means, _ = self.sampler.sample_with_means(n, generator)
        surrogate, metrics = noisy_entropy_surrogate(x.flatten(1), means, self.sampler.sigma)
        return x, surrogate, {**metrics, "sigma": self.sampler.sigma.detach()}
