"""Compose energies: ``and`` (product of experts), ``or`` (mixture) and ``not`` (A and not B).

    python examples/composition.py            # about 20 s on 2 CPU cores
    python examples/composition.py --tiny

Shows: ``anila.energies.compose`` on two analytic energies (the 4 rings and a wide Gaussian blob to the
right), each composition sampled with MALA from the same start. ``and`` keeps the rings' mass near the blob;
``or`` is the mixture weighted by each energy's normaliser (``Z = 1`` for the rings, ``2π`` for the blob's
``½‖x - μ‖²``, so the blob gets 2π / (1 + 2π) ≈ 86 % of the mass); ``not`` removes the blob's side from the rings.
The same works with trained models (``anila compose RUN_A RUN_B --op and``, docs/applications.md).
"""

import torch
from _common import parse_args, scatter

import anila
from anila.energies import Gaussian, Rings, compose

out, tiny = parse_args("composition", __doc__)
rings, blob = Rings(), Gaussian.isotropic(2, mean=torch.tensor([3.0, 0.0]), std=1.0)
chains, steps = (200, 20) if tiny else (2000, 1000)

panels = {}
energies = {"A: rings": rings, "B: blob": blob, "A and B": compose("and", [rings, blob]),
            "A or B": compose("or", [rings, blob]), "A not B": compose("not", [rings, blob], alpha=0.5)}
for name, energy in energies.items():
    g = torch.Generator().manual_seed(0)
    x0 = 3 * torch.randn(chains, 2, generator=g)
    panels[name] = anila.samplers.sample_chains(anila.samplers.MALA(step_size=0.02), energy, x0, steps, generator=g)
    print(f"{name:9s} mean x = {panels[name][:, 0].mean():+.2f}")
scatter(panels, out / "composition.png")
