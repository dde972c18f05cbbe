"""Score matching: MCMC-free objectives that fit the model score ``s_θ(x) = -∇x E_θ(x)`` to the data's.

Every objective minimises (an estimate of) a Fisher divergence ``½ E_p ‖∇x log p_data - s_θ‖²`` in a form
that never needs ``∇x log p_data`` (tutorial seed, Song & Kingma 2021, section 4). With ``log p_θ = -E_θ``,
``g = ∇x E_θ(x)`` and ``H = ∇²x E_θ(x)`` (per sample, over the flattened event of size ``d``):

- exact score matching (Hyvärinen 2005; seed eq. 8):       ``E_data[½‖g‖² - tr H]``
- sliced score matching (Song et al. 2019; seed eq. 15):     ``E_data E_v[½(vᵀg)² - vᵀHv]``
- its variance-reduced form (seed eq. 17, ``E[vvᵀ] = I``):  ``E_data E_v[½‖g‖² - vᵀHv]``
- denoising score matching (Vincent 2011; seed eq. 10-11): ``½ E‖ε/σ - g(x + σε)‖²``, ``ε ~ N(0, I)``
- multi-level DSM (NCSN, seed section 4.4): DSM over noise levels with weight ``λ(σ) = σ²``.

Sign note: integrating by parts, ``E_data[sᵀ∇log p_data] = -E_data[tr ∇s]``, and ``∇s = -H``, so the
Hessian term enters with a *minus* sign in terms of the energy (``+ tr ∇²x log p_θ``). The seed prints
eq. 8, 15 and 17 with ``+ ∂²E``; read literally that sign would have its minimum at a negative precision
for a Gaussian, so the ``log p``-form (the one written above) is used here.

All of them are per-sample objectives: the energy must treat batch rows independently (no batch norm).
The second-order objectives need an energy that is twice differentiable with a non-trivial Hessian: with a
piecewise-linear network (ReLU / LeakyReLU) ``H = 0`` almost everywhere and exact/sliced SM degenerate to
``½‖g‖²``, which flattens the energy. Use a smooth activation (``silu``, ``softplus``, ``elu``, ``tanh``).
No objective here ever replaces a NaN or an infinity by a number: a blown-up energy shows in the loss.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from anila.energies.base import Energy, energy_and_grad
from anila.energies.networks import make_activation

PROJECTIONS = ("gaussian", "rademacher")


def _leaf_energy_grad(energy: Energy, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``(leaf, E(leaf), ∇E(leaf))`` with ``create_graph=True``: unlike ``energy_and_grad`` this hands back
    the input leaf, which the second-order objectives differentiate the gradient against."""
    leaf = x.detach().requires_grad_(True)
    e = energy(leaf)
    if e.shape != leaf.shape[:1]:
        raise ValueError(f"energy returned shape {tuple(e.shape)} for input {tuple(leaf.shape)}; an energy "
                         f"must return one value per sample, shape ({leaf.shape[0]},)")
    (g,) = torch.autograd.grad(e.sum(), leaf, create_graph=True)
    return leaf, e, g


def _projections(shape: tuple[int, ...], projection: str, like: Tensor,
                 generator: torch.Generator | None) -> Tensor:
    """Projection vectors with ``E[vvᵀ] = I``: standard normal or Rademacher (±1 with probability ½)."""
    if projection == "gaussian":
        return torch.randn(shape, generator=generator, device=like.device, dtype=like.dtype)
    if projection == "rademacher":
        bits = torch.randint(0, 2, shape, generator=generator, device=like.device)
        return (2 * bits - 1).to(like.dtype)
    raise ValueError(f"projection must be one of {', '.join(PROJECTIONS)}; got {projection!r}")


def _sum_event(t: Tensor) -> Tensor:
    return t.flatten(1).sum(1)


def exact_score_matching(energy: Energy, x: Tensor, *, max_dim: int = 20) -> tuple[Tensor, dict[str, Tensor]]:
    """Hyvärinen's score matching loss (seed eq. 8, ``log p``-form), with the exact Hessian trace.

        L(θ) = mean_i [ ½‖∇x E_θ(x_i)‖² - tr ∇²x E_θ(x_i) ]
             = mean_i [ ½‖∇x log p_θ(x_i)‖² + tr ∇²x log p_θ(x_i) ]

    equal to the Fisher divergence ``½ E‖∇log p_data - ∇log p_θ‖²`` up to a θ-free constant. The trace
    costs one extra backward pass per dimension (``d`` in all), each with ``create_graph=True`` so that the
    loss is differentiable with respect to the energy's parameters. ``x``: ``(batch, *event)``; events with
    more than ``max_dim`` entries raise ``ValueError`` (use :func:`sliced_score_matching`, linear in ``d``).
    ``metrics``: detached ``grad_sq`` (mean ``½‖∇E‖²``) and ``hessian_trace`` (mean ``tr ∇²E``).

    >>> from anila.energies import MLPEnergy
    >>> data = torch.randn(64, 2, generator=torch.Generator().manual_seed(0))
    >>> loss, metrics = exact_score_matching(MLPEnergy(dim=2, activation="silu"), data)
    >>> sorted(metrics)
    ['grad_sq', 'hessian_trace']
    """
    d = math.prod(x.shape[1:])
    if d > max_dim:
        raise ValueError(f"exact score matching needs one backward pass per dimension; the event has {d} > "
                         f"max_dim={max_dim} entries: use sliced_score_matching instead (or raise max_dim)")
    with torch.enable_grad():
        leaf, _, g = _leaf_energy_grad(energy, x)
        g_flat = g.flatten(1)
        trace = torch.zeros_like(g_flat[:, 0])
        for i in range(d):
            (row,) = torch.autograd.grad(g_flat[:, i].sum(), leaf, create_graph=True)
            trace = trace + row.flatten(1)[:, i]
        grad_sq = 0.5 * g_flat.pow(2).sum(1)
        loss = (grad_sq - trace).mean()
    metrics = {"grad_sq": grad_sq.mean().detach(), "hessian_trace": trace.mean().detach()}
    return loss, metrics


def sliced_score_matching(energy: Energy, x: Tensor, *, num_projections: int = 1, projection: str = "gaussian",
                          variance_reduced: bool = False,
                          generator: torch.Generator | None = None) -> tuple[Tensor, dict[str, Tensor]]:
    """Sliced score matching (seed eq. 15) and its variance-reduced form (seed eq. 17).

        L(θ)    = mean_{i,k} [ ½ (v_ikᵀ g_i)² - v_ikᵀ H_i v_ik ]          (variance_reduced=False)
        L_VR(θ) = mean_{i,k} [ ½ ‖g_i‖²       - v_ikᵀ H_i v_ik ]          (variance_reduced=True)

    with ``g_i = ∇x E_θ(x_i)``, ``H_i = ∇²x E_θ(x_i)`` and ``k = 1..num_projections`` projections per sample
    drawn from ``N(0, I)`` (``"gaussian"``) or uniformly from ``{±1}^d`` (``"rademacher"``). Both have
    ``E[vvᵀ] = I``, which is all the variance-reduced form needs: ``E_v[½(vᵀg)²] = ½‖g‖²`` is then taken in
    closed form, and ``vᵀHv`` is Hutchinson's estimator of ``tr H`` (so ``L_VR`` is unbiased for eq. 8).
    ``vᵀHv = vᵀ∇x(gᵀv)`` is a Hessian-vector product: one extra backward pass whatever ``d`` is. The
    projections are batched by repeating ``x`` ``num_projections`` times, so one forward and two backward
    passes cover them all. ``x``: ``(batch, *event)``; the projections have the same event shape.
    ``metrics``: detached ``grad_term`` (mean of the first term) and ``hessian_term`` (mean ``vᵀHv``).

    >>> from anila.energies import MLPEnergy
    >>> g = torch.Generator().manual_seed(0)
    >>> energy, data = MLPEnergy(dim=2, activation="silu"), torch.randn(64, 2, generator=g)
    >>> loss, metrics = sliced_score_matching(energy, data, num_projections=2, generator=g)
    >>> loss.shape
    torch.Size([])
    """
    if projection not in PROJECTIONS:
        raise ValueError(f"projection must be one of {', '.join(PROJECTIONS)}; got {projection!r}")
    if num_projections < 1:
        raise ValueError(f"num_projections must be >= 1, got {num_projections}")
    x_rep = x.detach().repeat(num_projections, *([1] * (x.dim() - 1)))
    v = _projections(tuple(x_rep.shape), projection, x_rep, generator)
    with torch.enable_grad():
        leaf, _, g = _leaf_energy_grad(energy, x_rep)
        gv = _sum_event(g * v)
        (hv,) = torch.autograd.grad(gv.sum(), leaf, create_graph=True)
        vhv = _sum_event(hv * v)
        grad_term = 0.5 * _sum_event(g.pow(2)) if variance_reduced else 0.5 * gv.pow(2)
        loss = (grad_term - vhv).mean()
    metrics = {"grad_term": grad_term.mean().detach(), "hessian_term": vhv.mean().detach()}
    return loss, metrics


def denoising_score_matching(energy: Energy, x: Tensor, *, sigma: float,
                             generator: torch.Generator | None = None,
                             control_variate: bool = False) -> tuple[Tensor, dict[str, Tensor]]:
    """Denoising score matching with a Gaussian kernel (seed eq. 10-11), optionally with the control variate
    of Wang et al. (2020) (seed eq. 13-14).

    Perturb ``x̃ = x + σε`` with ``ε ~ N(0, I)``. The kernel ``q(x̃|x) = N(x, σ²I)`` has score
    ``∇x̃ log q(x̃|x) = -(x̃ - x)/σ² = -ε/σ``, so with ``g̃ = ∇x E_θ(x̃)`` (``s_θ(x̃) = -g̃``)

        ℓ(x, ε) = ½ ‖s_θ(x̃) + ε/σ‖² = ½ ‖ε/σ - g̃‖²,      L(θ) = mean_i ℓ(x_i, ε_i).

    Weighting: this is the *unweighted* (``λ(σ) = 1``) loss of eq. 11; it equals the Fisher divergence
    between the noised data ``q_σ = p_data * N(0, σ²I)`` and ``p_θ`` plus a θ-free constant of order
    ``d/(2σ²)``. Multiply by ``σ²`` to get the NCSN-weighted ``½‖σ s_θ(x̃) + ε‖²`` used by
    :func:`multilevel_dsm`; the minimiser is the same for a single ``σ``. DSM is not consistent: its
    optimum is ``p_θ = q_σ``, not ``p_data`` (for Gaussian data ``N(μ, Σ)`` the learned precision tends to
    ``(Σ + σ²I)⁻¹``).

    Control variate (``control_variate=True``). Expanding ``s_θ(x̃) = s + σ(∇s)ε + O(σ²)`` with
    ``s = s_θ(x) = -g`` at the clean point, ``ℓ`` contains two terms whose variance blows up as ``σ → 0``:
    ``εᵀs/σ`` and ``‖ε‖²/(2σ²)``. Their exact expectations are ``0`` and ``d/(2σ²)`` (``ε`` is independent
    of ``x``), so

        ½ c_θ(x, ε) = εᵀ s_θ(x)/σ + (‖ε‖² - d)/(2σ²)            (½ × seed eq. 13)

    has mean zero for every θ, and so has its θ-gradient. The estimator of seed eq. 14 is ``ℓ - ½ c_θ``;
    expanded, the ``‖ε‖²/σ²`` terms cancel exactly, and it is computed in that cancelled form

        ℓ_cv(x, ε) = ½ ‖g̃‖² - εᵀ(g̃ - g)/σ + d/(2σ²)

    (no ``‖ε‖²/σ²`` is ever formed, so nothing large is subtracted in floating point). It has the same
    expectation as ``ℓ`` (the constant ``d/(2σ²)`` keeps the two values comparable), and as ``σ → 0``
    ``ℓ_cv - d/(2σ²)`` tends to ``½‖g‖² - εᵀHε`` (``H = ∇²x E_θ(x)``), the variance-reduced sliced score
    matching integrand with projection ``ε``, whose variance stays bounded. The cost is one more energy
    gradient, at the clean ``x`` (in the same forward pass). For a large ``σ`` the Taylor argument fails
    and the control variate can increase the variance (measured on a unit-scale 2-D Gaussian: variance
    ×1.6-2 at ``σ = 1``, ÷200-500 at ``σ = 0.1``, ÷3000-5000 at ``σ = 0.05``).

    ``x``: ``(batch, *event)``; ``metrics``: detached ``loss_without_cv`` (the plain estimate from the same
    draw) when the control variate is on, else empty.

    >>> from anila.energies import MLPEnergy
    >>> g = torch.Generator().manual_seed(0)
    >>> energy, data = MLPEnergy(dim=2), torch.randn(64, 2, generator=g)
    >>> loss, metrics = denoising_score_matching(energy, data, sigma=0.1, generator=g)
    >>> loss.requires_grad
    True
    """
    if not (sigma > 0 and math.isfinite(sigma)):
        raise ValueError(f"sigma must be a finite number > 0, got {sigma!r}")
    x = x.detach()
    eps = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    x_noisy = x + sigma * eps
    n = x.shape[0]
    with torch.enable_grad():
        inputs = torch.cat([x_noisy, x]) if control_variate else x_noisy
        _, grads = energy_and_grad(energy, inputs, create_graph=True)
        g_noisy = grads[:n]
        plain = 0.5 * _sum_event((eps / sigma - g_noisy).pow(2))
        if not control_variate:
            return plain.mean(), {}
        g_clean = grads[n:]
        d = math.prod(x.shape[1:])
        cv = (0.5 * _sum_event(g_noisy.pow(2)) - _sum_event(eps * (g_noisy - g_clean)) / sigma
              + d / (2 * sigma**2))
        loss = cv.mean()
    return loss, {"loss_without_cv": plain.mean().detach()}


# ---------------------------------------------------------------------------------------------------------
# Noise-conditional energies: one network for every noise level (NCSN, seed section 4.4)


@runtime_checkable
class NoiseConditionalEnergy(Protocol):
    """``energy(x, sigma) -> (batch,)``: the energy of the data convolved with ``N(0, σ²I)``.

    ``x``: ``(batch, *event)``; ``sigma``: ``(batch,)``, one positive noise level per row.
    """

    def __call__(self, x: Tensor, sigma: Tensor) -> Tensor: ...


class NoiseConditionalMLP(nn.Module):
    """A noise-conditional MLP energy ``E(x, σ) = f([x.flatten(1), log σ]) / σ``.

    ``f`` has ``depth`` hidden layers of ``width`` units (smooth ``activation``, default SiLU) and a
    scalar read-out. The ``log σ`` input makes any positive ``σ`` valid (no fixed table of levels), and the
    ``1/σ`` factor makes ``σ·s_θ = -∇x f``, the quantity the σ²-weighted loss regresses onto ``-ε``, of
    order one at every level (the output scaling of NCSNv2, written for an energy).

    >>> energy = NoiseConditionalMLP(dim=2)
    >>> energy(torch.zeros(5, 2), torch.full((5,), 0.1)).shape
    torch.Size([5])
    """

    def __init__(self, dim: int = 2, width: int = 64, depth: int = 3, activation: str = "silu"):
        super().__init__()
        for name, value in (("dim", dim), ("width", width), ("depth", depth)):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        layers: list[nn.Module] = []
        fan_in = dim + 1
        for _ in range(depth):
            layers += [nn.Linear(fan_in, width), make_activation(activation)]
            fan_in = width
        layers.append(nn.Linear(fan_in, 1))
        self.net = nn.Sequential(*layers)
        self.dim = dim

    def forward(self, x: Tensor, sigma: Tensor) -> Tensor:
        sigma = torch.as_tensor(sigma, device=x.device, dtype=x.dtype).expand(x.shape[0])
        h = torch.cat([x.flatten(1), torch.log(sigma)[:, None]], dim=1)
        return self.net(h).squeeze(-1) / sigma


def _sigma_tensor(sigmas: Sequence[float] | Tensor, like: Tensor) -> Tensor:
    """Noise levels as a 1-D tensor on ``like``'s device; a Python sequence is checked on the host (a
    tensor is trusted, so that the check never forces a device synchronisation)."""
    if not isinstance(sigmas, Tensor):
        values = [float(s) for s in sigmas]
        if not values or not all(s > 0 and math.isfinite(s) for s in values):
            raise ValueError(f"sigmas must be a non-empty sequence of finite numbers > 0, got {sigmas!r}")
    out = torch.as_tensor(sigmas, device=like.device, dtype=like.dtype)
    if out.dim() != 1 or out.numel() == 0:
        raise ValueError(f"sigmas must be one-dimensional and non-empty, got shape {tuple(out.shape)}")
    return out


def multilevel_dsm(energy: NoiseConditionalEnergy, x: Tensor, sigmas: Sequence[float] | Tensor, *,
                   generator: torch.Generator | None = None) -> tuple[Tensor, dict[str, Tensor]]:
    """Multi-level denoising score matching, the NCSN objective (Song & Ermon 2019; seed section 4.4).

    For the levels ``σ_1..σ_L`` the population objective is the average over levels of the σ²-weighted
    DSM loss (weight ``λ(σ) = σ²``, which makes every level's term of order one):

        L(θ) = 1/L Σ_l λ(σ_l) · ½ E‖s_θ(x + σ_l ε, σ_l) + ε/σ_l‖² = 1/L Σ_l ½ E‖σ_l s_θ(x̃, σ_l) + ε‖²

    with ``s_θ(·, σ) = -∇x E_θ(·, σ)``. Each row of ``x`` draws its own level uniformly at random (an
    unbiased one-sample estimate of the average over levels), one ``ε ~ N(0, I)`` and a single
    forward/backward pass covers the batch. ``sigmas``: ``(L,)`` positive values in any order (a Python
    sequence is validated; a tensor is trusted, to avoid a device synchronisation); ``x``:
    ``(batch, *event)``. ``metrics``: detached ``sigma_mean`` (mean of the levels drawn).

    >>> g = torch.Generator().manual_seed(0)
    >>> data = torch.randn(64, 2, generator=g)
    >>> loss, metrics = multilevel_dsm(NoiseConditionalMLP(2), data, [1.0, 0.3, 0.1], generator=g)
    >>> list(metrics)
    ['sigma_mean']
    """
    x = x.detach()
    levels = _sigma_tensor(sigmas, x)
    n = x.shape[0]
    idx = torch.randint(0, levels.numel(), (n,), generator=generator, device=x.device)
    sigma = levels[idx]
    eps = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    sigma_b = sigma.view(-1, *([1] * (x.dim() - 1)))
    x_noisy = x + sigma_b * eps
    with torch.enable_grad():
        _, g = energy_and_grad(lambda z: energy(z, sigma), x_noisy, create_graph=True)
        # σ s_θ + ε = ε - σ ∇E
        loss = 0.5 * _sum_event((eps - sigma_b * g).pow(2)).mean()
    return loss, {"sigma_mean": sigma.mean().detach()}


@torch.no_grad()
def annealed_langevin(energy: NoiseConditionalEnergy, x0: Tensor, sigmas: Sequence[float] | Tensor, *,
                      steps_per_level: int, step_size: float, generator: torch.Generator | None = None,
                      denoise: bool = False) -> Tensor:
    """Annealed Langevin dynamics (Song & Ermon 2019, Algorithm 1): Langevin at each level, largest first.

    For levels ``σ_1 >= σ_2 >= ... >= σ_L`` and ``steps_per_level`` steps at each, the step size of level
    ``l`` is ``α_l = step_size · σ_l² / σ_L²`` (so ``step_size`` is the step at the smallest level and the
    ratio ``α_l / σ_l²`` is the same at every level), and each step is, in this repository's Langevin
    convention,

        x ← x - (α_l / 2) ∇x E_θ(x, σ_l) + sqrt(α_l) ξ,      ξ ~ N(0, I).

    ``denoise=True`` adds Tweedie's denoising step ``x ← x - σ_L² ∇x E_θ(x, σ_L)`` at the end (the
    posterior mean of the clean point under the smallest-noise model), which removes the ``σ_L`` noise.
    Gradients come from :func:`anila.energies.base.energy_and_grad`: input gradients only, nothing flows
    into the energy's parameters; the loop never synchronises with the device (a tensor ``sigmas`` is read
    once, before it). ``x0``: ``(batch, *event)``, typically ``N(0, σ_1²I)`` draws; returns the final state,
    same shape, detached.

    >>> energy, sigmas = NoiseConditionalMLP(dim=2), [1.0, 0.3, 0.1]
    >>> x = annealed_langevin(energy, sigmas[0] * torch.randn(500, 2), sigmas, steps_per_level=10,
    ...                       step_size=1e-4)
    >>> x.shape
    torch.Size([500, 2])
    """
    levels = [float(s) for s in (sigmas.tolist() if isinstance(sigmas, Tensor) else sigmas)]
    if not levels or not all(s > 0 and math.isfinite(s) for s in levels):
        raise ValueError(f"sigmas must be a non-empty sequence of finite numbers > 0, got {sigmas!r}")
    if any(a < b for a, b in zip(levels[:-1], levels[1:], strict=True)):
        raise ValueError(f"sigmas must be sorted from the largest to the smallest, got {levels}")
    if steps_per_level < 1:
        raise ValueError(f"steps_per_level must be >= 1, got {steps_per_level}")
    if not (step_size > 0 and math.isfinite(step_size)):
        raise ValueError(f"step_size must be a finite number > 0, got {step_size!r}")
    x = x0.detach()
    n = x.shape[0]
    smallest = levels[-1]
    for level in levels:
        sigma = torch.full((n,), level, device=x.device, dtype=x.dtype)
        alpha = step_size * level**2 / smallest**2
        noise_std = math.sqrt(alpha)
        for _ in range(steps_per_level):
            _, g = energy_and_grad(lambda z, s=sigma: energy(z, s), x)
            noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            x = x - 0.5 * alpha * g + noise_std * noise
    if denoise:
        sigma = torch.full((n,), smallest, device=x.device, dtype=x.dtype)
        _, g = energy_and_grad(lambda z: energy(z, sigma), x)
        x = x - smallest**2 * g
    return x
