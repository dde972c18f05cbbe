"""Chain initialisation: fresh noise (short-run), data (CD-k), persistent chains (PCD), replay buffer.

The buffers are plain objects that the training loop owns, passes in and checkpoints
(``state_dict`` / ``load_state_dict`` hold tensors only, ready for safetensors).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

STRATEGIES = ("noise", "data", "persistent", "replay", "generator")
NOISE_DISTRIBUTIONS = ("gaussian", "uniform")
RESTARTS = ("noise", "data")


@dataclass(frozen=True)
class NoiseInit:
    """Noise to start chains from: ``scale · N(0, I)`` or ``U[low, high]`` per coordinate.

    >>> NoiseInit("gaussian", scale=2.0).sample(100, (2,)).shape
    torch.Size([100, 2])
    """

    distribution: str = "gaussian"
    scale: float = 1.0
    low: float = -1.0
    high: float = 1.0

    def __post_init__(self) -> None:
        if self.distribution not in NOISE_DISTRIBUTIONS:
            raise ValueError(f"noise must be one of {', '.join(NOISE_DISTRIBUTIONS)}; got {self.distribution!r}")
        if not (self.scale > 0 and math.isfinite(self.scale)):
            raise ValueError(f"scale must be a finite number > 0, got {self.scale!r}")
        if not self.low < self.high:
            raise ValueError(f"low must be < high, got low={self.low}, high={self.high}")

    def sample(self, num: int, event_shape: tuple[int, ...], *, generator: torch.Generator | None = None,
               device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> Tensor:
        shape = (num, *event_shape)
        if self.distribution == "gaussian":
            return self.scale * torch.randn(shape, generator=generator, device=device, dtype=dtype)
        u = torch.rand(shape, generator=generator, device=device, dtype=dtype)
        return self.low + (self.high - self.low) * u


class ReplayBuffer:
    """A buffer of past chain end points (IGEBM): draws restart from stored states, except a fraction
    ``reinit_fraction`` of them, which restart from noise (or from given points: ``sample(..., restarts=)``).
    Filled with noise at creation.

    ``sample(num)`` returns ``(x0, indices)``; after sampling, ``push(x, indices)`` writes the chains' end
    points back. IGEBM used ``capacity = 10000`` and ``reinit_fraction = 0.05``.

    >>> buffer = ReplayBuffer(1000, (2,), NoiseInit(), reinit_fraction=0.05)
    >>> x0, idx = buffer.sample(100)
    >>> buffer.push(x0, idx)
    """

    def __init__(self, capacity: int, event_shape: tuple[int, ...], noise: NoiseInit,
                 reinit_fraction: float = 0.05, *, generator: torch.Generator | None = None,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None):
        if capacity < 1:
            raise ValueError(f"buffer_size must be >= 1, got {capacity}")
        if not 0.0 <= reinit_fraction <= 1.0:
            raise ValueError(f"reinit_fraction must be in [0, 1], got {reinit_fraction}")
        self.noise = noise
        self.reinit_fraction = reinit_fraction
        self.event_shape = tuple(event_shape)
        self.chains = noise.sample(capacity, self.event_shape, generator=generator, device=device, dtype=dtype)

    @property
    def capacity(self) -> int:
        return self.chains.shape[0]

    def _indices(self, num: int, generator: torch.Generator | None) -> Tensor:
        if num > self.capacity:
            raise ValueError(f"cannot draw {num} chains from a buffer of {self.capacity}; raise buffer_size")
        perm = torch.randperm(self.capacity, generator=generator, device=self.chains.device)
        return perm[:num]

    def sample(self, num: int, generator: torch.Generator | None = None,
               restarts: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``num`` starts from the buffer, a fraction ``reinit_fraction`` of them replaced by fresh points:
        rows of ``restarts`` (``(num, *event)``, e.g. the positive batch) when given, else noise."""
        indices = self._indices(num, generator)
        x0 = self.chains[indices]
        if self.reinit_fraction > 0:
            if restarts is None:
                fresh = self.noise.sample(num, self.event_shape, generator=generator, device=x0.device,
                                          dtype=x0.dtype)
            else:
                fresh = restarts.detach().to(x0.dtype)
            u = torch.rand(num, generator=generator, device=x0.device, dtype=x0.dtype)
            restart = (u < self.reinit_fraction).view(-1, *([1] * len(self.event_shape)))
            x0 = torch.where(restart, fresh, x0)
        return x0, indices

    def push(self, x: Tensor, indices: Tensor) -> None:
        self.chains[indices] = x.detach().to(self.chains.dtype)

    def state_dict(self) -> dict[str, Tensor]:
        return {"chains": self.chains.clone()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        chains = state["chains"]
        if chains.shape != self.chains.shape:
            raise ValueError(f"replay buffer shape {tuple(chains.shape)} does not match {tuple(self.chains.shape)}")
        self.chains = chains.to(device=self.chains.device, dtype=self.chains.dtype).clone()


class PersistentChains(ReplayBuffer):
    """Persistent contrastive divergence (Tieleman 2008): exactly ``num_chains`` chains, all continued at
    every draw, none restarted."""

    def __init__(self, num_chains: int, event_shape: tuple[int, ...], noise: NoiseInit, **kwargs):
        super().__init__(num_chains, event_shape, noise, reinit_fraction=0.0, **kwargs)

    def _indices(self, num: int, generator: torch.Generator | None) -> Tensor:
        if num != self.capacity:
            raise ValueError(f"persistent chains hold {self.capacity} chains but {num} were asked for")
        return torch.arange(num, device=self.chains.device)


@dataclass(frozen=True)
class ChainInit:
    """How each training iteration starts its chains (the ``[chains]`` config section).

    ``init``: ``noise`` (fresh every iteration: short-run EBM and the AniLA experiments), ``data`` (CD-k,
    from the positive batch), ``persistent`` (PCD) or ``replay`` (buffer of ``buffer_size`` with
    ``reinit_fraction`` restarted) or ``generator`` (the objective supplies the starts, e.g. cooperative
    learning's generator; :meth:`initial` refuses it). ``noise`` / ``scale`` / ``low`` / ``high`` define the
    noise (for a ``generator`` run: the starts of evaluation chains).

    ``restart`` (replay only): where the restarted fraction starts. ``noise`` (IGEBM) draws fresh noise;
    ``data`` takes the same rows of the iteration's positive batch. Data restarts are consistent: when the
    model equals the data distribution, a chain started on a data point is already in equilibrium, so the
    negatives are unbiased however few steps they get. Noise restarts are biased toward where the noise
    lands until the chains have mixed. On the rings toy, data restarts and EMA weights took the
    ``recommended`` recipe from KL 0.14 to 0.08 (docs/results/time_to_quality.md, "The second sweep"). On
    images they fail: the model never sees chains from noise, and fresh chains then read as noise.
    """

    init: str = "noise"
    noise: str = "gaussian"
    scale: float = 1.0
    low: float = -1.0
    high: float = 1.0
    buffer_size: int = 10000
    reinit_fraction: float = 0.05
    restart: str = "noise"

    def __post_init__(self) -> None:
        if self.init not in STRATEGIES:
            raise ValueError(f"init must be one of {', '.join(STRATEGIES)}; got {self.init!r}")
        if self.restart not in RESTARTS:
            raise ValueError(f"restart must be one of {', '.join(RESTARTS)}; got {self.restart!r}")
        if self.restart != "noise" and self.init != "replay":
            raise ValueError(f"restart = {self.restart!r} applies to init = \"replay\" only (init is {self.init!r}); "
                             "drop restart or use the replay buffer")
        if self.buffer_size < 1:
            raise ValueError(f"buffer_size must be >= 1, got {self.buffer_size}")
        if not 0.0 <= self.reinit_fraction <= 1.0:
            raise ValueError(f"reinit_fraction must be in [0, 1], got {self.reinit_fraction}")
        self.noise_init()  # validates the noise fields

    def noise_init(self) -> NoiseInit:
        return NoiseInit(self.noise, scale=self.scale, low=self.low, high=self.high)

    def make_buffer(self, batch_size: int, event_shape: tuple[int, ...], *,
                    generator: torch.Generator | None = None, device=None, dtype=None) -> ReplayBuffer | None:
        """The buffer the training loop owns for this strategy (``None`` for ``noise`` and ``data``)."""
        kwargs = dict(generator=generator, device=device, dtype=dtype)
        if self.init == "replay":
            return ReplayBuffer(self.buffer_size, event_shape, self.noise_init(), self.reinit_fraction, **kwargs)
        if self.init == "persistent":
            return PersistentChains(batch_size, event_shape, self.noise_init(), **kwargs)
        return None

    def initial(self, x_data: Tensor, buffer: ReplayBuffer | None,
                generator: torch.Generator | None = None) -> tuple[Tensor, Tensor | None]:
        """Starting points ``(batch, *event)`` for one iteration, and buffer indices to push back to."""
        if self.init == "noise":
            x0 = self.noise_init().sample(x_data.shape[0], tuple(x_data.shape[1:]), generator=generator,
                                          device=x_data.device, dtype=x_data.dtype)
            return x0, None
        if self.init == "data":
            return x_data.detach().clone(), None
        if self.init == "generator":
            raise ValueError("chains.init = \"generator\": the objective supplies the chain starts (its "
                             "chain_starts), and this one does not; use an objective that does (cooperative)")
        if buffer is None:
            raise ValueError(f"chain init {self.init!r} needs the buffer from make_buffer()")
        restarts = x_data if self.init == "replay" and self.restart == "data" else None
        return buffer.sample(x_data.shape[0], generator, restarts)
