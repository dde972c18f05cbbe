"""Noise contrastive estimation (Gutmann & Hyvärinen 2010; tutorial seed, Song & Kingma 2021, section 5).

NCE fits an EBM by logistic regression between data and draws from a noise density ``q`` that can be
sampled and evaluated. The model's normalised log-density is ``log p_θ(x) = -E_θ(x) - log Z`` with
``log Z`` a free scalar parameter learned alongside ``θ``; at the optimum ``p_θ = p_data`` and ``log Z`` is
the normaliser of ``exp(-E_θ)``, a by-product no other objective in this package gives.

:func:`perturbation_nce` is the variant of seed eq. 25-26 (Gutmann & Hirayama 2012) whose "noise" is the
data shifted by a small random vector: it needs neither a noise density nor ``log Z``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from anila.energies.analytic import Gaussian
from anila.energies.base import Energy
from anila.objectives.base import Batch, Metrics, Objective, ObjectiveContext
from anila.objectives.score_matching import PROJECTIONS, _projections

_LOG_2 = math.log(2.0)


class GaussianNoise(Gaussian):
    """A full-covariance Gaussian noise density for NCE, on flattened events.

    ``sample(num, generator) -> (num, *event_shape)`` and ``log_prob(x) -> (batch,)`` (normalised) for
    ``x`` of shape ``(batch, *event_shape)``; an ``nn.Module`` whose mean, covariance and Cholesky factor are
    buffers, so ``.to(device)`` moves it. Build it from data with :meth:`fit`.

    >>> noise = GaussianNoise.fit(torch.randn(1000, 2))
    >>> noise.sample(3).shape
    torch.Size([3, 2])
    """

    def __init__(self, mean: Tensor, covariance: Tensor, event_shape: tuple[int, ...] | None = None):
        super().__init__(mean, covariance)
        self.event_shape = (self.dim,) if event_shape is None else tuple(event_shape)
        if math.prod(self.event_shape) != self.dim:
            raise ValueError(f"event_shape {self.event_shape} does not have {self.dim} entries")

    @classmethod
    def fit(cls, x: Tensor, *, ridge: float = 1e-4) -> GaussianNoise:
        """Mean and covariance of ``x`` (``(n, *event)``, ``n >= 2``), unbiased, plus a ridge
        ``ridge · (tr Σ / D) · I`` (``D`` the flattened event size; ``ridge · I`` if the data are constant)
        that keeps the covariance positive definite when the data are (nearly) degenerate."""
        if x.shape[0] < 2:
            raise ValueError(f"fit needs at least 2 samples, got {x.shape[0]}")
        if ridge < 0:
            raise ValueError(f"ridge must be >= 0, got {ridge}")
        flat = x.detach().flatten(1)
        mean = flat.mean(0)
        centred = flat - mean
        cov = centred.T @ centred / (flat.shape[0] - 1)
        scale = float(torch.diagonal(cov).mean())
        if not math.isfinite(scale):
            raise ValueError("fit: the data contain NaN or infinite values")
        cov = cov + ridge * (scale if scale > 0 else 1.0) * torch.eye(cov.shape[0], dtype=cov.dtype,
                                                                      device=cov.device)
        return cls(mean, cov, tuple(x.shape[1:]))

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x.flatten(1))

    def sample(self, num: int, generator: torch.Generator | None = None) -> Tensor:
        return super().sample(num, generator).view(num, *self.event_shape)


def nce_loss(energy: Energy, log_z: Tensor | float, x: Tensor, noise: GaussianNoise, *,
             noise_ratio: float = 1.0,
             generator: torch.Generator | None = None) -> tuple[Tensor, dict[str, Tensor]]:
    """The NCE loss (seed eq. 18-21): logistic regression of data against ``ν`` noise draws per data point.

    With ``n`` data points, ``m = round(ν n)`` noise draws ``y_j ~ q`` (``ν = noise_ratio``; the ratio
    actually used is ``m / n``) and the log-odds of the class "data"

        G(x) = log p_θ(x) - log(ν q(x)) = -E_θ(x) - log Z - log q(x) - log ν,

    the loss is the negative conditional log-likelihood of the labels, per data point,

        L(θ, log Z) = mean_i softplus(-G(x_i)) + ν · mean_j softplus(G(y_j)).

    Its population minimiser is ``p_θ = p_data`` *with* ``log Z = log ∫exp(-E_θ)`` (seed eq. 22-24). Here
    ``ν`` counts noise draws per data point, as in Gutmann & Hyvärinen; the seed's ``ν = p(y=1)/p(y=0)`` is
    its reciprocal, which is why ``ν`` multiplies ``q`` here and ``p_data`` there: the posteriors agree.
    ``log_z`` is a scalar the caller owns (an ``nn.Parameter`` to learn it, ``0.0`` for a self-normalised
    model). One forward pass over data and noise together. ``x``: ``(n, *event)``; ``noise`` lives on
    ``x``'s device, its draws are cast to ``x``'s dtype and ``log q`` is evaluated in its own dtype.
    ``metrics``: detached ``log_z`` and ``accuracy`` (fraction of data and noise points on the right side
    of ``G = 0``).

    >>> log_z = torch.nn.Parameter(torch.zeros(()))
    >>> from anila.energies import MLPEnergy
    >>> g = torch.Generator().manual_seed(0)
    >>> energy, data = MLPEnergy(dim=2), torch.randn(64, 2, generator=g)
    >>> loss, metrics = nce_loss(energy, log_z, data, GaussianNoise.fit(data), generator=g)
    >>> loss.requires_grad
    True
    """
    if not (noise_ratio > 0 and math.isfinite(noise_ratio)):
        raise ValueError(f"noise_ratio must be a finite number > 0, got {noise_ratio!r}")
    n = x.shape[0]
    m = max(1, round(noise_ratio * n))
    nu = m / n
    y = noise.sample(m, generator).to(dtype=x.dtype)
    if y.shape[1:] != x.shape[1:]:
        raise ValueError(f"noise samples have event shape {tuple(y.shape[1:])}, data {tuple(x.shape[1:])}")
    inputs = torch.cat([x.detach(), y])
    energies = energy(inputs)
    if energies.shape != inputs.shape[:1]:
        raise ValueError(f"energy returned shape {tuple(energies.shape)} for input {tuple(inputs.shape)}; "
                         f"an energy must return one value per sample, shape ({inputs.shape[0]},)")
    log_q = noise.log_prob(inputs.to(noise.mean.dtype)).to(energies.dtype)
    logit = -energies - log_z - log_q - math.log(nu)
    logit_data, logit_noise = logit[:n], logit[n:]
    loss = F.softplus(-logit_data).mean() + nu * F.softplus(logit_noise).mean()
    correct = (logit_data > 0).sum() + (logit_noise < 0).sum()
    metrics = {"log_z": torch.as_tensor(log_z).detach().clone(),
               "accuracy": (correct.to(energies.dtype) / (n + m)).detach()}
    return loss, metrics


def perturbation_nce(energy: Energy, x: Tensor, *, scale: float, projection: str = "gaussian",
                     num_projections: int = 1,
                     generator: torch.Generator | None = None) -> tuple[Tensor, dict[str, Tensor]]:
    """NCE against shifted data (seed eq. 25-26; Gutmann & Hirayama 2012): no noise density, no ``log Z``.

    The noise is the data shifted by a vector ``v``: ``p_n(x) = p_data(x - v)``. Its density is unknown, so
    the classifier uses the model in its place, ``p(noise | x) = p_θ(x - v) / (p_θ(x) + p_θ(x - v))``, in
    which ``Z`` cancels. With equal numbers of data points ``x`` and shifted points ``x + v`` the negative
    log-likelihood of the labels, per data point, is

        L(θ) = mean_i softplus(E_θ(x_i) - E_θ(x_i - v_i)) + softplus(E_θ(x_i) - E_θ(x_i + v_i))

    (the first term classifies ``x_i`` as data, the second classifies ``x_i + v_i`` as noise). Here ``v`` is
    random, ``v = scale · u`` with ``u`` standard normal (``"gaussian"``) or Rademacher, drawn afresh for
    each of ``num_projections`` copies of every data point, so the model is compared with the data in every
    direction; for a deterministic ``v`` the optimum is only pinned down along ``v``.

    Small ``v`` (re-derived; ``g = ∇E``, ``H = ∇²E`` at ``x``): with ``softplus(t) = log 2 + t/2 + t²/8 +
    O(t⁴)`` and ``E(x) - E(x ∓ v) = ±gᵀv - ½vᵀHv + O(‖v‖³)``, the two terms sum to

        2 log 2 + ½ [½(vᵀg)² - vᵀHv] + O(‖v‖⁴)

    i.e. ``2 log 2`` plus half the sliced score matching integrand (see
    :func:`~anila.objectives.score_matching.sliced_score_matching`). The seed prints this expansion with
    a factor ``¼`` and ``+ vᵀHv``; the factor ``½`` and the minus sign are what the expansion gives (and what
    the tests check numerically). ``metrics``: detached ``accuracy`` (fraction of the ``2 · num_projections
    · n`` comparisons in which the data point has the lower energy) and ``ssm_equivalent =
    2 (L - 2 log 2) / scale²``, which tends to the sliced score matching loss as ``scale → 0``.

    >>> from anila.energies import MLPEnergy
    >>> g = torch.Generator().manual_seed(0)
    >>> energy, data = MLPEnergy(dim=2, activation="silu"), torch.randn(64, 2, generator=g)
    >>> loss, metrics = perturbation_nce(energy, data, scale=0.1, generator=g)
    >>> "ssm_equivalent" in metrics
    True
    """
    if projection not in PROJECTIONS:
        raise ValueError(f"projection must be one of {', '.join(PROJECTIONS)}; got {projection!r}")
    if num_projections < 1:
        raise ValueError(f"num_projections must be >= 1, got {num_projections}")
    if not (scale > 0 and math.isfinite(scale)):
        raise ValueError(f"scale must be a finite number > 0, got {scale!r}")
    x_rep = x.detach().repeat(num_projections, *([1] * (x.dim() - 1)))
    v = scale * _projections(tuple(x_rep.shape), projection, x_rep, generator)
    k = x_rep.shape[0]
    inputs = torch.cat([x_rep, x_rep - v, x_rep + v])
    energies = energy(inputs)
    if energies.shape != inputs.shape[:1]:
        raise ValueError(f"energy returned shape {tuple(energies.shape)} for input {tuple(inputs.shape)}; "
                         f"an energy must return one value per sample, shape ({inputs.shape[0]},)")
    e_x, e_minus, e_plus = energies[:k], energies[k:2 * k], energies[2 * k:]
    loss = (F.softplus(e_x - e_minus) + F.softplus(e_x - e_plus)).mean()
    correct = (e_x < e_minus).sum() + (e_x < e_plus).sum()
    with torch.no_grad():  # softplus(t) - log 2 without cancellation: log1p(expm1(t) / 2) for small |t|
        t = torch.cat([e_x - e_minus, e_x - e_plus])
        centred = torch.where(t.abs() < 1, torch.log1p(torch.expm1(t) / 2), F.softplus(t) - _LOG_2)
    metrics = {"accuracy": (correct.to(energies.dtype) / (2 * k)).detach(),
               "ssm_equivalent": 4 * centred.mean() / scale**2}
    return loss, metrics


class LogZ(nn.Module):
    """A learnable scalar ``log_z``: NCE's estimate of ``log ∫ exp(-E_θ)``, an auxiliary module of the run."""

    def __init__(self):
        super().__init__()
        self.log_z = nn.Parameter(torch.zeros(()))


class NCELoss(Objective):
    """The NCE objective of a run: :func:`nce_loss` against ``noise`` with ``log Z`` an auxiliary module
    (:class:`LogZ`, its own Adam with the energy's settings)."""

    def __init__(self, noise: GaussianNoise, *, noise_ratio: float, context: ObjectiveContext):
        self.noise, self.noise_ratio = noise, noise_ratio
        self.log_z = LogZ().to(context.device)
        self.optimizer = context.adam(self.log_z)

    def loss(self, energy: nn.Module, batch: Batch, generator: torch.Generator) -> tuple[Tensor, Metrics]:
        return nce_loss(energy, self.log_z.log_z, batch.x_pos, self.noise, noise_ratio=self.noise_ratio,
                        generator=generator)

    def modules(self) -> dict[str, nn.Module]:
        return {"log_z": self.log_z}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"log_z": self.optimizer}
