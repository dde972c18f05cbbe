"""Labelled data: samplers ``data(n, generator) -> (x, y)`` for objectives that learn from classes (JEM).

- Toys with a natural class (the mixture component a point was drawn from): ``8gaussians`` and ``25gaussians``
  (the component, 8 / 25 classes), ``moons`` (upper / lower moon) and ``circles`` (outer / inner circle).
  Their points follow the same distributions as :func:`anila.data.toy_dataset`'s (drawn here with their label,
  so the point streams differ).
- Labelled image sets (``digits``, ``mnist``, ``mnist5k``, ``cifar10``): images with their labels. ``digits`` has
  no test split of its own: :func:`digits_split` holds out a fixed 20 % (359 images) for evaluation, and the
  labelled sampler trains on the other 80 %.
- :class:`LabelledMixture`: a Gaussian mixture whose label is the component, with its exact density and Bayes
  posterior (tests: a classifier's accuracy against the Bayes rate).

:func:`labelled_data` is what the run layer calls when ``config.objective.needs_labels``.

>>> mixture = two_gaussians()
>>> x, y = mixture.sample(500, generator=torch.Generator().manual_seed(0))
>>> x.shape, y.shape, y.dtype
(torch.Size([500, 2]), torch.Size([500]), torch.int64)
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from anila.errors import DataError

LabelledSampler = Callable[[int, torch.Generator], tuple[Tensor, Tensor]]
DIGITS_TEST_FRACTION = 0.2  #: the share of ``digits`` held out from a labelled run, for its test accuracy
SPLIT_SEED = 0  #: the fixed permutation seed of :func:`digits_split`


class LabelledMixture:
    """``Σ_k w_k N(μ_k, s_k² I)`` with label ``y = k``: ``sample`` gives ``(x (n, d), y (n,))``; ``log_density(x)``
    is ``log p(x)`` ``(n,)``; ``posterior(x)`` is the Bayes ``p(y | x)`` ``(n, K)``."""

    def __init__(self, means: Tensor, stds: Tensor | float, weights: Tensor | None = None):
        self.means = torch.as_tensor(means, dtype=torch.float64)
        k = self.means.shape[0]
        self.stds = torch.as_tensor(stds, dtype=torch.float64).expand(k).clone()
        self.weights = torch.full((k,), 1.0 / k, dtype=torch.float64) if weights is None else \
            torch.as_tensor(weights, dtype=torch.float64) / torch.as_tensor(weights).sum()
        self.num_classes = k

    def sample(self, n: int, generator: torch.Generator | None = None, device=None,
               dtype: torch.dtype = torch.float32) -> tuple[Tensor, Tensor]:
        device = generator.device if device is None and generator is not None else device
        weights, means, stds = (t.to(device=device, dtype=dtype) for t in (self.weights, self.means, self.stds))
        y = torch.multinomial(weights, n, replacement=True, generator=generator)
        noise = torch.randn(n, means.shape[1], generator=generator, device=device, dtype=dtype)
        return means[y] + stds[y, None] * noise, y

    def joint_log_prob(self, x: Tensor) -> Tensor:
        """``log w_k + log N(x; μ_k, s_k²)``: ``(n, K)``."""
        x = x.to(torch.float64)
        d = self.means.shape[1]
        sq = (x[:, None, :] - self.means).pow(2).sum(-1)
        return (self.weights.log() - d * self.stds.log() - 0.5 * d * math.log(2 * math.pi)
                - 0.5 * sq / self.stds.pow(2))

    def log_density(self, x: Tensor) -> Tensor:
        return torch.logsumexp(self.joint_log_prob(x), dim=1)

    def posterior(self, x: Tensor) -> Tensor:
        return torch.softmax(self.joint_log_prob(x), dim=1)


def two_gaussians(separation: float = 2.0, std: float = 1.0) -> LabelledMixture:
    """Two equal-weight isotropic Gaussians at ``(±separation/2, 0)``: Bayes accuracy ``Φ(separation / (2 std))``
    (0.841 for the defaults)."""
    half = separation / 2
    return LabelledMixture(torch.tensor([[-half, 0.0], [half, 0.0]]), std)


def bayes_accuracy(separation: float = 2.0, std: float = 1.0) -> float:
    """The Bayes classifier's accuracy on :func:`two_gaussians`: ``Φ(separation / (2 std))``."""
    return 0.5 * (1 + math.erf(separation / (2 * std) / math.sqrt(2)))


def _gaussian_grid_mixture(name: str) -> LabelledMixture:
    if name == "8gaussians":
        angles = torch.arange(8, dtype=torch.float64) * (math.pi / 4)
        means = 2 * math.sqrt(2) * torch.stack([torch.cos(angles), torch.sin(angles)], dim=-1)
        return LabelledMixture(means, 0.5 / math.sqrt(2))
    grid = torch.arange(-2, 3, dtype=torch.float64) / math.sqrt(2)
    return LabelledMixture(torch.cartesian_prod(grid, grid), 0.05 / (2 * math.sqrt(2)))


def _moons(n, generator, device, dtype):
    theta = math.pi * torch.rand(n, generator=generator, device=device, dtype=dtype)
    y = torch.randint(0, 2, (n,), generator=generator, device=device)
    upper = y == 0
    a = torch.where(upper, torch.cos(theta), 1 - torch.cos(theta))
    b = torch.where(upper, torch.sin(theta), 0.5 - torch.sin(theta))
    pts = torch.stack([a, b], dim=-1) + 0.1 * torch.randn(n, 2, generator=generator, device=device, dtype=dtype)
    return torch.stack([2 * pts[:, 0] - 1, 2 * pts[:, 1] - 0.2], dim=-1), y


def _circles(n, generator, device, dtype):
    theta = 2 * math.pi * torch.rand(n, generator=generator, device=device, dtype=dtype)
    y = torch.randint(0, 2, (n,), generator=generator, device=device)
    radius = torch.where(y == 0, 1.0, 0.5).to(dtype)
    pts = radius[:, None] * torch.stack([torch.cos(theta), torch.sin(theta)], dim=-1)
    return 3 * (pts + 0.08 * torch.randn(n, 2, generator=generator, device=device, dtype=dtype)), y


LABELLED_TOYS: dict[str, int] = {"8gaussians": 8, "25gaussians": 25, "moons": 2, "circles": 2}  #: name: classes


def labelled_toy(name: str) -> LabelledSampler:
    """``data(n, generator) -> (x (n, 2), y (n,))`` for a toy of :data:`LABELLED_TOYS` (on the generator's device)."""
    if name not in LABELLED_TOYS:
        raise DataError(f"data.name = {name!r} has no labels; labelled toys: {', '.join(LABELLED_TOYS)} (or an "
                        "image set with labels)")
    if name in ("8gaussians", "25gaussians"):
        mixture = _gaussian_grid_mixture(name)
        return lambda n, g: mixture.sample(n, generator=g)
    make = {"moons": _moons, "circles": _circles}[name]
    return lambda n, g: make(n, g, g.device, torch.float32)


def digits_split(labels: Tensor, test_fraction: float = DIGITS_TEST_FRACTION) -> tuple[Tensor, Tensor]:
    """Indices ``(train, test)`` of a fixed seeded split (:data:`SPLIT_SEED`) of a set without its own test split."""
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(SPLIT_SEED))
    test = int(round(test_fraction * len(labels)))
    return order[test:], order[:test]


def labelled_images(config, split: str = "train") -> tuple[Tensor, Tensor]:
    """``(images, labels)`` of the config's labelled image set: ``split = "train"`` is what a labelled run trains
    on (``digits``: the 80 % of :func:`digits_split`; the others: their configured split, less
    ``holdout_class``); ``split = "test"``: the digits' held-out 20 %, or MNIST / CIFAR-10's test split."""
    from anila.data.images import build_dataset

    data = config.data
    images_set = build_dataset(data.name, data.root, image_size=data.image_size,
                               split=split if split == "test" else data.split)
    if data.holdout_class is not None:
        images_set = images_set.select(exclude=data.holdout_class)
    images, labels = images_set.images, images_set.labels
    if labels is None:
        raise DataError(f"data.name = {data.name!r} has no labels")
    if data.name == "digits":
        train, test = digits_split(labels)
        keep = test if split == "test" else train
        images, labels = images[keep], labels[keep]
    elif data.name == "mnist5k" and split == "test":
        raise DataError("mnist5k has no test split; evaluate on digits, mnist or cifar10")
    return images.contiguous(), labels


def labelled_data(config, device: torch.device):
    """What :func:`anila.train.run.load_data` returns for an objective with ``needs_labels``: ``(data, toy dataset
    or None, images or None)`` where ``data(n, generator)`` gives ``(x, y)``."""
    from anila.data.images import dequantize
    from anila.data.toy import toy_dataset
    from anila.data.validate import validate_batch, validate_images

    data = config.data
    if data.is_toy:
        sample = labelled_toy(data.name)
        x, y = sample(8, torch.Generator(device=device).manual_seed(0))
        validate_batch(x, name=data.name, batch_size=8, event_shape=data.event_shape, device=device)
        return sample, toy_dataset(data.name), None
    if data.is_points:
        raise DataError("data.name = \"points\" has no labels: a labelled objective (objective.name = \"jem\") "
                        f"needs a labelled toy ({', '.join(LABELLED_TOYS)}) or image set")
    images, labels = labelled_images(config, "train")
    validate_images(images, name=data.name, event_shape=data.event_shape)
    images, labels = images.to(device), labels.to(device)
    noise_std = data.noise_std

    def draw(n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        index = torch.randint(0, len(images), (n,), generator=generator, device=generator.device)
        x = images[index]
        if noise_std > 0:
            x = dequantize(x, noise_std=noise_std, generator=generator)
        return x, labels[index]

    return draw, None, images
