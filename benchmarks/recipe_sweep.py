"""The recipe sweep behind the shipped presets: `python benchmarks/recipe_sweep.py [options] VARIANT...`.

Each variant is a preset with some config keys laid over it (``VARIANTS`` below). Each one trains on the toys
with a known density for a fixed budget of process CPU seconds on one torch thread, exactly as the
time-to-quality benchmark does (``anila.studies.time_to_quality.train_for_budget``), and the grid
KL(true || learned) is reported. Results in docs/results/time_to_quality.md ("The recipe sweep").

    python benchmarks/recipe_sweep.py --budget 20 --datasets rings,pinwheel --seeds 0 --out runs/sweep1 \\
        base_langevin replay_k10 ...
    python benchmarks/recipe_sweep.py --list           # the variants and their overrides
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
import sys
from pathlib import Path

import torch

from anila.data.toy import toy_dataset
from anila.metrics.density import grid_log_prob
from anila.studies.time_to_quality import evaluate, train_for_budget

REPLAY = {"init": "replay", "noise": "gaussian", "scale": 2.0, "buffer_size": 10000, "reinit_fraction": 0.05}
PERSIST = {"init": "persistent", "noise": "gaussian", "scale": 2.0}

# name -> (preset, overrides). Every name is one measured recipe; the tables say which ones were run.
VARIANTS: dict[str, tuple[str, dict]] = {
    # the shipped short-run presets as they are (fresh noise chains, K = 50 or 50 gradients)
    "langevin": ("langevin", {}),
    "anila": ("anila", {}),
    "hmc_short_run": ("hmc_short_run", {}),
    "mala_adapt": ("mala_adapt", {}),
    # short-run Langevin, fewer steps / higher lr
    "sr_k20": ("langevin", {"train": {"num_steps": 20}}),
    "sr_k50_lr3e-3": ("langevin", {"train": {"lr": 3e-3}}),
    # replay buffer (IGEBM: 10k, 5 % restarted from noise), Langevin step 0.02 at T = 1
    "replay_k5": ("langevin", {"chains": REPLAY, "train": {"num_steps": 5}}),
    "replay_k10": ("langevin", {"chains": REPLAY, "train": {"num_steps": 10}}),
    "replay_k20": ("langevin", {"chains": REPLAY, "train": {"num_steps": 20}}),
    "persist_k10": ("langevin", {"chains": PERSIST, "train": {"num_steps": 10}}),
    "replay_k10_lr3e-3": ("langevin", {"chains": REPLAY, "train": {"num_steps": 10, "lr": 3e-3}}),
    "replay_k10_step0.05": ("langevin", {"chains": REPLAY, "sampler": {"step_size": 0.05},
                                         "train": {"num_steps": 10}}),
    "replay_k10_step0.01": ("langevin", {"chains": REPLAY, "sampler": {"step_size": 0.01},
                                         "train": {"num_steps": 10}}),
    "replay_k10_noL2": ("langevin", {"chains": REPLAY, "train": {"num_steps": 10, "l2_reg": 0.0}}),
    "replay_k10_L2_1": ("langevin", {"chains": REPLAY, "train": {"num_steps": 10, "l2_reg": 1.0}}),
    "replay_k10_ema": ("langevin", {"chains": REPLAY, "train": {"num_steps": 10, "ema_decay": 0.99}}),
    "replay_k10_silu": ("langevin", {"chains": REPLAY, "model": {"activation": "silu"},
                                     "train": {"num_steps": 10}}),
    "replay_k10_w128": ("langevin", {"chains": REPLAY, "model": {"width": 128},
                                     "train": {"num_steps": 10}}),
    "replay_k10_w32": ("langevin", {"chains": REPLAY, "model": {"width": 32},
                                    "train": {"num_steps": 10}}),
    "replay_k10_b200": ("langevin", {"chains": REPLAY, "train": {"num_steps": 10, "batch_size": 200}}),
    "replay_k10_b50": ("langevin", {"chains": REPLAY, "train": {"num_steps": 10, "batch_size": 50}}),
    "replay_k10_reinit0": ("langevin", {"chains": {**REPLAY, "reinit_fraction": 0.0},
                                        "train": {"num_steps": 10}}),
    "replay_k10_reinit0.2": ("langevin", {"chains": {**REPLAY, "reinit_fraction": 0.2},
                                          "train": {"num_steps": 10}}),
    "replay_k10_buf1k": ("langevin", {"chains": {**REPLAY, "buffer_size": 1000},
                                      "train": {"num_steps": 10}}),
    # replay K = 5-10 at higher learning rates, and what goes on top of that
    "replay_k5_lr3e-3": ("langevin", {"chains": REPLAY, "train": {"num_steps": 5, "lr": 3e-3}}),
    "replay_k10_lr1e-2": ("langevin", {"chains": REPLAY, "train": {"num_steps": 10, "lr": 1e-2}}),
    "replay_k10_lr3e-3_ema": ("langevin", {"chains": REPLAY, "train": {"num_steps": 10, "lr": 3e-3,
                                                                       "ema_decay": 0.99}}),
    "replay_k10_lr3e-3_silu": ("langevin", {"chains": REPLAY, "model": {"activation": "silu"},
                                            "train": {"num_steps": 10, "lr": 3e-3}}),
    "replay_k10_lr3e-3_w128": ("langevin", {"chains": REPLAY, "model": {"width": 128},
                                            "train": {"num_steps": 10, "lr": 3e-3}}),
    "replay_k10_lr3e-3_d3": ("langevin", {"chains": REPLAY, "model": {"depth": 3},
                                          "train": {"num_steps": 10, "lr": 3e-3}}),
    "replay_k10_lr3e-3_b200": ("langevin", {"chains": REPLAY, "train": {"num_steps": 10, "lr": 3e-3,
                                                                        "batch_size": 200}}),
    "replay_k10_lr3e-3_noL2": ("langevin", {"chains": REPLAY, "train": {"num_steps": 10, "lr": 3e-3,
                                                                        "l2_reg": 0.0}}),
    "replay_k10_lr3e-3_step0.05": ("langevin", {"chains": REPLAY, "sampler": {"step_size": 0.05},
                                                "train": {"num_steps": 10, "lr": 3e-3}}),
    "replay_k10_lr3e-3_reinit0.2": ("langevin", {"chains": {**REPLAY, "reinit_fraction": 0.2},
                                                 "train": {"num_steps": 10, "lr": 3e-3}}),
    "replay_k10_lr3e-3_beta0.5": ("langevin", {"chains": REPLAY, "train": {"num_steps": 10, "lr": 3e-3,
                                                                           "beta1": 0.5}}),
    "replay_mala_k10_lr3e-3": ("mala_adapt", {"chains": REPLAY, "train": {"num_steps": 10, "lr": 3e-3}}),
    "anila_replay_k10_lr3e-3": ("anila", {"chains": REPLAY, "train": {"num_steps": 10, "lr": 3e-3}}),
    "anila_replay_k10_lr3e-3_b3": ("anila", {"chains": REPLAY, "sampler": {"threshold": 3.0},
                                             "train": {"num_steps": 10, "lr": 3e-3}}),
    "anila_replay_k10_lr3e-3_b0.3": ("anila", {"chains": REPLAY, "sampler": {"threshold": 0.3},
                                               "train": {"num_steps": 10, "lr": 3e-3}}),
    "anila_sr_k20_lr3e-3": ("anila", {"train": {"num_steps": 20, "lr": 3e-3}}),
    "replay_k10_lr3e-3_silu_ema": ("langevin", {"chains": REPLAY, "model": {"activation": "silu"},
                                                "train": {"num_steps": 10, "lr": 3e-3, "ema_decay": 0.99}}),
    "replay_k5_lr3e-3_silu": ("langevin", {"chains": REPLAY, "model": {"activation": "silu"},
                                           "train": {"num_steps": 5, "lr": 3e-3}}),
    "anila_replay_k10_lr3e-3_silu": ("anila", {"chains": REPLAY, "model": {"activation": "silu"},
                                               "train": {"num_steps": 10, "lr": 3e-3}}),
    # replay with Metropolis-adjusted samplers, step adapted toward a target acceptance
    "replay_mala_k10": ("mala_adapt", {"chains": REPLAY, "train": {"num_steps": 10}}),
    "replay_hmc_k2": ("hmc_adapt", {"chains": REPLAY, "train": {"num_steps": 2}}),
    # AniLA variants (threshold b; a threshold much larger than |grad E| is plain Langevin)
    "anila_replay_k10": ("anila", {"chains": REPLAY, "train": {"num_steps": 10}}),
    "anila_replay_k10_b0.3": ("anila", {"chains": REPLAY, "sampler": {"threshold": 0.3},
                                        "train": {"num_steps": 10}}),
    "anila_replay_k10_b3": ("anila", {"chains": REPLAY, "sampler": {"threshold": 3.0},
                                      "train": {"num_steps": 10}}),
    "anila_replay_k10_step0.05": ("anila", {"chains": REPLAY, "sampler": {"step_size": 0.05},
                                            "train": {"num_steps": 10}}),
    "anila_sr_k20": ("anila", {"train": {"num_steps": 20}}),
    # the second sweep (data restarts, EMA, the step), on the recommended preset as shipped now: Langevin 0.01,
    # replay with data restarts, EMA 0.999; each variant undoes or changes one or two of those
    "rec_as_first_chosen": ("recommended", {"sampler": {"step_size": 0.02}, "chains": {"restart": "noise"},
                                            "train": {"ema_decay": 0.0}}),
    "rec_step0.02_data_noema": ("recommended", {"sampler": {"step_size": 0.02}, "train": {"ema_decay": 0.0}}),
    "rec_step0.02_data_reinit0.2_noema": ("recommended", {"sampler": {"step_size": 0.02},
                                                          "chains": {"reinit_fraction": 0.2},
                                                          "train": {"ema_decay": 0.0}}),
    "rec_step0.02_noise_ema0.995": ("recommended", {"sampler": {"step_size": 0.02}, "chains": {"restart": "noise"},
                                                    "train": {"ema_decay": 0.995}}),
    "rec_step0.02_ema0.995": ("recommended", {"sampler": {"step_size": 0.02}, "train": {"ema_decay": 0.995}}),
    "rec_step0.02": ("recommended", {"sampler": {"step_size": 0.02}}),
    "rec_step0.014": ("recommended", {"sampler": {"step_size": 0.014}}),
    "rec": ("recommended", {}),
    "rec_step0.005": ("recommended", {"sampler": {"step_size": 0.005}}),
    "rec_mala_l2_0.01": ("recommended", {"sampler": {"name": "mala", "step_size": 0.02, "adapt": True,
                                                     "target_accept": 0.57}, "train": {"l2_reg": 0.01}}),
}


def run_variant(name: str, dataset: str, seed: int, budget_s: float, resolution: int, log_true, bound) -> dict:
    preset, overrides = VARIANTS[name]
    config, state, row = train_for_budget(preset, dataset, seed, budget_s, overrides=overrides)
    row = {"variant": name, **row}
    if not row["diverged"]:
        metrics, _ = evaluate(config, state, log_true, bound, resolution)
        row.update(metrics)
    return row


def summarise(rows: list[dict], datasets: list[str]) -> list[dict]:
    out: dict[str, dict] = {}
    for r in rows:
        s = out.setdefault(r["variant"], {"variant": r["variant"]})
        kls = [x.get("kl_true_model", math.nan) for x in rows
               if x["variant"] == r["variant"] and x["dataset"] == r["dataset"]]
        its = [x["iterations"] for x in rows if x["variant"] == r["variant"] and x["dataset"] == r["dataset"]]
        div = sum(1 for x in kls if not math.isfinite(x))
        good = [x for x in kls if math.isfinite(x)]
        if not good:
            cell = "diverged"
        elif len(kls) == 1:
            cell = f"{good[0]:.3f}"
        else:
            cell = f"{statistics.mean(good):.3f} ± {statistics.stdev(good) if len(good) > 1 else 0:.3f}"
            cell += f" (max {max(good):.3f})"
        if div and good:
            cell += f", {div} diverged"
        s[r["dataset"]] = cell
        s[f"it/{r['dataset']}"] = round(statistics.mean(its))
    return list(out.values())


def markdown(summary: list[dict], datasets: list[str]) -> str:
    cols = ["variant", *datasets, "iterations"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for s in summary:
        its = "/".join(str(s.get(f"it/{d}", "")) for d in datasets)
        lines.append("| " + " | ".join([s["variant"], *(s.get(d, "") for d in datasets), its]) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="*")
    parser.add_argument("--budget", type=float, default=20.0, help="process CPU seconds per run")
    parser.add_argument("--datasets", default="rings,pinwheel")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--out", default="runs/recipe_sweep")
    parser.add_argument("--list", action="store_true")
    args = parser.parse_args(argv)
    if args.list or not args.variants:
        for name, (preset, overrides) in VARIANTS.items():
            print(f"{name}: preset {preset} + {json.dumps(overrides)}")
        return 0
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants: {', '.join(unknown)} (see --list)")
    torch.set_num_threads(1)
    datasets = args.datasets.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    for dataset in datasets:
        toy = toy_dataset(dataset)
        log_true = grid_log_prob(toy.log_density, toy.bound, args.resolution)
        for name in args.variants:
            for seed in seeds:
                row = run_variant(name, dataset, seed, args.budget, args.resolution, log_true, toy.bound)
                rows.append(row)
                print(f"{dataset} {name} seed={seed}: KL={row.get('kl_true_model', math.nan):.3f} "
                      f"({row['iterations']} it in {row['cpu_s']:.1f} CPU s)", flush=True)
                keys = sorted({k for r in rows for k in r})
                with open(out / "sweep.csv", "w", newline="") as f:
                    w = csv.DictWriter(f, fieldnames=keys)
                    w.writeheader()
                    w.writerows(rows)
    text = (f"`python benchmarks/recipe_sweep.py --budget {args.budget:g} --datasets {args.datasets} "
            f"--seeds {args.seeds} {' '.join(args.variants)}`\n\n" + markdown(summarise(rows, datasets), datasets))
    (out / "sweep.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
