"""Out-of-distribution detection with a trained energy: score inputs by ``E(x)`` and ``‖∇x E(x)‖``.

    python examples/ood_detection.py           # about a minute on 2 CPU cores
    python examples/ood_detection.py --tiny

Shows: an EBM trained on the 4 rings gives higher energy to points it has not seen. The AUROC of the energy
score is printed for three sets: fresh ring points (in-distribution: AUROC near 0.5), uniform noise on the
box and the 8-Gaussians toy. For images: ``anila ood RUN --out digits:class=9,uniform`` (docs/applications.md).
"""

import torch
from _common import parse_args, scatter

import anila
from anila.metrics import auroc, ood_scores
from anila.train import TrainSettings, make_train_state, train

out, tiny = parse_args("ood_detection", __doc__)
rings = anila.data.toy_dataset("rings")
settings = TrainSettings(iterations=30 if tiny else 1500, batch_size=100, num_steps=10 if tiny else 50, lr=1e-3,
                         l2_reg=0.1, log_every=100)
chains = anila.chains.ChainInit(init="noise", scale=2.0)
state = make_train_state(anila.energies.MLPEnergy(dim=2), settings, chains, (2,))
train(state, anila.samplers.Langevin(step_size=0.02), chains, lambda n, g: rings.sample(n, generator=g), settings,
      progress=not tiny)

g = torch.Generator().manual_seed(1)
n = 1000
held_in = rings.sample(n, generator=g)
sets = {"rings (fresh draws)": rings.sample(n, generator=g),
        "uniform on the box": (2 * torch.rand(n, 2, generator=g) - 1) * rings.bound,
        "8gaussians": anila.data.toy_dataset("8gaussians").sample(n, generator=g)}
scores_in = ood_scores(state.energy, held_in)
for name, x in sets.items():
    scores_out = ood_scores(state.energy, x)
    print(f"{name:20s} AUROC energy = {auroc(scores_in['energy'], scores_out['energy']):.3f}, "
          f"grad norm = {auroc(scores_in['grad_norm'], scores_out['grad_norm']):.3f}")
scatter({"in: rings": held_in, **sets}, out / "sets.png", rings.bound)
