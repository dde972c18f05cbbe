"""Study 1: stationary bias of each sampler on fixed energies with a known density.

Chains start at exact draws of the target, so whatever the histogram of their states drifts to is the
sampler's own stationary law (plus Monte Carlo noise), not a convergence effect. For each target, sampler,
step size and threshold we run ``chains`` chains for ``burn_in + steps`` steps, keep every ``thin``-th state
after burn-in and compare their pooled histogram with the true cell masses (``tv``, ``kl_hist_true``). The
``exact`` row is the same number of exact i.i.d. draws: its TV is the noise floor for independent samples.
Also reported: ESS per gradient evaluation (min over the two coordinates), acceptance rate, wall time.

The prediction under test: uncorrected AniLA targets ∝ π/γ, so its TV stays above the floor at
every step size, while Metropolis-adjusted AniLA's does not.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from anila.io import atomic_write_text, save_figure
from anila.metrics.density import cell_log_prob, sample_divergences
from anila.samplers import REGISTRY, ChainState, DualAveraging, accepts, make, name_of, run_chains
from anila.studies.common import TARGETS, markdown_table, write_csv

#: Step sizes per target, chosen around each target's stability limit (h ≲ 4 · smallest variance).
STEP_SIZES = {"rings": (0.005, 0.02, 0.05), "gaussian_cond100": (0.001, 0.004, 0.015),
              "8gaussians": (0.01, 0.05, 0.2)}
THRESHOLDS = (0.5, 2.0, 8.0)
ANILA_VARIANTS = {"default": {}, "sample": {"granularity": "sample"},
                  "per_iteration": {"gamma_update": "per_iteration"}, "noise_gamma": {"noise_scaling": "gamma"}}


@dataclass(frozen=True)
class BiasSettings:
    chains: int = 2000
    steps: int = 500
    burn_in: int = 100
    thin: int = 5
    resolution: int = 64
    block: int = 100  # K: γ is recomputed every ``block`` steps with gamma_update = "per_iteration"
    full_grid: bool = True  # False: the middle step size and threshold, default AniLA switches only
    seed: int = 0


QUICK = BiasSettings(chains=300, steps=100, burn_in=20, thin=5, resolution=32, full_grid=False)


def sampler_grid(target: str, full_grid: bool = True) -> list[dict]:
    """Every (label, sampler, step_size, threshold, variant) row of the sweep for one target: every registered
    sampler at each Langevin-equivalent step ``h`` (integrators at ``ε = sqrt(h)``), each threshold for samplers
    that have one, AniLA's switches, and every exact sampler adapted by dual averaging from ``100 h``."""
    quick = not full_grid
    steps = STEP_SIZES[target][1:2] if quick else STEP_SIZES[target]
    thresholds = THRESHOLDS[1:2] if quick else THRESHOLDS
    rows = []
    for h in steps:
        for name in REGISTRY:
            for b in thresholds if accepts(name, "threshold") else (None,):
                variants = ANILA_VARIANTS if name == "anila" and not quick else {"default": {}}
                for variant, switches in variants.items():
                    overrides: dict[str, Any] = {**switches, **({"threshold": b} if b is not None else {})}
                    sampler = make(name, langevin_step=h, **overrides)
                    row = dict(sampler=name, step_size=sampler.step_size, langevin_step=h, obj=sampler)
                    rows.append({**row, **({"threshold": b} if b is not None else {}),
                                 **({"variant": variant} if variant != "default" else {})})
                    if sampler.is_exact and variant == "default":  # adaptation from a step 100x too large
                        rows.append({**row, "sampler": f"{name}+adapt", "step_size": 100 * sampler.step_size,
                                     "obj": sampler.with_step_size(100 * sampler.step_size), "adapt": True,
                                     **({"threshold": b} if b is not None else {})})
    return rows


def run_sampler(sampler, energy, x0: torch.Tensor, settings: BiasSettings, generator: torch.Generator,
                adapt: bool = False):
    """Run in blocks of ``settings.block`` steps (γ recomputed per block for per_iteration AniLA); with
    ``adapt`` each chain's step is first tuned by dual averaging during the burn-in.

    Returns ``(kept states (draws, chains, 2), mean accept_prob or nan, the step size used)``."""
    total = settings.burn_in + settings.steps
    state, kept, accepts = ChainState.at(x0), [], []
    done = 0
    if adapt:
        adapted = run_chains(sampler, energy, state, 0, generator=generator, num_warmup=settings.burn_in,
                             adaptation=DualAveraging(target_accept=REGISTRY[name_of(sampler)].target_accept))
        sampler, state, done = sampler.with_step_size(adapted.step_size), adapted.state, settings.burn_in
    while done < total:
        n = min(settings.block, total - done)
        result = run_chains(sampler, energy, ChainState.at(state.x), n, generator=generator,
                            record_trajectory=True, record_info=True)
        assert result.trajectory is not None  # record_trajectory=True
        for i, x in enumerate(result.trajectory[1:], start=done + 1):
            if i > settings.burn_in and (i - settings.burn_in) % settings.thin == 0:
                kept.append(x)
        if "accept_prob" in result.info:
            accepts.append(result.info["accept_prob"].mean())
        state, done = result.state, done + n
    accept = float(torch.stack(accepts).mean()) if accepts else math.nan
    step = sampler.step_size
    return torch.stack(kept), accept, float(step.mean()) if isinstance(step, torch.Tensor) else step


def run(out_dir: str | Path, *, quick: bool = False, settings: BiasSettings | None = None) -> list[dict]:
    """Run the sweep on every target; write ``bias.csv``, ``bias.md`` and ``bias_<target>.png``."""
    from anila.metrics.diagnostics import effective_sample_size

    settings = settings or (QUICK if quick else BiasSettings())
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    for target_name, (make_target, bound) in TARGETS.items():
        energy = make_target().double()
        g = torch.Generator().manual_seed(settings.seed)
        x0 = energy.sample(settings.chains, generator=g)
        num_kept = settings.chains * (settings.steps // settings.thin)
        truth = cell_log_prob(energy.log_prob, bound, settings.resolution)
        exact = sample_divergences(energy.sample(num_kept, generator=g), None, bound, settings.resolution, truth=truth)
        rows.append(dict(target=target_name, sampler="exact", **exact, ess_per_grad=math.nan, accept=math.nan,
                         wall_s=0.0))
        for spec in sampler_grid(target_name, settings.full_grid):
            sampler = spec.pop("obj")
            start = time.perf_counter()
            kept, accept, used = run_sampler(sampler, energy, x0, settings, g, adapt=spec.pop("adapt", False))
            wall = time.perf_counter() - start
            spec["step_used"] = used
            grads = (settings.burn_in + settings.steps) * sampler.gradients_per_step
            ess = effective_sample_size(kept.movedim(0, 1)).min().item()  # (chains, draws, 2)
            d = sample_divergences(kept.reshape(-1, 2), None, bound, settings.resolution, truth=truth)
            rows.append(dict(target=target_name, **spec, **d, ess_per_grad=ess / (settings.chains * grads),
                             accept=accept, wall_s=wall))
    write_csv(rows, out_dir / "bias.csv")
    atomic_write_text(out_dir / "bias.md", report(rows, settings))
    plot(rows, out_dir)
    return rows


COLUMNS = ("sampler", "variant", "langevin_step", "step_size", "step_used", "threshold", "tv", "kl_hist_true",
           "outside", "ess_per_grad",
           "accept", "wall_s")


def report(rows: list[dict], settings: BiasSettings) -> str:
    text = [f"Settings: {asdict(settings)}\n"]
    for target in TARGETS:
        text.append(f"\n### {target}\n\n")
        text.append(markdown_table([r for r in rows if r["target"] == target], COLUMNS))
    return "".join(text)


def plot(rows: list[dict], out_dir: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for target in TARGETS:
        target_rows = [r for r in rows if r["target"] == target]
        floor = next(r["tv"] for r in target_rows if r["sampler"] == "exact")
        fig, ax = plt.subplots(figsize=(6, 4))
        series: dict[str, list[tuple[float, float]]] = {}
        for r in target_rows:
            if r["sampler"] == "exact" or r.get("variant", "default") != "default":
                continue
            label = r["sampler"] + (f" b={r['threshold']}" if "threshold" in r else "")
            x = r["langevin_step"]  # integrators at ε = sqrt(h)
            series.setdefault(label, []).append((x, r["tv"]))
        for label, points in sorted(series.items()):
            xs, ys = zip(*sorted(points), strict=True)
            ax.plot(xs, ys, marker="o", label=label, linestyle="--" if "+adapt" in label else "-")
        ax.axhline(floor, color="k", linewidth=0.8, label="exact samples (noise floor)")
        ax.set(xscale="log", yscale="log", xlabel="Langevin-equivalent step h (integrators: ε²)",
               ylabel="TV to truth", title=target)
        ax.legend(fontsize=6)
        fig.tight_layout()
        save_figure(fig, out_dir / f"bias_{target}.png", dpi=120)
        plt.close(fig)
