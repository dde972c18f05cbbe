"""Train an EBM on your own 2-D points (any ``(n, d)`` tensor or NumPy array), from Python, no config file.

    python examples/train_on_your_points.py            # about a minute on 2 CPU cores
    python examples/train_on_your_points.py --tiny     # a few seconds

Shows: the data sampler is any function ``(batch_size, generator) -> (batch_size, d)``; ``make_train_state``
builds Adam, the seeded generator and the chain buffer; ``train`` runs short-run contrastive divergence.
"""

import math

import torch
from _common import parse_args, scatter

import anila
from anila.train import TrainSettings, make_train_state, train

out, tiny = parse_args("train_on_your_points", __doc__)
g = torch.Generator().manual_seed(0)

# Your points: here a noisy spiral; replace with torch.as_tensor(your_array, dtype=torch.float32).
t = 3 * math.pi * torch.rand(5000, generator=g).sqrt()
points = torch.stack([t * torch.cos(t), t * torch.sin(t)], 1) / 3 + 0.1 * torch.randn(5000, 2, generator=g)


def data(batch_size, generator):
    """A random batch of the points (with replacement)."""
    return points[torch.randint(len(points), (batch_size,), generator=generator)]


settings = TrainSettings(iterations=30 if tiny else 1500, batch_size=100, num_steps=10 if tiny else 50, lr=1e-3,
                         l2_reg=0.1, log_every=10 if tiny else 100)
chains = anila.chains.ChainInit(init="noise", noise="gaussian", scale=2.0)  # fresh noise every iteration
sampler = anila.samplers.Langevin(step_size=0.02)
state = make_train_state(anila.energies.MLPEnergy(dim=2, width=64, depth=4), settings, chains, (2,))
train(state, sampler, chains, data, settings, progress=not tiny,
      on_log=lambda r: print(f"iteration {r['iteration']}: loss {r['loss']:.3f}, energy gap {r['energy_gap']:.3f}"))

x0 = chains.noise_init().sample(2000, (2,), generator=g)
samples = anila.samplers.sample_chains(sampler, state.energy, x0, 200 if not tiny else 20, generator=g)
scatter({"your points": points[:2000], "EBM samples": samples}, out / "samples.png")
