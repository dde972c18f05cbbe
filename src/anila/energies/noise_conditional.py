"""A noise-level-conditioned image energy ``E(x, σ)``: the vanilla ConvNet with FiLM conditioning on ``log σ``.

One network models every noise level of a multi-level objective (diffusion recovery likelihood,
:mod:`anila.objectives.recovery`; multi-level DSM): the image counterpart of
:class:`~anila.objectives.score_matching.NoiseConditionalMLP`, which feeds ``log σ`` in as one more input.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from anila.energies.networks import check_input_dtype, make_activation


class NoiseConditionalConvNet(nn.Module):
    """``E(x, σ) = f(x, σ) / σ``: the layers of :class:`~anila.energies.conv.ConvNetEnergy` (a 3×3 conv to
    ``n_f`` channels, 4×4 stride-2 convs doubling the width while the map is at least 8 wide, a conv over the
    whole remaining map to one number), each hidden conv followed by a per-channel FiLM of the noise level:

        h_0 = x,    h_l = act((1 + γ_l(σ)) ⊙ conv_l(h_{l-1}) + β_l(σ)),    l = 1..L,
        f(x, σ) = conv_out(h_L),
        (γ_1, β_1, ..., γ_L, β_L) = W_2 silu(W_1 log σ + b_1) + b_2

    with ``γ_l, β_l ∈ R^{c_l}`` broadcast over the ``(H_l, W_l)`` map of layer ``l``, and an ``embed_width``-unit
    embedding of ``log σ``. ``W_2, b_2`` start at zero, so the untrained network is the unconditioned ConvNet
    divided by ``σ``. As in :class:`~anila.objectives.score_matching.NoiseConditionalMLP`, the ``1/σ`` factor
    makes ``σ ∇x E = ∇x f`` of order one at every level, and ``log σ`` makes any positive ``σ`` valid (no
    fixed table of levels).

    Shapes: ``x`` ``(n, C, H, W)`` with ``C = in_channels`` and ``H = W = image_size``; ``sigma`` ``(n,)`` (or a
    scalar, broadcast), positive; returns ``(n,)``.

    >>> energy = NoiseConditionalConvNet(in_channels=1, n_f=8, image_size=8)
    >>> x = torch.zeros(5, 1, 8, 8)
    >>> energy(x, torch.full((5,), 0.1)).shape
    torch.Size([5])
    >>> bool(torch.allclose(energy(x, 0.1), 5 * energy(x, 0.5)))  # at initialisation: f / σ, f free of σ
    True
    """

    def __init__(self, in_channels: int = 1, n_f: int = 32, image_size: int = 8, embed_width: int = 32,
                 activation: str = "leaky_relu", negative_slope: float = 0.05):
        super().__init__()
        for name, value, low in (("n_f", n_f, 1), ("in_channels", in_channels, 1), ("image_size", image_size, 4),
                                 ("embed_width", embed_width, 1)):
            if value < low:
                raise ValueError(f"{name} must be >= {low}, got {value}")
        convs = [nn.Conv2d(in_channels, n_f, 3, 1, 1)]
        width, size = n_f, image_size
        while size >= 8:
            convs.append(nn.Conv2d(width, 2 * width, 4, 2, 1))
            width, size = 2 * width, (size + 2 - 4) // 2 + 1
        self.convs = nn.ModuleList(convs)
        self.act = make_activation(activation, negative_slope)
        self.out = nn.Conv2d(width, 1, size, 1, 0)
        self.widths = [conv.out_channels for conv in convs]
        last = nn.Linear(embed_width, 2 * sum(self.widths))
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.embed = nn.Sequential(nn.Linear(1, embed_width), nn.SiLU(), last)
        self.image_size = image_size

    def forward(self, x: Tensor, sigma: Tensor | float) -> Tensor:
        check_input_dtype(self, x)
        sigma = torch.as_tensor(sigma, device=x.device, dtype=x.dtype).expand(x.shape[0])
        film = self.embed(torch.log(sigma)[:, None]).split([w for w in self.widths for _ in (0, 1)], dim=1)
        h = x
        for i, conv in enumerate(self.convs):
            gamma, beta = film[2 * i], film[2 * i + 1]
            h = self.act(conv(h) * (1 + gamma[:, :, None, None]) + beta[:, :, None, None])
        return self.out(h).flatten(1).squeeze(1) / sigma
