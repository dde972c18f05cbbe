"""Swap the sampler in one line: every sampler takes the same energy, state and generator.

    python examples/swap_the_sampler.py            # about 30 s on 2 CPU cores
    python examples/swap_the_sampler.py --tiny

Shows: Langevin, AniLA, MALA, Metropolis-adjusted AniLA and HMC sampling the 4-rings target, whose density is
known, from the same start, and prints each one's total variation to the truth on a 32² grid, beside the TV
of as many exact draws (the noise floor of a finite sample). The uncorrected AniLA chain targets a density
∝ π/γ, not π, so its TV stays above the Metropolis-adjusted ones.
"""

import torch
from _common import parse_args, scatter

import anila
from anila.samplers import HMC, MALA, AniLA, Langevin, MetropolisAniLA

out, tiny = parse_args("swap_the_sampler", __doc__)
target = anila.energies.Rings()  # E = -log p of the AniLA paper's 4 rings; exact density known
chains, steps = (200, 20) if tiny else (2000, 500)

samplers = {
    "Langevin": Langevin(step_size=0.02),
    "AniLA": AniLA(step_size=0.02, threshold=2.0),          # the one-line swap: any of these
    "MALA": MALA(step_size=0.02),
    "MetropolisAniLA": MetropolisAniLA(step_size=0.02, threshold=2.0),
    "HMC": HMC(step_size=0.1, num_leapfrog_steps=5),
}
exact = target.sample(chains, generator=torch.Generator().manual_seed(1))
floor = anila.metrics.sample_divergences(exact, target.log_prob, bound=5.0, resolution=32)["tv"]
print(f"{'exact draws':16s} TV to the truth = {floor:.3f} (the noise floor)")
panels = {"exact draws": exact}
for name, sampler in samplers.items():
    g = torch.Generator().manual_seed(0)
    x0 = 2 * torch.randn(chains, 2, generator=g)                            # the same start for every sampler
    x = anila.samplers.sample_chains(sampler, target, x0, steps, generator=g)
    tv = anila.metrics.sample_divergences(x, target.log_prob, bound=5.0, resolution=32)["tv"]
    print(f"{name:16s} TV to the truth = {tv:.3f}")
    panels[name] = x
scatter(panels, out / "samplers.png")
