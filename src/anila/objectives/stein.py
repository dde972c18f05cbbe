"""Stein discrepancy objectives (tutorial seed, Song & Kingma 2021, section 6.2, eq. 30).

The Stein discrepancy of the data from the model, over a family ``F`` of vector fields ``f: R^D -> R^D``,

    D_F(p_data ‖ p_θ) = sup_{f ∈ F} E_data[ s_θ(x)ᵀ f(x) + tr ∇x f(x) ],      s_θ = ∇x log p_θ = -∇x E_θ,

is zero for every ``f`` when ``p_θ = p_data`` (integrate ``tr ∇f`` by parts: ``E_data[tr ∇f] =
-E_data[s_dataᵀ f]``) and positive otherwise for a rich enough ``F``. The model enters only through its
score, so ``Z_θ`` never appears. Two choices of ``F``:

- **kernelised** (:func:`kernel_stein_discrepancy`, objective ``ksd``; Liu, Lee & Jordan 2016, Chwialkowski
  et al. 2016): ``F`` the unit ball of the RKHS of a kernel ``k``. The supremum is then in closed form,
  ``KSD² = E_{x, x' ~ data} u_θ(x, x')`` with the Stein kernel

      u_θ(x, y) = k(x, y) [ s(x)ᵀ s(y) + (s(x) - s(y))ᵀ (x - y) / h² + D / h² - ‖x - y‖² / h⁴ ]

  for the RBF kernel ``k(x, y) = exp(-‖x - y‖² / (2h²))`` (the bracket spells out ``s(x)ᵀ∇_y k + ∇_x kᵀ s(y)
  + tr ∇_x∇_y k`` divided by ``k``). The last two terms are the trace part: free of θ, as the seed notes.
- **learned critic** (:class:`SteinCriticLoss`, objective ``stein_critic``; Grathwohl et al. 2020): ``F`` a
  neural network ``f_φ``, the trace by Hutchinson's estimator ``tr J ≈ vᵀ J v`` (``E[vvᵀ] = I``), and an L2
  penalty ``λ E‖f‖²`` in place of a norm constraint. With the penalty the supremum over all fields is reached
  at ``f* = (s_θ - s_data) / (2λ)`` and equals ``E_data‖s_θ - s_data‖² / (4λ)``: a Fisher divergence, so the
  energy's optimum is the data (at ``λ = ½`` exactly score matching's ``½ E‖s_θ - s_data‖²``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from anila.energies.networks import make_activation
from anila.objectives.base import Batch, LossOnly, Metrics, Objective, ObjectiveContext, ObjectiveSpec
from anila.objectives.score_matching import PROJECTIONS, _projections


def model_score(model: Callable[[Tensor], Tensor], x: Tensor, *, create_graph: bool = False) -> Tensor:
    """The score ``s(x) = ∇x log p(x)`` of ``model`` at ``x`` ``(n, *event)``, flattened to ``(n, D)``.

    ``model`` is an energy (returns ``(n,)``: ``s = -∇x E``) or a score function (returns ``(n, *event)``,
    taken as it is). ``create_graph=True`` keeps the graph to the model's parameters (for a loss)."""
    with torch.enable_grad():
        leaf = x.detach().requires_grad_(True)
        out = model(leaf)
        if out.shape == leaf.shape:
            return out.flatten(1) if create_graph else out.detach().flatten(1)
        if out.shape != leaf.shape[:1]:
            raise ValueError(f"model returned shape {tuple(out.shape)} for input {tuple(leaf.shape)}: an energy "
                             f"returns ({leaf.shape[0]},), a score function {tuple(leaf.shape)}")
        (g,) = torch.autograd.grad(out.sum(), leaf, create_graph=create_graph)
    return -g.flatten(1)


def median_bandwidth(x: Tensor) -> Tensor:
    """The median heuristic: the median of the pairwise distances ``‖x_i - x_j‖`` (``i < j``), detached."""
    flat = x.detach().flatten(1)
    n = flat.shape[0]
    distances = torch.cdist(flat, flat, compute_mode="donot_use_mm_for_euclid_dist")
    i, j = torch.triu_indices(n, n, offset=1, device=flat.device)
    return distances[i, j].median()


def kernel_stein_discrepancy(model: Callable[[Tensor], Tensor], x: Tensor, *, bandwidth: float | Tensor | None = None,
                             create_graph: bool = False) -> Tensor:
    """The squared kernelised Stein discrepancy of the samples ``x`` from ``model``, RBF kernel, U-statistic.

        KSD² = 1 / (n (n-1)) Σ_{i ≠ j} u(x_i, x_j)        (u: the Stein kernel in the module docstring)

    ``model``: an energy ``E`` (``p ∝ exp(-E)``) or a score function, see :func:`model_score`. ``x``:
    ``(n, *event)``, ``n >= 2``, flattened to ``D`` entries. ``bandwidth``: ``h`` of
    ``k = exp(-‖x - y‖² / (2h²))``; ``None``: the median heuristic on this ``x`` (:func:`median_bandwidth`,
    detached). The U-statistic is unbiased for ``E u(x, x')``, so it scatters around zero (can be negative) when
    ``x`` is drawn from the model. ``create_graph=True``: differentiable in the model's parameters (a loss).
    Memory ``O(n² + nD)``. Returns a scalar.

    >>> from anila.energies.analytic import Gaussian
    >>> target = Gaussian(torch.zeros(2), torch.eye(2))
    >>> x = target.sample(500, torch.Generator().manual_seed(0))
    >>> bool(kernel_stein_discrepancy(target, x).abs() < kernel_stein_discrepancy(target, x + 1.0))
    True
    """
    n = x.shape[0]
    if n < 2:
        raise ValueError(f"the U-statistic needs n >= 2 samples, got {n}")
    h = median_bandwidth(x) if bandwidth is None else torch.as_tensor(bandwidth, dtype=x.dtype, device=x.device)
    if not bool(h > 0):
        raise ValueError(f"bandwidth must be > 0, got {float(h)} (all samples identical?)")
    s = model_score(model, x, create_graph=create_graph)
    flat = x.detach().flatten(1).to(s.dtype)
    d = flat.shape[1]
    h2 = h.to(s.dtype) ** 2
    sq = flat.pow(2).sum(1)
    dist2 = (sq[:, None] + sq[None, :] - 2 * flat @ flat.T).clamp_min(0)
    kernel = torch.exp(-dist2 / (2 * h2))
    sx = (s * flat).sum(1)  # s_i·x_i
    # (s_i - s_j)ᵀ(x_i - x_j) = s_i·x_i - s_i·x_j - s_j·x_i + s_j·x_j
    cross = sx[:, None] + sx[None, :] - s @ flat.T - flat @ s.T
    u = kernel * (s @ s.T + cross / h2 + d / h2 - dist2 / h2**2)
    off_diagonal = u.sum() - torch.diagonal(u).sum()
    return off_diagonal / (n * (n - 1))


def ksd_loss(energy: nn.Module, x: Tensor, *, bandwidth: float | None = None) -> tuple[Tensor, Metrics]:
    """The KSD objective: ``L(θ) = KSD²(x; E_θ)`` (:func:`kernel_stein_discrepancy`, differentiable in θ).
    ``metrics``: the detached ``bandwidth`` used."""
    h = median_bandwidth(x) if bandwidth is None else torch.tensor(float(bandwidth), dtype=x.dtype, device=x.device)
    loss = kernel_stein_discrepancy(energy, x, bandwidth=h, create_graph=True)
    return loss, {"bandwidth": h.detach()}


@dataclass(frozen=True)
class KernelSteinDiscrepancy(ObjectiveSpec):
    """Kernelised Stein discrepancy (eq. 30 over an RKHS ball): the unbiased U-statistic of the data batch, RBF
    kernel of ``bandwidth`` (unset: the median heuristic on each batch). ``O(batch²)`` per step; first
    derivatives of the energy only."""

    bandwidth: float | None = None

    def __post_init__(self) -> None:
        if self.bandwidth is not None and not self.bandwidth > 0:
            raise ValueError(f"bandwidth must be > 0 (or unset for the median heuristic), got {self.bandwidth}")

    def __call__(self, energy, x: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Metrics]:
        return ksd_loss(energy, x, bandwidth=self.bandwidth)

    def build(self, context: ObjectiveContext) -> Objective:
        return LossOnly(self)


# --------------------------------------------------------------------------------------- learned critic


class VectorFieldCritic(nn.Module):
    """A vector field ``f_φ: R^D -> R^D``: an MLP on the flattened event, ``depth`` hidden layers of ``width``
    (SiLU), output reshaped to the event. Input ``(n, *event)``, output ``(n, *event)``."""

    def __init__(self, event_shape: tuple[int, ...], width: int = 64, depth: int = 2, activation: str = "silu"):
        super().__init__()
        self.event_shape = tuple(event_shape)
        dim = math.prod(self.event_shape)
        layers: list[nn.Module] = []
        fan_in = dim
        for _ in range(depth):
            layers += [nn.Linear(fan_in, width), make_activation(activation)]
            fan_in = width
        layers.append(nn.Linear(fan_in, dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.flatten(1)).view(x.shape[0], *self.event_shape)


def stein_critic_terms(energy: nn.Module, critic: nn.Module, x: Tensor, *, num_probes: int = 1,
                       probe: str = "rademacher",
                       generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The per-sample pieces of the penalised Stein objective, all with graphs: the score ``s_θ(x)`` and
    ``f_φ(x)`` flattened ``(n, D)``, the Hutchinson trace ``mean_k v_kᵀ ∇x f_φ(x) v_k`` ``(n,)`` over
    ``num_probes`` probes (Rademacher or Gaussian), and ``‖f_φ(x)‖²`` ``(n,)``."""
    n = x.shape[0]
    s = model_score(energy, x, create_graph=True)
    x_rep = x.detach().repeat(num_probes, *([1] * (x.dim() - 1)))
    v = _projections(tuple(x_rep.shape), probe, x_rep, generator)
    with torch.enable_grad():
        leaf = x_rep.requires_grad_(True)
        f = critic(leaf)
        (jtv,) = torch.autograd.grad((f * v).sum(), leaf, create_graph=True)  # Jᵀv per row
        trace = (jtv * v).flatten(1).sum(1).view(num_probes, n).mean(0)
    f = f[:n].flatten(1)
    return s, f, trace, f.pow(2).sum(1)


class SteinCriticLoss(Objective):
    """The learned-critic Stein objective of a run (eq. 30 with ``F`` a network and an L2 penalty):

        S(θ, φ) = mean_i [ s_θ(x_i)ᵀ f_φ(x_i) + v_iᵀ ∇x f_φ(x_i) v_i ] - λ mean_i ‖f_φ(x_i)‖²

    ``x``: the data batch ``(n, *event)``. The energy minimises ``S``, the critic maximises it. The single loss

        L = A - sg(A) - (B - sg(B)) + sg(S),   A = mean sᵀ sg(f),   B = mean sg(s)ᵀ f + mean vᵀJv - λ mean ‖f‖²

    (``sg``: stop-gradient) has the value ``S`` and gradients ``∇θ L = ∇θ S`` and ``∇φ L = -∇φ S``, so the
    loop's one backward and simultaneous steps are gradient descent for θ and ascent for φ. A step down ``L``
    lowers ``S`` along θ and raises it along φ; ``L``'s value is the penalised discrepancy, not a quantity
    that falls under the joint step. ``metrics``: ``stein`` (the unpenalised ``mean sᵀf + vᵀJv``) and
    ``critic_sq`` (``mean ‖f‖²``)."""

    def __init__(self, critic: VectorFieldCritic, optimizer: torch.optim.Optimizer, *, penalty: float,
                 num_probes: int, probe: str):
        self.critic, self.optimizer = critic, optimizer
        self.penalty, self.num_probes, self.probe = penalty, num_probes, probe

    def loss(self, energy: nn.Module, batch: Batch, generator: torch.Generator) -> tuple[Tensor, Metrics]:
        s, f, trace, f_sq = stein_critic_terms(energy, self.critic, batch.x_pos, num_probes=self.num_probes,
                                               probe=self.probe, generator=generator)
        s_f = (s * f.detach()).sum(1).mean()  # θ's half
        critic_half = (s.detach() * f).sum(1).mean() + trace.mean() - self.penalty * f_sq.mean()  # φ's half
        value = s_f.detach() + trace.mean().detach() - self.penalty * f_sq.mean().detach()
        loss = (s_f - s_f.detach()) - (critic_half - critic_half.detach()) + value
        metrics = {"stein": (s_f + trace.mean()).detach(), "critic_sq": f_sq.mean().detach()}
        return loss, metrics

    def modules(self) -> dict[str, nn.Module]:
        return {"critic": self.critic}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"critic": self.optimizer}


@dataclass(frozen=True)
class SteinCritic(ObjectiveSpec):
    """Stein discrepancy with a learned vector-field critic (eq. 30): an MLP critic (``critic_width`` ×
    ``critic_depth``, SiLU) with its own Adam (``critic_lr``, unset: the energy's lr), the trace of its Jacobian
    by ``num_probes`` Hutchinson probes (``probe``: ``rademacher`` or ``gaussian``), penalty ``λ E‖f‖²``
    (``penalty``; at ``½`` the optimal critic makes the loss the Fisher divergence of score matching)."""

    penalty: float = 0.5
    num_probes: int = 1
    probe: str = "rademacher"
    critic_width: int = 64
    critic_depth: int = 2
    critic_lr: float | None = None

    def __post_init__(self) -> None:
        if self.probe not in PROJECTIONS:
            raise ValueError(f"probe must be one of {', '.join(PROJECTIONS)}; got {self.probe!r}")
        if not self.penalty > 0:
            raise ValueError(f"penalty must be > 0 (it keeps the critic bounded), got {self.penalty}")
        if self.num_probes < 1 or self.critic_width < 1 or self.critic_depth < 1:
            raise ValueError(f"num_probes, critic_width and critic_depth must be >= 1; got {self.num_probes}, "
                             f"{self.critic_width}, {self.critic_depth}")
        if self.critic_lr is not None and not self.critic_lr > 0:
            raise ValueError(f"critic_lr must be > 0, got {self.critic_lr}")

    def build(self, context: ObjectiveContext) -> Objective:
        """The critic is sized from one data point, drawn with its own generator (the run's is not advanced)."""
        probe_generator = torch.Generator(context.device).manual_seed(0)
        example = context.data(1, probe_generator)
        critic = VectorFieldCritic(tuple(example.shape[1:]), self.critic_width, self.critic_depth)
        critic = critic.to(device=context.device, dtype=example.dtype)
        return SteinCriticLoss(critic, context.adam(critic, self.critic_lr), penalty=self.penalty,
                               num_probes=self.num_probes, probe=self.probe)


__all__ = ["KernelSteinDiscrepancy", "SteinCritic", "SteinCriticLoss", "VectorFieldCritic",
           "kernel_stein_discrepancy", "ksd_loss", "median_bandwidth", "model_score", "stein_critic_terms"]
