"""anila beside the peer libraries, in the same run:
`python benchmarks/peers.py [--budget 60] [--seeds 0,1,2] [--data rings] [--recipes langevin,anila] [--out DIR]`.

Needs the optional peers, the `peers` extra of pyproject.toml: `pip install --no-deps torchebm==0.8.9
ebmkit==0.16.0` (both need only torch). A library that is absent is skipped with a note. Not part of the
test suite's measurements (the suite only checks the skip).

Every run trains the same energy network, anila's `MLPEnergy(dim=2, width=64, depth=4)`, on the same toy for
the same budget of **process CPU seconds on one torch thread**, and scores the learned `exp(-E)` by grid
KL(true || learned) on a 256² grid. Recipes:

- `ebmkit`: its README's persistent-CD recipe: `LangevinDynamics(step_size=1e-2, steps=60)`,
  `ReplayBuffer(8192, (2,))` (5 % re-initialised from N(0, I) per draw), Adam 1e-3, batch 256;
- `torchebm`: its documented PCD: `PersistentContrastiveDivergence` with its defaults (buffer 10 000, 5 % new
  samples per draw, buffer warmed by 100 steps from 0.01 · N(0, I), energy regulariser 0.001) and its
  example's `LangevinDynamics(step_size=0.01)`, `k_steps=10`; Adam 1e-3, batch 256;
- `anila:<preset>`: anila's presets (`src/anila/presets/`), as in the time-to-quality benchmark;
- `anila:as_ebmkit`, `anila:as_torchebm`: each peer recipe run through anila with the step-size convention
  translated. Both peers step `x' = x - ε ∇E + sqrt(2ε) ξ`, i.e. the step multiplies the whole gradient;
  anila's `x' = x - (h/2) ∇E + sqrt(h) ξ` multiplies the half gradient, so `h = 2ε = 0.02`. Chains: anila's
  replay buffer (starts as N(0, I) noise, no warm-up) with the peer's size and 5 % re-initialisation.

Columns: KL, iterations per CPU second, and `diverged` (an exception, or a non-finite energy on the grid).
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import statistics
import sys
import time
from pathlib import Path

import torch

from anila.config import config_from_dict
from anila.data.toy import toy_dataset
from anila.energies import MLPEnergy
from anila.metrics.density import density_divergences, grid_log_prob
from anila.studies import time_to_quality as ttq
from anila.studies.common import markdown_table, write_csv

PEERS = {"ebmkit": "ebm", "torchebm": "torchebm"}  # distribution -> import name
BATCH = 256
STEP = 0.01  # the peers' ε


def available(distribution: str) -> bool:
    return importlib.util.find_spec(PEERS[distribution]) is not None


def _energy(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return MLPEnergy(dim=2, width=64, depth=4)


def _loop(step, budget_s: float) -> tuple[int, float]:
    """Call ``step()`` until ``budget_s`` process CPU seconds are spent; ``(iterations, cpu seconds)``."""
    start, iterations = time.process_time(), 0
    while time.process_time() - start < budget_s:
        step()
        iterations += 1
    return iterations, time.process_time() - start


def train_ebmkit(dataset, seed: int, budget_s: float):
    import ebm

    energy = _energy(seed)
    sampler = ebm.LangevinDynamics(step_size=STEP, steps=60)
    loss_fn = ebm.ContrastiveDivergence(sampler, buffer=ebm.ReplayBuffer(8192, (2,)))
    optimizer = torch.optim.Adam(energy.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(seed)

    def step():
        out = loss_fn(energy, dataset.sample(BATCH, generator=g))
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()

    return energy, *_loop(step, budget_s)


def train_torchebm(dataset, seed: int, budget_s: float):
    from torchebm.core import BaseModel
    from torchebm.losses import PersistentContrastiveDivergence
    from torchebm.samplers import LangevinDynamics

    class Wrapped(BaseModel):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x):
            return self.net(x)

    energy = _energy(seed)
    model = Wrapped(energy)
    loss_fn = PersistentContrastiveDivergence(model, LangevinDynamics(model, step_size=STEP), k_steps=10)
    optimizer = torch.optim.Adam(energy.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(seed)

    def step():
        loss, _ = loss_fn(dataset.sample(BATCH, generator=g), generator=g)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return energy, *_loop(step, budget_s)


#: The peers' recipes through anila, the step size translated (h = 2ε); see the module docstring.
TRANSLATED = {
    "as_ebmkit": {"sampler": {"name": "langevin", "step_size": 2 * STEP}, "train": {"num_steps": 60},
                  "chains": {"buffer_size": 8192}},
    "as_torchebm": {"sampler": {"name": "langevin", "step_size": 2 * STEP}, "train": {"num_steps": 10, "l2_reg": 1e-3},
                    "chains": {"buffer_size": 10000}},
}


def train_translated(name: str, dataset_name: str, seed: int, budget_s: float):
    base = {"model": {"name": "mlp", "width": 64, "depth": 4},
            "chains": {"init": "replay", "noise": "gaussian", "scale": 1.0, "reinit_fraction": 0.05},
            "train": {"batch_size": BATCH, "lr": 1e-3, "seed": seed}}
    raw = {"data": {"name": dataset_name}}
    for section in ("model", "sampler", "chains", "train"):
        raw[section] = {**base.get(section, {}), **TRANSLATED[name].get(section, {})}
    config = config_from_dict(raw)
    from anila.train.loop import make_train_state, train_step

    dataset = toy_dataset(dataset_name)
    energy = _energy(seed)
    state = make_train_state(energy, config.train, config.chains, (2,))

    def step():
        x = dataset.sample(BATCH, generator=state.generator)
        train_step(state, config.sampler, config.chains, x, config.train)

    return energy, *_loop(step, budget_s)


def score(energy, log_true, bound) -> dict:
    energy.eval()
    log_model = grid_log_prob(lambda x: -energy(x), bound, 256)
    if not torch.isfinite(log_model).all():
        return {"diverged": True}
    return {"diverged": False, "kl_true_model": density_divergences(log_true, log_model)["kl_pq"]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=float, default=60.0, help="process CPU seconds per run (60)")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--data", default="rings", help="a toy with a known density (rings)")
    parser.add_argument("--recipes", default="", help="anila presets (default: all)")
    parser.add_argument("--out", default="runs/peers")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    dataset = toy_dataset(args.data)
    log_true = grid_log_prob(dataset.log_density, dataset.bound, 256)
    recipes = tuple(r for r in args.recipes.split(",") if r) or ttq.recipes_of(ttq.TimeToQualitySettings())
    runs = [(f"anila:{r}", lambda s, r=r: ttq.train_for_budget(r, args.data, s, args.budget)) for r in recipes]
    for peer, trainer in (("ebmkit", train_ebmkit), ("torchebm", train_torchebm)):
        if available(peer):
            runs.append((peer, lambda s, t=trainer: t(dataset, s, args.budget)))
            runs.append((f"anila:as_{peer}", lambda s, p=peer: train_translated(f"as_{p}", args.data, s, args.budget)))
        else:
            print(f"peers: {peer} is not installed (pip install --no-deps {peer}); skipped")
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, run in runs:
        for seed in seeds:
            row = {"recipe": name, "data": args.data, "seed": seed, "budget_s": args.budget}
            try:
                result = run(seed)
                if name.startswith("anila:") and not name.startswith("anila:as_"):
                    config, state, info = result
                    energy, iterations, cpu = state.eval_energy, info["iterations"], info["cpu_s"]
                    if info["diverged"]:
                        raise RuntimeError(info.get("error", "diverged"))
                else:
                    energy, iterations, cpu = result
                row.update(iterations=iterations, it_per_cpu_s=iterations / cpu, **score(energy, log_true,
                                                                                          dataset.bound))
            except Exception as exc:  # a diverged or failed run is a result
                row.update(diverged=True, error=f"{type(exc).__name__}: {exc}"[:120])
            rows.append(row)
            write_csv(rows, out / "peers.csv")
            print(f"{name} seed={seed}: KL={row.get('kl_true_model', math.nan):.3f} "
                  f"({row.get('iterations', 0)} iterations){' DIVERGED' if row['diverged'] else ''}", flush=True)
    summary = []
    for name in dict.fromkeys(r["recipe"] for r in rows):
        rs = [r for r in rows if r["recipe"] == name]
        kls = [r["kl_true_model"] for r in rs if not r["diverged"]]
        entry = {"recipe": name, "seeds": len(rs), "diverged": sum(r["diverged"] for r in rs),
                 "it_per_cpu_s": f"{statistics.mean(r.get('it_per_cpu_s', 0) for r in rs):.1f}"}
        if kls:
            entry["kl_true_model"] = f"{statistics.mean(kls):.3f} ± {statistics.stdev(kls) if len(kls) > 1 else 0:.3f}"
            entry["per_seed"] = ", ".join(f"{k:.3f}" for k in kls)
        summary.append(entry)
    table = markdown_table(summary, ("recipe", "seeds", "diverged", "it_per_cpu_s", "kl_true_model", "per_seed"))
    (out / "peers.md").write_text(f"{args.data}, {args.budget:g} process CPU s per run on one torch thread, "
                                  f"seeds {seeds}\n\n{table}")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
