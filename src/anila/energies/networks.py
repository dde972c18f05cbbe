"""Neural energies.

``MLPEnergy`` is the AniLA paper's toy network: five 1x1 convolutions applied to a single point are
exactly five linear layers, so it is written as an MLP ``dim -> width -> ... -> width -> 1``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

ACTIVATIONS = ("leaky_relu", "relu", "silu", "elu", "softplus", "tanh")


def make_activation(name: str, negative_slope: float = 0.05) -> nn.Module:
    """Build an activation by name; ``negative_slope`` is used by ``leaky_relu`` only."""
    if name == "leaky_relu":
        return nn.LeakyReLU(negative_slope)
    table = {"relu": nn.ReLU, "silu": nn.SiLU, "elu": nn.ELU, "softplus": nn.Softplus, "tanh": nn.Tanh}
    if name not in table:
        raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}; got {name!r}")
    return table[name]()


def check_input_dtype(module: nn.Module, x: Tensor) -> None:
    """Raise ``ValueError`` when ``x`` is not of the module's floating-point dtype (an integer or float64 state
    passed to a float32 model): cast the state (``x.float()``) or the model (``model.double()``) first."""
    weight = next(module.parameters(), None)
    if weight is not None and x.dtype != weight.dtype:
        raise ValueError(f"{type(module).__name__} has {weight.dtype} weights but got a {x.dtype} input; cast the "
                         f"input with x.to({weight.dtype}) (or the model with .to({x.dtype}))")


def check_num_classes(num_classes: int) -> None:
    """``num_classes`` is 0 (one energy read-out) or a class head of at least 2 logits."""
    if num_classes != 0 and num_classes < 2:
        raise ValueError(f"num_classes must be 0 (no class head) or >= 2, got {num_classes}")


class MLPEnergy(nn.Module):
    """Per-point MLP energy ``E(x) = MLP(x.flatten(1))``, input ``(batch, dim)`` -> ``(batch,)``.

    ``depth`` hidden layers of ``width`` units, each a linear map followed by the activation, then a
    linear read-out: ``depth=4`` gives the paper's five layers (LeakyReLU slope 0.05, width 32-64).

    ``num_classes = C >= 2`` makes it a classifier read as an energy (JEM, :mod:`anila.objectives.jem`): the
    read-out gives ``C`` logits ``logits(x)`` ``(batch, C)`` and ``E(x) = -logsumexp_y logits(x)[y]``.

    ``base_scale = s > 0`` adds a Gaussian base energy, ``E(x) = MLP(x) + ‖x‖² / (2 s²)``, so that the network
    learns the log ratio of the density to ``N(0, s² I)``. The MLP grows at most linearly far from the origin
    (every activation here is asymptotically linear or bounded), so the quadratic term makes ``exp(-E)``
    normalisable for any weights, and chains started far out always drift back in. Without it, the energy
    may fall without bound along directions that no negative sample visits: on a 50-D Gaussian mixture the
    samples of a run without it ran away from the data (``docs/results/time_to_quality.md``, "Point data
    beyond 2-D"). For standardised data (unit
    variance per coordinate, as runs on point files are), ``s = 1`` is the moment-matched Gaussian. With a
    class head the base is subtracted from every logit, which leaves ``p(y | x)`` unchanged.

    >>> energy = MLPEnergy(dim=2, width=64, depth=4)
    >>> energy(torch.zeros(10, 2)).shape
    torch.Size([10])
    >>> based = MLPEnergy(dim=2, base_scale=1.0)
    >>> x = torch.randn(5, 2)
    >>> torch.allclose(based(x) - based.net(x).squeeze(-1), 0.5 * x.pow(2).sum(1))
    True
    """

    def __init__(self, dim: int = 2, width: int = 64, depth: int = 4, activation: str = "leaky_relu",
                 negative_slope: float = 0.05, num_classes: int = 0, base_scale: float = 0.0):
        super().__init__()
        for name, value in (("dim", dim), ("width", width), ("depth", depth)):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if not (base_scale >= 0 and base_scale != float("inf")):
            raise ValueError(f"base_scale must be 0 (no base energy) or a finite number > 0, got {base_scale}")
        check_num_classes(num_classes)
        make_activation(activation)  # validate the name before building layers
        layers: list[nn.Module] = []
        fan_in = dim
        for _ in range(depth):
            layers += [nn.Linear(fan_in, width), make_activation(activation, negative_slope)]
            fan_in = width
        layers.append(nn.Linear(fan_in, max(num_classes, 1)))
        self.net = nn.Sequential(*layers)
        self.dim, self.num_classes, self.base_scale = dim, num_classes, base_scale

    def base(self, x: Tensor) -> Tensor:
        """The base energy ``‖x‖² / (2 s²)`` ``(batch,)``; zeros when ``base_scale = 0``."""
        flat = x.flatten(1)
        if not self.base_scale:
            return flat.new_zeros(flat.shape[0])
        return flat.pow(2).sum(1) / (2 * self.base_scale**2)

    def logits(self, x: Tensor) -> Tensor:
        """The class logits ``(batch, num_classes)`` of a classifier head (``num_classes >= 2``)."""
        if not self.num_classes:
            raise ValueError("this MLPEnergy has no class head; build it with num_classes >= 2")
        check_input_dtype(self, x)
        logits = self.net(x.flatten(1))
        return logits - self.base(x)[:, None] if self.base_scale else logits

    def forward(self, x: Tensor) -> Tensor:
        if self.num_classes:
            return -torch.logsumexp(self.logits(x), dim=1)
        check_input_dtype(self, x)
        energy = self.net(x.flatten(1)).squeeze(-1)
        return energy + self.base(x) if self.base_scale else energy
