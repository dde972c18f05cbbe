"""Networks that draw samples in one forward pass: a RealNVP flow with an exact log-density, and a latent-variable
generator ``x = g(z) (+ σ ε)``. They are the auxiliary samplers of adversarial and cooperative training
(:mod:`anila.objectives.adversarial`, :mod:`anila.objectives.cooperative`), not energies.

Both work on flattened events: ``sample(n, generator)`` returns ``(n, *event_shape)``.

>>> flow = CouplingFlow(dim=2, num_layers=4, width=16)
>>> x, log_q = flow.sample(5, torch.Generator().manual_seed(0))
>>> x.shape, log_q.shape
(torch.Size([5, 2]), torch.Size([5]))
>>> torch.allclose(flow.log_prob(x), log_q, atol=1e-5)
True
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def _mlp(d_in: int, d_out: int, width: int, depth: int, *, zero_last: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Linear(d_in if i == 0 else width, width), nn.SiLU()]
    last = nn.Linear(width if depth else d_in, d_out)
    if zero_last:  # the coupling starts as the identity
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
    return nn.Sequential(*layers, last)


class AffineCoupling(nn.Module):
    """One RealNVP affine coupling (Dinh, Sohl-Dickstein, Bengio 2017): with a binary ``mask``,

        x = m ⊙ z + (1 - m) ⊙ (z ⊙ exp(s(m ⊙ z)) + t(m ⊙ z)),    log |det ∂x/∂z| = Σ (1 - m) ⊙ s,

    ``s = max_log_scale · tanh(·)`` bounded so that one layer scales a coordinate by at most
    ``exp(max_log_scale)``. ``s`` and ``t`` come from one MLP whose last layer is zero: the identity at init."""

    mask: Tensor

    def __init__(self, mask: Tensor, width: int = 64, depth: int = 2, max_log_scale: float = 2.0):
        super().__init__()
        self.register_buffer("mask", mask.float().clone(), persistent=False)  # fixed by construction
        self.net = _mlp(mask.numel(), 2 * mask.numel(), width, depth, zero_last=True)
        self.max_log_scale = float(max_log_scale)

    def _scale_shift(self, masked: Tensor) -> tuple[Tensor, Tensor]:
        s, t = self.net(masked).chunk(2, dim=-1)
        free = 1 - self.mask
        return self.max_log_scale * torch.tanh(s / self.max_log_scale) * free, t * free

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """``z -> (x, log|det ∂x/∂z|)``, ``(n, D) -> ((n, D), (n,))``."""
        s, t = self._scale_shift(z * self.mask)
        return z * self.mask + (1 - self.mask) * (z * torch.exp(s) + t), s.sum(-1)

    def inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``x -> (z, log|det ∂z/∂x|)``."""
        s, t = self._scale_shift(x * self.mask)
        return x * self.mask + (1 - self.mask) * (x - t) * torch.exp(-s), -s.sum(-1)


class CouplingFlow(nn.Module):
    """A RealNVP flow ``x = a ⊙ f_L ∘ … ∘ f_1(z) + b`` with ``z ~ N(0, I_D)``: ``num_layers`` affine couplings
    with alternating (checkerboard) masks, then an elementwise affine ``(a = exp(log_scale), b = loc)`` that
    :meth:`fit` sets to the data's mean and standard deviation. Its log-density is exact:

        log q(x) = log N(z; 0, I) - Σ_l log|det ∂f_l/∂z| - Σ log a.

    ``dim`` is the flattened event size ``D >= 2``; samples are reshaped to ``event_shape`` (default ``(D,)``).
    """

    def __init__(self, dim: int, num_layers: int = 6, width: int = 64, depth: int = 2,
                 max_log_scale: float = 2.0, event_shape: tuple[int, ...] | None = None):
        super().__init__()
        if dim < 2 or num_layers < 1:
            raise ValueError(f"a coupling flow needs dim >= 2 and num_layers >= 1; got {dim}, {num_layers}")
        self.dim = dim
        self.event_shape = (dim,) if event_shape is None else tuple(event_shape)
        checker = (torch.arange(dim) % 2).float()
        self.layers = nn.ModuleList(AffineCoupling(checker if i % 2 == 0 else 1 - checker, width, depth,
                                                   max_log_scale) for i in range(num_layers))
        self.loc = nn.Parameter(torch.zeros(dim))
        self.log_scale = nn.Parameter(torch.zeros(dim))

    @torch.no_grad()
    def fit(self, x: Tensor) -> CouplingFlow:
        """Set the output affine to the mean and standard deviation of data ``x`` ``(n, *event)``."""
        flat = x.detach().flatten(1).to(self.loc)
        self.loc.copy_(flat.mean(0))
        self.log_scale.copy_(flat.std(0).clamp_min(1e-3).log())
        return self

    def _base_log_prob(self, z: Tensor) -> Tensor:
        return -0.5 * z.pow(2).sum(-1) - 0.5 * self.dim * math.log(2 * math.pi)

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """``n`` reparameterised samples (their graph reaches the flow's parameters) and their ``log q``."""
        z = torch.randn(n, self.dim, generator=generator, device=self.loc.device, dtype=self.loc.dtype)
        log_q = self._base_log_prob(z)
        for layer in self.layers:
            z, log_det = layer(z)
            log_q = log_q - log_det
        x = z * torch.exp(self.log_scale) + self.loc
        return x.view(n, *self.event_shape), log_q - self.log_scale.sum()

    def log_prob(self, x: Tensor) -> Tensor:
        """Exact ``log q(x)`` of ``(n, *event)`` points, ``(n,)``."""
        z = (x.flatten(1) - self.loc) * torch.exp(-self.log_scale)
        log_det = -self.log_scale.sum().expand(z.shape[0])
        for layer in reversed(self.layers):
            z, step = layer.inverse(z)  # type: ignore[operator]  # an AffineCoupling of the ModuleList
            log_det = log_det + step
        return self._base_log_prob(z) + log_det


class LatentGenerator(nn.Module):
    """A generator ``g(z)``, ``z ~ N(0, I_latent_dim)``: an MLP whose output ``a ⊙ MLP(z) + b`` starts at the data's
    scale (:meth:`fit`); with ``sigma > 0`` the noisy sampler ``x = g(z) + σ ε``, ``ε ~ N(0, I)``, its ``σ``
    a parameter when ``learn_sigma``.

    ``sample(n, generator)`` returns ``(x, z)``: the samples ``(n, *event_shape)`` (their graph reaches the
    parameters) and the latents ``(n, latent_dim)``."""

    def __init__(self, dim: int, latent_dim: int = 2, width: int = 64, depth: int = 2, sigma: float = 0.0,
                 event_shape: tuple[int, ...] | None = None, learn_sigma: bool = False):
        super().__init__()
        if dim < 1 or latent_dim < 1 or sigma < 0 or (learn_sigma and sigma == 0):
            raise ValueError(f"a generator needs dim, latent_dim >= 1 and sigma >= 0 (> 0 to learn it); got {dim}, "
                             f"{latent_dim}, {sigma}")
        self.dim, self.latent_dim = dim, latent_dim
        self.event_shape = (dim,) if event_shape is None else tuple(event_shape)
        self.net = _mlp(latent_dim, dim, width, depth)
        self.loc = nn.Parameter(torch.zeros(dim))
        self.log_scale = nn.Parameter(torch.zeros(dim))
        log_sigma = torch.tensor(math.log(sigma) if sigma > 0 else -math.inf)
        if learn_sigma:
            self.log_sigma = nn.Parameter(log_sigma)
        else:
            self.register_buffer("log_sigma", log_sigma)

    @property
    def sigma(self) -> Tensor:
        """The output noise ``σ`` (a scalar tensor; learned when ``learn_sigma``)."""
        return torch.exp(self.log_sigma)

    @torch.no_grad()
    def fit(self, x: Tensor) -> LatentGenerator:
        """Set the output affine to the mean and standard deviation of data ``x`` ``(n, *event)``."""
        flat = x.detach().flatten(1).to(self.loc)
        self.loc.copy_(flat.mean(0))
        self.log_scale.copy_(flat.std(0).clamp_min(1e-3).log())
        return self

    def mean(self, z: Tensor) -> Tensor:
        """``g(z)``: ``(n, latent_dim) -> (n, dim)`` (flat)."""
        return self.net(z) * torch.exp(self.log_scale) + self.loc

    def latents(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return torch.randn(n, self.latent_dim, generator=generator, device=self.loc.device, dtype=self.loc.dtype)

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        x, _, z = self.sample_with_means(n, generator)
        return x, z

    def sample_with_means(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """``(x, g(z), z)``: samples ``(n, *event_shape)``, their flat means ``(n, dim)`` and latents."""
        z = self.latents(n, generator)
        means = self.mean(z)
        x = means
        if torch.isfinite(self.log_sigma):
            x = means + self.sigma * torch.randn(means.shape, generator=generator, device=means.device,
                                                 dtype=means.dtype)
        return x.view(n, *self.event_shape), means, z
