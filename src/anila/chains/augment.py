"""Data augmentation transitions for image chains (improved CD, Du et al. 2021, section 2.3, Algorithms 1-2).

Langevin chains rarely jump between modes that are close for a person but far apart in pixel space.
Improved CD therefore mixes in random image augmentations (resized crop, horizontal flip, colour
distortion, Gaussian blur) as extra, always-taken transitions: during training each chain drawn from
the replay buffer is augmented once before its ``K`` sampler steps (Algorithm 1); at generation time
the chains are augmented every ``K`` steps (Algorithm 2, :func:`augment_every_n`; the paper uses
``K = 20``).

The defaults follow the authors' code (the paper's appendix is not in the seed): a resized crop of
area scale ``U(0.08, 1)`` and aspect ratio in ``(3/4, 4/3)`` back to the input size, a horizontal flip
with probability 0.5, SimCLR colour distortion of strength 1 (``ColorJitter(0.8, 0.8, 0.8, 0.4)`` with
probability 0.8, then greyscale with probability 0.2), and a ``5×5`` Gaussian blur with
``σ ~ U(0.1, 2)`` with probability 0.5. Every parameter is drawn per image.

Randomness: kornia draws its parameters from the *global* CPU torch RNG. Given a ``generator``, the
call draws one seed from it, then runs kornia inside ``torch.random.fork_rng`` with the global RNG
seeded from that seed, so the output is a function of the generator's state alone, and the global RNG
is left exactly as it was. Drawing the seed reads one number back from the generator's device (one
host sync on a GPU generator, once per call, not per sampler step). With ``generator=None`` kornia
uses, and advances, the global RNG as usual. Because the global RNG is process-wide, two threads must
not augment (or otherwise draw from the global RNG) at the same time.

kornia is an optional dependency (the ``images`` extra), imported on the first call.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from anila.energies.base import Energy
from anila.samplers.base import Sampler
from anila.samplers.runner import run_chains


def _kornia_augmentation():
    """``kornia.augmentation``, imported on first use: it is an optional dependency and slow to import."""
    try:
        import kornia.augmentation
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("augmentation transitions need kornia: pip install 'anila[images]'") from None
    return kornia.augmentation


def _probability(name: str, value: float) -> None:
    if isinstance(value, bool) or not (0.0 <= value <= 1.0):
        raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")


@dataclass(frozen=True)
class Augmentation:
    """A random augmentation transition for images ``(B, C, H, W)`` in ``[-1, 1]``.

    ``flip``: probability of a horizontal flip. ``color_jitter``: ``(brightness, contrast, saturation,
    hue)`` strengths as in ``ColorJitter`` (``None`` disables colour distortion), applied with probability
    ``color_jitter_p``, followed by greyscale with probability ``grayscale``. Images with ``C != 3`` get
    brightness and contrast only, and no greyscale. ``resized_crop``: area scale range of the crop (``None``
    disables it), with aspect ratios in ``crop_ratio``, resized back to ``(H, W)``. ``blur``:
    ``(kernel_size, sigma_min, sigma_max)`` of a Gaussian blur (``None`` disables it) applied with
    probability ``blur_p``. The order is crop, flip, colour, blur (the authors' code). Defaults: see the
    module docstring. ``__call__`` keeps shape, dtype and device, returns values in ``[-1, 1]`` and
    carries no gradient (chains are constants of the loss until the last sampler step).

    >>> augment = Augmentation()
    >>> x = augment(torch.rand(8, 3, 32, 32) * 2 - 1, generator=torch.Generator().manual_seed(0))
    >>> x.shape
    torch.Size([8, 3, 32, 32])
    """

    flip: float = 0.5
    color_jitter: tuple[float, float, float, float] | None = (0.8, 0.8, 0.8, 0.4)
    color_jitter_p: float = 0.8
    grayscale: float = 0.2
    resized_crop: tuple[float, float] | None = (0.08, 1.0)
    crop_ratio: tuple[float, float] = (3.0 / 4.0, 4.0 / 3.0)
    blur: tuple[int, float, float] | None = (5, 0.1, 2.0)
    blur_p: float = 0.5

    def __post_init__(self) -> None:
        for name in ("color_jitter", "resized_crop", "crop_ratio", "blur"):
            value = getattr(self, name)
            if value is not None:  # configs give lists: store tuples so the dataclass stays hashable
                object.__setattr__(self, name, tuple(value))
        for name in ("flip", "color_jitter_p", "grayscale", "blur_p"):
            _probability(name, getattr(self, name))
        if self.color_jitter is not None:
            if len(self.color_jitter) != 4 or min(self.color_jitter) < 0 or self.color_jitter[3] > 0.5:
                raise ValueError("color_jitter must be (brightness, contrast, saturation, hue), all >= 0 and "
                                 f"hue <= 0.5; got {self.color_jitter!r}")
        if self.resized_crop is not None:
            if len(self.resized_crop) != 2 or not 0 < self.resized_crop[0] <= self.resized_crop[1] <= 1:
                raise ValueError("resized_crop must be (low, high) with 0 < low <= high <= 1, "
                                 f"got {self.resized_crop!r}")
        if len(self.crop_ratio) != 2 or not 0 < self.crop_ratio[0] <= self.crop_ratio[1]:
            raise ValueError(f"crop_ratio must be (low, high) with 0 < low <= high, got {self.crop_ratio!r}")
        if self.blur is not None:
            if (len(self.blur) != 3 or int(self.blur[0]) != self.blur[0] or self.blur[0] < 3 or self.blur[0] % 2 == 0
                    or not 0 < self.blur[1] <= self.blur[2] or not math.isfinite(self.blur[2])):
                raise ValueError("blur must be (odd kernel_size >= 3, sigma_min, sigma_max) with "
                                 f"0 < sigma_min <= sigma_max; got {self.blur!r}")

    def pipeline(self, channels: int, height: int, width: int) -> nn.Sequential:
        """The kornia modules applied to ``[0, 1]`` images of this shape (empty when all are disabled)."""
        K = _kornia_augmentation()
        ops: list[nn.Module] = []
        if self.resized_crop is not None:
            ops.append(K.RandomResizedCrop((height, width), scale=self.resized_crop, ratio=self.crop_ratio))
        if self.flip > 0:
            ops.append(K.RandomHorizontalFlip(p=self.flip))
        if self.color_jitter is not None and self.color_jitter_p > 0:
            brightness, contrast, saturation, hue = self.color_jitter
            if channels != 3:  # saturation and hue need RGB
                saturation = hue = 0.0
            ops.append(K.ColorJitter(brightness, contrast, saturation, hue, p=self.color_jitter_p))
        if channels == 3 and self.color_jitter is not None and self.grayscale > 0:
            ops.append(K.RandomGrayscale(p=self.grayscale))
        if self.blur is not None and self.blur_p > 0:
            kernel = int(self.blur[0])
            ops.append(K.RandomGaussianBlur((kernel, kernel), (self.blur[1], self.blur[2]), p=self.blur_p))
        return nn.Sequential(*ops)

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        if x.dim() != 4:
            raise ValueError(f"augmentation needs images shaped (B, C, H, W); got {tuple(x.shape)}")
        ops = self.pipeline(*x.shape[1:])
        if len(ops) == 0 or x.shape[0] == 0:
            return x.detach().clone()
        work_dtype = x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32
        unit = ((x.detach().to(work_dtype) + 1) / 2).clamp(0, 1)
        with torch.no_grad():
            if generator is None:
                out = ops(unit)
            else:
                seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device).item())
                devices = [x.device.index] if x.is_cuda else []
                with torch.random.fork_rng(devices=devices):
                    torch.random.default_generator.manual_seed(seed)
                    if x.is_cuda:  # kornia draws on the CPU today; pin the device RNG too, in case it ever does
                        with torch.cuda.device(x.device):
                            torch.cuda.manual_seed(seed)
                    out = ops(unit)
        return (out.clamp(0, 1) * 2 - 1).to(x.dtype)


def augment_every_n(sampler: Sampler, energy: Energy, x0: Tensor, num_steps: int, every: int,
                    augmentation: Augmentation, generator: torch.Generator | None = None) -> Tensor:
    """Improved-CD generation (Algorithm 2): augment, run ``every`` sampler steps, repeat.

    ``num_steps`` sampler transitions in all, in ``ceil(num_steps / every)`` runs; each run starts with
    an augmentation of the current samples (the first one included, as in Algorithm 2) and is a fresh
    :func:`~anila.samplers.run_chains` call (cached energies and a frozen AniLA ``γ`` do not survive an
    augmentation). The last run may be shorter. The output is the state after the last sampler step,
    not augmented. ``x0``: ``(B, C, H, W)`` in ``[-1, 1]``; returns the same shape, detached. The paper
    augments every 20 steps at test time. Deterministic given ``generator``.

    >>> x = augment_every_n(Langevin(0.01, clamp=(-1, 1)), energy, x0, num_steps=200, every=20,
    ...                     augmentation=Augmentation(), generator=g)              # doctest: +SKIP
    """
    if num_steps < 0 or every < 1:
        raise ValueError(f"num_steps must be >= 0 and every >= 1; got {num_steps}, {every}")
    x = x0.detach()
    done = 0
    while done < num_steps:
        steps = min(every, num_steps - done)
        x = augmentation(x, generator)
        x = run_chains(sampler, energy, x, steps, generator=generator, check_start=False).x.detach()
        done += steps
    return x
