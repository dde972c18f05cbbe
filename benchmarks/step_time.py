"""Time per sampler step on the demo model against the bare forward+backward (the limit).

    python benchmarks/step_time.py [--batch 100] [--repeats 2000] [--threads N]

Prints microseconds per step (median of 5 rounds) for a bare ``energy_and_grad`` and for one step of
each sampler, and each one's ratio to the bare pass. Model: the demo MLP (width 64, 4 hidden layers).
HMC's step is ``num_leapfrog_steps`` passes; its row is per transition.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from anila.energies import MLPEnergy, energy_and_grad
from anila.samplers import HMC, MALA, AniLA, ChainState, Langevin, MetropolisAniLA


def per_call_us(fn, repeats: int) -> float:
    for _ in range(50):
        fn()
    rounds = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeats):
            fn()
        rounds.append((time.perf_counter() - start) / repeats * 1e6)
    return statistics.median(rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    energy = MLPEnergy(dim=2, width=64, depth=4)
    x = 2 * torch.randn(args.batch, 2)
    bare = per_call_us(lambda: energy_and_grad(energy, x), args.repeats)
    print(f"batch {args.batch}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{'bare forward+backward':28s} {bare:8.1f} us   1.00x")
    samplers = {
        "Langevin": Langevin(step_size=0.02),
        "AniLA": AniLA(step_size=0.02, threshold=1.0),
        "MALA": MALA(step_size=0.02),
        "MetropolisAniLA": MetropolisAniLA(step_size=0.02, threshold=1.0),
        "HMC (1 leapfrog step)": HMC(step_size=0.02, num_leapfrog_steps=1),
    }
    for name, sampler in samplers.items():
        # Metropolis samplers carry E and ∇E in the state: each step costs one pass at the proposal.
        state = ChainState.at(x)
        state = state.evaluated(energy) if name not in ("Langevin", "AniLA") else state
        us = per_call_us(lambda s=sampler, st=state: s.step(energy, st), args.repeats)
        print(f"{name:28s} {us:8.1f} us   {us / bare:.2f}x")


if __name__ == "__main__":
    main()
