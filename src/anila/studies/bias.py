"""Study 1: stationary bias of each sampler on fixed energies with a known density.

Chains start at exact draws of the target, so whatever the histogram of their states drifts to is the
sampler's own stationary law (plus Monte Carlo noise), not a convergence effect. For each target, sampler,
step size and threshold we run ``chains`` chains for ``burn_in + steps`` steps, keep every ``thin``-th state
after burn-in and compare their pooled histogram with the true cell masses (``tv``, ``kl_hist_true``). The
``exact`` row is the same number of exact i.i.d. draws: its TV is the noise floor for independent samples.
Also reported: ESS per gradient evaluation (min over the two coordinates), acceptance rate, wall time.

The prediction under test (docs/concepts.md): uncorrected AniLA targets ∝ π/γ, so its TV stays above the floor at
every step size, while Metropolis-adjusted AniLA's does not.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from anila.metrics.density import cell_log_prob, sample_divergences
from anila.samplers import HMC, MALA, AniLA, ChainState, Langevin, MetropolisAniLA, run_chains
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
    """Every (label, sampler, step_size, threshold, variant) row of the sweep for one target."""
    quick = not full_grid
    steps = STEP_SIZES[target][1:2] if quick else STEP_SIZES[target]
    thresholds = THRESHOLDS[1:2] if quick else THRESHOLDS
    rows = []
    for h in steps:
        rows.append(dict(sampler="Langevin", step_size=h, obj=Langevin(step_size=h)))
        rows.append(dict(sampler="MALA", step_size=h, obj=MALA(step_size=h)))
        # HMC with L leapfrog steps of size sqrt(h): one leapfrog step of size ε is a Langevin step h = ε².
        rows.append(dict(sampler="HMC", step_size=math.sqrt(h),
                         obj=HMC(step_size=math.sqrt(h), num_leapfrog_steps=5)))
        for b in thresholds:
            for variant, switches in ANILA_VARIANTS.items():
                if quick and variant != "default":
                    continue
                rows.append(dict(sampler="AniLA", variant=variant, step_size=h, threshold=b,
                                 obj=AniLA(step_size=h, threshold=b, **switches)))
            rows.append(dict(sampler="MetropolisAniLA", step_size=h, threshold=b,
                             obj=MetropolisAniLA(step_size=h, threshold=b)))
    return rows


def run_sampler(sampler, energy, x0: torch.Tensor, settings: BiasSettings, generator: torch.Generator):
    """Run in blocks of ``settings.block`` steps (γ recomputed per block for per_iteration AniLA).

    Returns ``(kept states (draws, chains, 2), mean accept_prob or nan)``."""
    total = settings.burn_in + settings.steps
    state, kept, accepts = ChainState.at(x0), [], []
    done = 0
    while done < total:
        n = min(settings.block, total - done)
        result = run_chains(sampler, energy, ChainState.at(state.x), n, generator=generator,
                            record_trajectory=True, record_info=True)
        for i, x in enumerate(result.trajectory[1:], start=done + 1):
            if i > settings.burn_in and (i - settings.burn_in) % settings.thin == 0:
                kept.append(x)
        if "accept_prob" in result.info:
            accepts.append(result.info["accept_prob"].mean())
        state, done = result.state, done + n
    accept = float(torch.stack(accepts).mean()) if accepts else math.nan
    return torch.stack(kept), accept


def run(out_dir: str | Path, *, quick: bool = False, settings: BiasSettings | None = None) -> list[dict]:
    """Run the sweep on every target; write ``bias.csv``, ``bias.md`` and ``bias_<target>.png``."""
    from anila.metrics.diagnostics import effective_sample_size

    settings = settings or (QUICK if quick else BiasSettings())
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    for target_name, (make, bound) in TARGETS.items():
        energy = make().double()
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
            kept, accept = run_sampler(sampler, energy, x0, settings, g)
            wall = time.perf_counter() - start
            grads = (settings.burn_in + settings.steps) * getattr(sampler, "num_leapfrog_steps", 1)
            ess = effective_sample_size(kept.movedim(0, 1)).min().item()  # (chains, draws, 2)
            d = sample_divergences(kept.reshape(-1, 2), None, bound, settings.resolution, truth=truth)
            rows.append(dict(target=target_name, **spec, **d, ess_per_grad=ess / (settings.chains * grads),
                             accept=accept, wall_s=wall))
    write_csv(rows, out_dir / "bias.csv")
    (out_dir / "bias.md").write_text(report(rows, settings))
    plot(rows, out_dir)
    return rows


COLUMNS = ("sampler", "variant", "step_size", "threshold", "tv", "kl_hist_true", "outside", "ess_per_grad",
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
            x = r["step_size"] ** 2 if r["sampler"] == "HMC" else r["step_size"]  # HMC: equivalent Langevin h
            series.setdefault(label, []).append((x, r["tv"]))
        for label, points in sorted(series.items()):
            xs, ys = zip(*sorted(points), strict=True)
            ax.plot(xs, ys, marker="o", label=label, linestyle="--" if "Metropolis" in label else "-")
        ax.axhline(floor, color="k", linewidth=0.8, label="exact samples (noise floor)")
        ax.set(xscale="log", yscale="log", xlabel="step size h (HMC: ε²)", ylabel="TV to truth", title=target)
        ax.legend(fontsize=6)
        fig.tight_layout()
        fig.savefig(out_dir / f"bias_{target}.png", dpi=120)
        plt.close(fig)
