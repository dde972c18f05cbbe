"""Bring your own energy network: any ``nn.Module`` whose ``forward(x)`` returns one energy per sample.

    python examples/bring_your_own_energy.py           # about a minute on 2 CPU cores
    python examples/bring_your_own_energy.py --tiny

Shows: the only contract is ``energy(x) -> (batch,)`` with low energy = likely (``p ∝ exp(-E)``). Here a
network with a quadratic confinement term (so ``exp(-E)`` is normalisable by construction) learns the
8-Gaussians toy; the exact grid KL to the truth is printed before and after training.
"""

import torch
from _common import parse_args, scatter
from torch import nn

import anila
from anila.train import TrainSettings, make_train_state, train


class ConfinedMLP(nn.Module):
    """``E(x) = MLP(x) + ‖x‖² / (2 · 4²)``: a learned landscape inside a wide Gaussian envelope."""

    def __init__(self, dim: int = 2, width: int = 64):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, width), nn.SiLU(), nn.Linear(width, width), nn.SiLU(),
                                 nn.Linear(width, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1) + x.pow(2).sum(-1) / 32.0   # shape (batch,)


out, tiny = parse_args("bring_your_own_energy", __doc__)
dataset = anila.data.toy_dataset("8gaussians")
energy = ConfinedMLP()
grid = 32 if tiny else 128
kl = lambda: anila.metrics.energy_grid_divergences(energy, dataset.log_density, dataset.bound, grid)["kl_true_model"]  # noqa: E731
print(f"before training: KL(true || learned) = {kl():.3f}")

settings = TrainSettings(iterations=30 if tiny else 1500, batch_size=100, num_steps=10 if tiny else 50, lr=1e-3,
                         l2_reg=0.1, log_every=100)
chains = anila.chains.ChainInit(init="noise", scale=3.0)
sampler = anila.samplers.Langevin(step_size=0.02)
state = make_train_state(energy, settings, chains, (2,))
train(state, sampler, chains, lambda n, g: dataset.sample(n, generator=g), settings, progress=not tiny)
print(f"after training:  KL(true || learned) = {kl():.3f}")

g = torch.Generator().manual_seed(1)
x0 = 3 * torch.randn(2000, 2, generator=g)
samples = anila.samplers.sample_chains(sampler, energy, x0, 20 if tiny else 200, generator=g)
scatter({"data": dataset.sample(2000, generator=g), "samples": samples}, out / "samples.png", dataset.bound)
