"""The 2-D Gaussian that the objective tests recover, and the learnable quadratic energy they fit to it.

``DATA`` is N(``MU``, ``SIGMA``) (correlation 0.67); ``Quadratic`` is ``E(x) = ½ (x - m)ᵀ P (x - m)`` with
learnable ``m`` and ``P = L Lᵀ + 1e-6 I`` (``L`` lower triangular), starting at ``m = 0``, ``P = I``. It has no
constant term, so its exact log normaliser is ``½ log det(2π P⁻¹)``. Shared by the objective tests, which
import it by module name (pytest puts this folder on ``sys.path``).
"""

import torch
from torch import nn

from anila.energies.analytic import Gaussian

DT = torch.float64
MU = torch.tensor([1.0, -0.5], dtype=DT)
SIGMA = torch.tensor([[1.0, 0.6], [0.6, 0.8]], dtype=DT)
DATA = Gaussian(MU, SIGMA)


class Quadratic(nn.Module):
    """``E(x) = ½ (x - m)ᵀ P (x - m)``, input ``(batch, dim)`` -> ``(batch,)``; see the module docstring."""

    def __init__(self, dim: int = 2):
        super().__init__()
        self.m = nn.Parameter(torch.zeros(dim, dtype=DT))
        self.raw = nn.Parameter(torch.eye(dim, dtype=DT))

    def precision(self) -> torch.Tensor:
        chol = torch.tril(self.raw)
        return chol @ chol.T + 1e-6 * torch.eye(self.m.numel(), dtype=DT)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        diff = x - self.m
        return 0.5 * ((diff @ self.precision()) * diff).sum(1)


def rel_error(a: torch.Tensor, b: torch.Tensor) -> float:
    """``‖a - b‖ / ‖b‖``."""
    return float(torch.linalg.norm(a - b) / torch.linalg.norm(b))
