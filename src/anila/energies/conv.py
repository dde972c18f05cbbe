"""Image energies ``(batch, C, H, W) -> (batch,)``.

- :class:`ConvNetEnergy`: the "vanilla" ConvNet of ebm-anatomy / short-run EBM (Nijkamp et al.), used by the
  AniLA experiments: a 3×3 stride-1 conv to ``n_f`` channels, then 4×4 stride-2 convs doubling the width
  while the map is at least 8 wide, then a conv over the whole remaining map to one number. For 32×32 inputs
  and ``n_f = 64`` / ``128`` this is the short-run EBM CIFAR-10 net.
- :class:`ResNetEnergy`: IGEBM / improved-CD style residual energy with options for spectral norm, a
  self-attention block and layer norm.
- :class:`MultiScaleEnergy`: ``E(x) = Σ_s E_s(avgpool_s(x))`` at full, 1/2 and 1/4 resolution (improved CD).
- :class:`ClassConditionalEnergy`: a feature net with a class head; ``E(x, y) = -logit_y(x)`` and the
  marginal ``E(x) = -logsumexp_y logit_y(x)`` (JEM's reading of a classifier as an energy).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from anila.energies.networks import check_input_dtype, check_num_classes, make_activation


class ConvNetEnergy(nn.Module):
    """The vanilla ConvNet energy (3×3 conv, 4×4 stride-2 convs, LeakyReLU, width ``n_f``).

    ``num_classes = C >= 2``: the last conv gives ``C`` logits (``logits(x)``) and ``E(x) = -logsumexp`` of them
    (JEM, :mod:`anila.objectives.jem`).

    >>> ConvNetEnergy(in_channels=3, n_f=32, image_size=32)(torch.zeros(4, 3, 32, 32)).shape
    torch.Size([4])
    """

    def __init__(self, in_channels: int = 3, n_f: int = 64, image_size: int = 32, activation: str = "leaky_relu",
                 negative_slope: float = 0.05, num_classes: int = 0):
        super().__init__()
        for name, value, low in (("n_f", n_f, 1), ("in_channels", in_channels, 1), ("image_size", image_size, 4)):
            if value < low:
                raise ValueError(f"{name} must be >= {low}, got {value}")
        check_num_classes(num_classes)
        layers: list[nn.Module] = [nn.Conv2d(in_channels, n_f, 3, 1, 1), make_activation(activation, negative_slope)]
        width, size = n_f, image_size
        while size >= 8:
            layers += [nn.Conv2d(width, 2 * width, 4, 2, 1), make_activation(activation, negative_slope)]
            width, size = 2 * width, (size + 2 - 4) // 2 + 1
        layers.append(nn.Conv2d(width, max(num_classes, 1), size, 1, 0))
        self.net = nn.Sequential(*layers)
        self.image_size, self.num_classes = image_size, num_classes

    def logits(self, x: Tensor) -> Tensor:
        """The class logits ``(batch, num_classes)`` of a classifier head (``num_classes >= 2``)."""
        if not self.num_classes:
            raise ValueError("this ConvNetEnergy has no class head; build it with num_classes >= 2")
        check_input_dtype(self, x)
        return self.net(x).flatten(1)

    def forward(self, x: Tensor) -> Tensor:
        if self.num_classes:
            return -torch.logsumexp(self.logits(x), dim=1)
        check_input_dtype(self, x)
        return self.net(x).flatten(1).squeeze(1)


def _maybe_sn(module: nn.Module, spectral_norm: bool) -> nn.Module:
    return nn.utils.parametrizations.spectral_norm(module) if spectral_norm else module


class _ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, downsample: bool, spectral_norm: bool, layer_norm: bool,
                 activation: str):
        super().__init__()
        self.conv1 = _maybe_sn(nn.Conv2d(c_in, c_out, 3, 1, 1), spectral_norm)
        self.conv2 = _maybe_sn(nn.Conv2d(c_out, c_out, 3, 1, 1), spectral_norm)
        self.skip = _maybe_sn(nn.Conv2d(c_in, c_out, 1), spectral_norm) if c_in != c_out else nn.Identity()
        self.norm1 = nn.GroupNorm(1, c_in) if layer_norm else nn.Identity()  # LayerNorm over (C, H, W)
        self.norm2 = nn.GroupNorm(1, c_out) if layer_norm else nn.Identity()
        self.act = make_activation(activation, 0.2)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv1(self.act(self.norm1(x)))
        h = self.conv2(self.act(self.norm2(h)))
        out = h + self.skip(x)
        return F.avg_pool2d(out, 2) if self.downsample else out


class _SelfAttention(nn.Module):
    """SAGAN-style self-attention over spatial positions with a learned residual gate (starts at 0)."""

    def __init__(self, channels: int, spectral_norm: bool):
        super().__init__()
        inner = max(1, channels // 8)
        self.query = _maybe_sn(nn.Conv2d(channels, inner, 1), spectral_norm)
        self.key = _maybe_sn(nn.Conv2d(channels, inner, 1), spectral_norm)
        self.value = _maybe_sn(nn.Conv2d(channels, channels, 1), spectral_norm)
        self.gate = nn.Parameter(torch.zeros(()))

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        q, k, v = self.query(x).flatten(2), self.key(x).flatten(2), self.value(x).flatten(2)
        attn = torch.softmax(q.transpose(1, 2) @ k / q.shape[1] ** 0.5, dim=-1)  # (b, hw, hw)
        return x + self.gate * (v @ attn.transpose(1, 2)).view(b, c, h, w)


class ResNetEnergy(nn.Module):
    """Residual energy: stem conv, ``num_blocks`` residual blocks (downsampling while the map is >= 8 wide,
    width doubling up to ``8 · width``), optional self-attention after the first block, global sum pooling
    and a linear read-out. Options: ``spectral_norm``, ``self_attention``, ``layer_norm``.

    >>> ResNetEnergy(in_channels=3, width=16, num_blocks=3)(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2])
    """

    def __init__(self, in_channels: int = 3, width: int = 64, num_blocks: int = 4, spectral_norm: bool = False,
                 self_attention: bool = False, layer_norm: bool = False, activation: str = "leaky_relu",
                 image_size: int = 32):
        super().__init__()
        for name, value in (("width", width), ("num_blocks", num_blocks), ("in_channels", in_channels)):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        self.stem = _maybe_sn(nn.Conv2d(in_channels, width, 3, 1, 1), spectral_norm)
        blocks: list[nn.Module] = []
        c, size = width, image_size
        for i in range(num_blocks):
            c_out = min(2 * c, 8 * width) if size >= 8 else c
            blocks.append(_ResBlock(c, c_out, size >= 8, spectral_norm, layer_norm, activation))
            if size >= 8:
                size //= 2
            c = c_out
            if i == 0 and self_attention:
                blocks.append(_SelfAttention(c, spectral_norm))
        self.blocks = nn.Sequential(*blocks)
        self.act = make_activation(activation, 0.2)
        self.head = _maybe_sn(nn.Linear(c, 1), spectral_norm)
        self.features_dim = c

    def features(self, x: Tensor) -> Tensor:
        return self.act(self.blocks(self.stem(x))).sum(dim=(2, 3))

    def forward(self, x: Tensor) -> Tensor:
        check_input_dtype(self, x)
        return self.head(self.features(x)).squeeze(1)


class MultiScaleEnergy(nn.Module):
    """``E(x) = Σ_s E_s(avg_pool(x, s))`` over ``scales`` (default full, 1/2 and 1/4 resolution).

    ``make_energy(image_size)`` builds the energy of one scale.

    >>> energy = MultiScaleEnergy(lambda size: ConvNetEnergy(3, 16, size), image_size=32)
    """

    def __init__(self, make_energy, image_size: int = 32, scales: tuple[int, ...] = (1, 2, 4)):
        super().__init__()
        if any(s < 1 or image_size % s for s in scales):
            raise ValueError(f"scales must be positive divisors of image_size {image_size}; got {scales}")
        self.scales = tuple(scales)
        self.energies = nn.ModuleList([make_energy(image_size // s) for s in self.scales])

    def forward(self, x: Tensor) -> Tensor:
        return sum(e(F.avg_pool2d(x, s) if s > 1 else x) for s, e in zip(self.scales, self.energies, strict=True))


class ClassConditionalEnergy(nn.Module):
    """A classifier read as an energy: ``E(x, y) = -f(x)[y]`` and ``E(x) = -logsumexp_y f(x)[y]``.

    ``f`` is a :class:`ResNetEnergy` feature trunk with a ``num_classes`` head. ``forward(x)`` is the
    unconditional energy; ``conditional(x, y)`` with ``y`` ``(batch,)`` int64 is the class energy.
    """

    def __init__(self, num_classes: int, in_channels: int = 3, width: int = 64, num_blocks: int = 4,
                 image_size: int = 32, spectral_norm: bool = False):
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        self.trunk = ResNetEnergy(in_channels, width, num_blocks, spectral_norm=spectral_norm, image_size=image_size)
        self.classes = nn.Linear(self.trunk.features_dim, num_classes)

    def logits(self, x: Tensor) -> Tensor:
        return self.classes(self.trunk.features(x))

    def conditional(self, x: Tensor, y: Tensor) -> Tensor:
        return -self.logits(x).gather(1, y.view(-1, 1)).squeeze(1)

    def forward(self, x: Tensor) -> Tensor:
        return -torch.logsumexp(self.logits(x), dim=1)
