"""Sample quality of the learned samplers: `python benchmarks/sampler_samples.py [--budget S] [--seed N] [--out DIR]`.

Trains each recipe on the rings toy for `budget` process CPU seconds on one torch thread (as
`benchmarks/time_to_quality.py` does), then scores 5000 samples against the true density by the histogram
total variation and KL(hist ‖ true) of `anila.metrics.density.sample_divergences` (64² cells in the toy's box,
off-box samples counted against the sampler), with the process CPU time to draw them:

- `q (one pass)`: the objective's own sampler (the flow, the noisy generator, cooperative learning's
  generator), one forward pass;
- `q + 10 MCMC steps`: those samples as chain starts (the objective's `chain_starts`) with 10 steps of the
  recipe's sampler on the learned energy;
- `noise + K MCMC steps`: chains from the recipe's chain-init noise with its `train.num_steps` steps, how the
  run's own evaluation draws samples (and the only option for CD).

Writes `sampler_samples.md` (a markdown table) under `--out` (default `runs/sampler_samples`).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from anila.data.toy import toy_dataset
from anila.metrics.density import cell_log_prob, sample_divergences
from anila.objectives.base import Objective
from anila.samplers import run_chains
from anila.studies.time_to_quality import train_for_budget

RECIPES = ("configs/rings_adversarial_flow.toml", "configs/rings_adversarial_noisy.toml",
           "configs/rings_cooperative.toml", "configs/demo_rings_langevin.toml")
NUM = 5000


def _timed(fn, *args, **kwargs):
    """``(fn(*args, **kwargs) detached, process CPU seconds)``."""
    start = time.process_time()
    x = fn(*args, **kwargs)
    x = (x[0] if isinstance(x, tuple) else getattr(x, "x", x)).detach()
    return x, time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/sampler_samples")
    args = parser.parse_args()
    torch.set_num_threads(1)
    dataset = toy_dataset("rings")
    truth = cell_log_prob(dataset.log_density, dataset.bound, 64)
    rows = []
    for recipe in RECIPES:
        config, state, row = train_for_budget(recipe, "rings", args.seed, args.budget)
        energy, objective = state.eval_energy, state.objective
        g = torch.Generator().manual_seed(args.seed + 1)
        draws = {}
        if type(objective).chain_starts is not Objective.chain_starts:  # the objective supplies its starts
            q, t = _timed(objective.chain_starts, torch.zeros(NUM, 2), None, None, g)
            x, t2 = _timed(run_chains, config.sampler, energy, q, 10, generator=g)
            draws["q (one pass)"], draws["q + 10 MCMC steps"] = (q, t), (x, t + t2)
        noise = config.chains.noise_init().sample(NUM, (2,), generator=g)
        draws[f"noise + {config.train.num_steps} MCMC steps"] = _timed(run_chains, config.sampler, energy, noise,
                                                                       config.train.num_steps, generator=g)
        for how, (x, seconds) in draws.items():
            d = sample_divergences(x, None, dataset.bound, 64, truth=truth)
            rows.append((Path(recipe).stem, how, d["tv"], d["kl_hist_true"], seconds, row["iterations"]))
            print(rows[-1], flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    lines = [f"rings, {args.budget:g} CPU s of training, seed {args.seed}, {NUM} samples, 64² histogram", "",
             "| recipe | samples | TV | KL(hist ‖ true) | CPU s to draw | training iterations |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {r} | {h} | {tv:.3f} | {kl:.3f} | {s:.2f} | {it} |" for r, h, tv, kl, s, it in rows]
    (out / "sampler_samples.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
