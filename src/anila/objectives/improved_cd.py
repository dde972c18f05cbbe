"""The KL term of improved contrastive divergence (Du, Li, Tenenbaum, Mordatch 2021, section 2.1-2.2).

Contrastive divergence (eq. 2) depends on θ also through the sampler's output distribution ``q_θ``;
plain CD (eq. 5, :func:`~anila.objectives.contrastive.contrastive_divergence`) drops that part of the
gradient. The paper restores it with a second loss (eq. 6)

    L_KL = E_{x ~ q_θ}[ E_{stopgrad(θ)}(x) ] + E_{x ~ q_θ}[ log q_θ(x) ],

to be added to L_CD. Its first half (``L_opt``, eq. 7) pushes the *sampler* towards low energy: the
gradient reaches θ only through the sample ``x̂⁻ = x̂⁻(θ)`` (the last sampler step is differentiated,
the rest of the chain is not), never through the energy evaluation itself; freezing θ there is what
makes ``∇θ(L_CD + L_KL)`` the gradient of eq. 2. Its second half is minus the entropy of ``q_θ``,
estimated with nearest neighbours (eq. 8): ``-mean_i log NN(x̂⁻_i, B)``, the L2 distance from each
sample to its nearest neighbour in a set ``B`` of past samples (100 in the paper), held by
:class:`NearestNeighbourBank`. The Kozachenko-Leonenko estimator is ``H ≈ d · mean log NN + const``
in ``d`` dimensions; like the paper we drop ``d`` and the constant, which only rescale and shift the
regulariser: ``entropy_weight`` sets its strength (1 in Algorithm 1; the authors' code uses 0.3).

Training step (Algorithm 1), with the loop owning ``bank``::

    x_hat = run_chains(sampler, energy, x0, K, generator=g, differentiable_last_step=True).x
    cd, _ = contrastive_divergence(energy, x_pos, x_hat)          # x_hat detached there
    kl, _ = kl_term(energy, x_hat, entropy_samples=bank.tensor())
    (cd + kl).backward()
    bank.push(x_hat)                                                # after the loss, never before
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from anila.chains.augment import Augmentation
from anila.energies.base import Energy, energy_and_grad
from anila.objectives.base import Batch, Metrics, Objective
from anila.objectives.contrastive import contrastive_divergence

#: Default size of the nearest-neighbour set B: "a set B of 100 past samples" (section 2.2, eq. 8).
BANK_SIZE = 100


def nearest_neighbour_entropy(x: Tensor, samples: Tensor, *, eps: float = 1e-8) -> Tensor:
    """Nearest-neighbour entropy estimate ``mean_i log NN(x_i, B)`` (up to the factor ``d`` and constants).

    ``x``: ``(n, *event)``; ``samples`` (the set ``B``): ``(m, *event)``, ``m >= 1``, treated as constants.
    Events are flattened; ``NN(x_i, B) = min_j ||x_i - b_j||₂``. The log is taken as
    ``½ log(NN² + eps)``: the tiny ``eps`` keeps it finite, and its gradient zero, when a sample sits
    exactly on a point of ``B``. The neighbour is chosen without gradient (the argmin is piecewise
    constant), then the distance to it is recomputed exactly, so the gradient costs ``O(n · d)`` memory.
    Returns a scalar; differentiable with respect to ``x``.

    >>> g = torch.Generator().manual_seed(0)
    >>> b = torch.randn(100, 2, generator=g)
    >>> bool(nearest_neighbour_entropy(2 * b[:50], 2 * b[50:]) > nearest_neighbour_entropy(b[:50], b[50:]))
    True
    """
    if samples.dim() != x.dim() or samples.shape[1:] != x.shape[1:] or samples.shape[0] < 1:
        raise ValueError(f"entropy samples must be (m >= 1, *event) with event {tuple(x.shape[1:])}; "
                         f"got {tuple(samples.shape)} for samples shaped {tuple(x.shape)}")
    flat = x.flatten(1)
    bank = samples.detach().flatten(1).to(device=flat.device, dtype=flat.dtype)
    with torch.no_grad():
        nearest = torch.cdist(flat.detach(), bank, compute_mode="donot_use_mm_for_euclid_dist").argmin(1)
    squared = (flat - bank[nearest]).pow(2).sum(1)
    return 0.5 * torch.log(squared + eps).mean()


def kl_term(energy: Energy, x_last: Tensor, *, entropy_samples: Tensor | None = None,
            entropy_weight: float = 1.0, eps: float = 1e-8) -> tuple[Tensor, dict[str, Tensor]]:
    """Improved-CD KL loss ``L_KL = mean_i E_{stopgrad θ}(x̂⁻_i) - w · mean_i log NN(x̂⁻_i, B)``.

    ``x_last``: ``(n, *event)``, the output of a differentiable last sampler step
    (``run_chains(..., differentiable_last_step=True).x``), whose graph reaches the energy's parameters
    θ through the sampler. ``entropy_samples``: the set ``B``, ``(m, *event)`` past samples (e.g.
    ``NearestNeighbourBank.tensor()``); ``None`` (or ``m = 0``, or ``w = 0``) leaves the entropy term out.
    ``entropy_weight``: ``w``; ``eps``: see :func:`nearest_neighbour_entropy`.

    Frozen energy (eq. 6-7): the gradient of the energy half is ``mean_i ∇x E_θ(x̂⁻_i) · ∂x̂⁻_i/∂θ``, the
    chain rule through the sample only. It is built from one forward and backward pass of the energy
    *with respect to its input* (the parameters get no ``.grad`` from it) and the first-order surrogate
    ``mean_i [E(x̂⁻_i) + ⟨stopgrad(∇x E(x̂⁻_i)), x̂⁻_i - stopgrad(x̂⁻_i)⟩]``, whose value is exactly
    ``mean E(x̂⁻)`` and whose θ-gradient is exactly the frozen-θ one. Unlike toggling ``requires_grad``
    or swapping parameters (``torch.func.functional_call`` sets them on the live module for the call),
    this never touches the module, so it is thread-safe and works for any energy callable, including
    closures over modules. (It is first-order: do not differentiate this loss twice.)

    Returns ``(loss, metrics)``: a scalar loss to add to the CD loss, and detached scalars
    ``kl_energy = mean E(x̂⁻)`` and ``entropy = mean log NN(x̂⁻, B)`` (0 when the term is left out).

    >>> from anila.energies import MLPEnergy
    >>> from anila.samplers import Langevin, run_chains
    >>> energy, bank = MLPEnergy(dim=2), NearestNeighbourBank(size=100)
    >>> bank.push(torch.randn(100, 2))
    >>> x_hat = run_chains(Langevin(0.01), energy, torch.randn(32, 2), 10, differentiable_last_step=True).x
    >>> loss, metrics = kl_term(energy, x_hat, entropy_samples=bank.tensor())
    >>> sorted(metrics)
    ['entropy', 'kl_energy']
    """
    if not x_last.requires_grad:
        raise ValueError("x_last carries no graph, so the KL term would give no gradient: pass the output of "
                         "run_chains(..., differentiable_last_step=True), not a detached sample")
    e, grad = energy_and_grad(energy, x_last)  # both detached: θ gets nothing from this evaluation
    moved = x_last - x_last.detach()  # zero in value, d/dθ = ∂x̂⁻/∂θ
    kl_energy = e.mean() + (grad * moved).flatten(1).sum(1).mean()
    loss = kl_energy
    entropy = torch.zeros((), device=x_last.device, dtype=e.dtype)
    if entropy_samples is not None and entropy_samples.shape[0] > 0 and entropy_weight != 0:
        entropy = nearest_neighbour_entropy(x_last, entropy_samples, eps=eps)
        loss = loss - entropy_weight * entropy
    metrics = {"kl_energy": e.mean().detach(), "entropy": entropy.detach()}
    return loss, metrics


class NearestNeighbourBank:
    """The set ``B`` of past samples for the entropy estimate: the most recent ``size`` pushed samples.

    A plain object the training loop owns and checkpoints, like :class:`~anila.chains.ReplayBuffer`.
    ``push(x)`` appends the detached ``(n, *event)`` batch and drops the oldest rows beyond ``size``;
    ``tensor()`` is ``(k, *event)``, ``k <= size``, oldest first, or ``None`` before the first push.
    The bank lives on the device and dtype of the latest pushed batch. Push after computing the loss:
    a sample whose own copy is in ``B`` has distance 0 to it.

    >>> bank = NearestNeighbourBank(size=100)
    >>> bank.push(torch.randn(64, 2)); bank.push(torch.randn(64, 2))
    >>> bank.tensor().shape
    torch.Size([100, 2])
    """

    def __init__(self, size: int = BANK_SIZE):
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        self.size = size
        self._samples: Tensor | None = None

    def __len__(self) -> int:
        return 0 if self._samples is None else self._samples.shape[0]

    def push(self, x: Tensor) -> None:
        x = x.detach()
        if x.dim() < 1:
            raise ValueError("push expects a batch (n, *event), got a scalar")
        if self._samples is not None:
            if x.shape[1:] != self._samples.shape[1:]:
                raise ValueError(f"pushed samples have event shape {tuple(x.shape[1:])}, the bank holds "
                                 f"{tuple(self._samples.shape[1:])}")
            x = torch.cat([self._samples.to(device=x.device, dtype=x.dtype), x])
        if x.shape[0] > 0:
            self._samples = x[-self.size:].clone()

    def tensor(self) -> Tensor | None:
        return self._samples

    def state_dict(self) -> dict[str, Tensor]:
        return {"samples": torch.empty(0) if self._samples is None else self._samples.clone()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        samples = state["samples"]
        if samples.dim() == 0 or samples.shape[0] == 0:
            self._samples = None
            return
        if self._samples is not None:
            samples = samples.to(device=self._samples.device, dtype=self._samples.dtype)
        self._samples = samples[-self.size:].clone()


class ImprovedCDLoss(Objective):
    """The improved-CD objective of a run (Algorithm 1 of Du et al. 2021):

        L = L_CD(x⁺, stopgrad x̂⁻) + kl_weight · L_KL(x̂⁻; B)

    with ``x̂⁻`` the chains' output through a differentiable last step (``differentiable_negatives``), ``B``
    the bank of the last ``bank_size`` negatives (pushed after each applied step, checkpointed), and with
    ``augment`` the chains drawn from a buffer first passed through the augmentation transitions."""

    needs_negatives = True
    differentiable_negatives = True

    def __init__(self, *, kl_weight: float = 1.0, entropy_weight: float = 1.0, bank_size: int = BANK_SIZE,
                 augment: bool = False, l2_reg: float = 0.0):
        self.kl_weight, self.entropy_weight, self.augment, self.l2_reg = kl_weight, entropy_weight, augment, l2_reg
        self.bank = NearestNeighbourBank(bank_size)

    def chain_starts(self, x_pos, chains, buffer, generator):
        x0, indices = chains.initial(x_pos, buffer, generator)
        if self.augment and indices is not None and x0.dim() == 4:
            x0 = Augmentation()(x0, generator)
        return x0, indices

    def loss(self, energy: nn.Module, batch: Batch, generator: torch.Generator) -> tuple[Tensor, Metrics]:
        if batch.x_neg is None:
            raise ValueError("improved CD needs the chains' samples: Batch.x_neg is None")
        loss, metrics = contrastive_divergence(energy, batch.x_pos, batch.x_neg, l2_reg=self.l2_reg)
        kl_loss, kl_metrics = kl_term(energy, batch.x_neg, entropy_samples=self.bank.tensor(),
                                      entropy_weight=self.entropy_weight)
        return loss + self.kl_weight * kl_loss, {**metrics, **kl_metrics}

    def after_step(self, batch: Batch) -> None:
        assert batch.x_neg is not None
        self.bank.push(batch.x_neg)

    def state_dict(self) -> dict[str, Tensor]:
        return {} if self.bank.tensor() is None else {f"bank.{k}": v for k, v in self.bank.state_dict().items()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.bank.load_state_dict({"samples": state.get("bank.samples", torch.empty(0))})  # absent: empty
