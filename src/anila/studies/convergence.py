"""Study 2: convergence speed from a poor start (the paper's geometric-ergodicity claim).

All ``chains`` chains start in a tight ball ``N(start, 0.05² I)`` far from the bulk of the target. After ``k``
gradient evaluations we compare the histogram of the chains' states with the true cell masses (TV). The TV
curve of a geometrically ergodic chain approaches its own limit ``TV∞`` (the sampler's stationary bias plus the
noise floor of ``chains`` samples) like ``A ρ^k``; we estimate ``TV∞`` as the mean TV over the last quarter
of the run and fit ``log(TV_k - TV∞)`` linearly in ``k`` where ``TV_k - TV∞ > gap_min``. Reported per
sampler: ``rate`` ρ per gradient evaluation, ``half_life`` (evaluations to halve the excess TV),
``tv_limit`` and ``evals_to_settle`` (first ``k`` with ``TV_k <= TV∞ + gap_min``). A sampler whose TV never
drops by ``gap_min`` below its starting value is reported with ``moved = False`` and no rate (e.g. HMC with a
fixed step rejecting every proposal from a far start).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from anila.io import atomic_write_text, save_figure
from anila.metrics.density import cell_log_prob, sample_divergences
from anila.samplers import REGISTRY, ChainState, DualAveraging, accepts, make, run_chains
from anila.studies.bias import STEP_SIZES
from anila.studies.common import TARGETS, markdown_table, write_csv

STARTS = {"rings": (0.0, 0.0), "gaussian_cond100": (-3.0, 3.0), "8gaussians": (0.0, 0.0)}


@dataclass(frozen=True)
class ConvergenceSettings:
    chains: int = 5000
    grad_evals: int = 4000
    checkpoints: int = 40
    resolution: int = 32
    threshold: float = 2.0
    gap_min: float = 0.02
    seed: int = 0


QUICK = ConvergenceSettings(chains=500, grad_evals=100, checkpoints=10, resolution=16)


def samplers(target: str, threshold: float) -> dict:
    """Every registered sampler at the target's middle Langevin-equivalent step (integrators at ``sqrt(h)``),
    keyed by registry name; every exact sampler also as ``<name>+adapt``: started at ``100 h`` and adapted by
    dual averaging during its first quarter of gradient evaluations (counted in the budget)."""
    h = STEP_SIZES[target][1]
    out = {name: make(name, langevin_step=h, threshold=threshold) for name in REGISTRY}
    out.update({f"{name}+adapt": s.with_step_size(100 * s.step_size) for name, s in list(out.items()) if s.is_exact})
    return out


def fit_rate(evals: list[int], tvs: list[float], gap_min: float) -> dict[str, float]:
    """Geometric fit of ``TV_k - TV∞`` (see the module docstring)."""
    tail = max(1, len(tvs) // 4)
    limit = sum(tvs[-tail:]) / tail
    if tvs[0] - limit <= gap_min:
        return {"moved": False, "tv_limit": limit, "rate": math.nan, "half_life": math.nan,
                "evals_to_settle": math.nan}
    points = [(k, math.log(tv - limit)) for k, tv in zip(evals, tvs, strict=True) if tv - limit > gap_min]
    settle = next((k for k, tv in zip(evals, tvs, strict=True) if tv <= limit + gap_min), math.nan)
    if len(points) < 3:
        return {"moved": True, "tv_limit": limit, "rate": math.nan, "half_life": math.nan, "evals_to_settle": settle}
    ks = torch.tensor([p[0] for p in points], dtype=torch.float64)
    ys = torch.tensor([p[1] for p in points], dtype=torch.float64)
    slope = float(((ks - ks.mean()) * (ys - ys.mean())).sum() / ((ks - ks.mean()) ** 2).sum())
    rate = math.exp(slope)
    half_life = math.log(0.5) / slope if slope < 0 else math.inf
    return {"moved": True, "tv_limit": limit, "rate": rate, "half_life": half_life, "evals_to_settle": settle}


def run(out_dir: str | Path, *, quick: bool = False, settings: ConvergenceSettings | None = None) -> list[dict]:
    """Run every sampler on every target; write ``convergence.csv`` / ``.md`` and ``convergence_<target>.png``."""
    settings = settings or (QUICK if quick else ConvergenceSettings())
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows, curves = [], {}
    for target_name, (make_target, bound) in TARGETS.items():
        energy = make_target().double()
        g = torch.Generator().manual_seed(settings.seed)
        truth = cell_log_prob(energy.log_prob, bound, settings.resolution)
        floor = sample_divergences(energy.sample(settings.chains, generator=g), None, bound, settings.resolution,
                                   truth=truth)["tv"]
        x0 = torch.tensor(STARTS[target_name], dtype=torch.float64) + 0.05 * torch.randn(
            settings.chains, 2, generator=g, dtype=torch.float64)
        for name, sampler in samplers(target_name, settings.threshold).items():
            per_step = sampler.gradients_per_step
            steps = settings.grad_evals // per_step
            thin = max(1, steps // settings.checkpoints)
            warmup = steps // 4 if name.endswith("+adapt") else 0
            adaptation = DualAveraging(REGISTRY[name.removesuffix("+adapt")].target_accept) if warmup else None
            start: torch.Tensor | ChainState = x0
            if warmup:
                warm = run_chains(sampler, energy, x0, 0, generator=g, num_warmup=warmup, adaptation=adaptation)
                sampler, start = sampler.with_step_size(warm.step_size), warm.state
            traj = run_chains(sampler, energy, start, steps - warmup, generator=g, record_trajectory=True,
                              thin=thin).trajectory
            assert traj is not None  # record_trajectory=True
            evals = [(warmup + min(i * thin, steps - warmup)) * per_step for i in range(len(traj))]
            if warmup:  # the curve starts at the poor start; the warm-up's gradients count in the budget
                traj, evals = torch.cat([x0[None], traj]), [0, *evals]
            tvs = [sample_divergences(x, None, bound, settings.resolution, truth=truth)["tv"] for x in traj]
            curves[(target_name, name)] = (evals, tvs)
            step = sampler.step_size
            rows.append(dict(target=target_name, sampler=name,
                             step_size=float(step.mean()) if isinstance(step, torch.Tensor) else step,
                             threshold=settings.threshold if accepts(name.removesuffix("+adapt"), "threshold")
                             else math.nan, tv_floor=floor,
                             tv_at_end=tvs[-1], **fit_rate(evals, tvs, settings.gap_min)))
    write_csv(rows, out_dir / "convergence.csv")
    text = [f"Settings: {asdict(settings)}; start points {STARTS}\n\n"]
    text.append(markdown_table(rows, ("target", "sampler", "step_size", "threshold", "tv_floor", "moved",
                                      "tv_limit", "rate", "half_life", "evals_to_settle")))
    atomic_write_text(out_dir / "convergence.md", "".join(text))
    plot(curves, rows, out_dir)
    return rows


def plot(curves: dict, rows: list[dict], out_dir: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for target in TARGETS:
        fig, ax = plt.subplots(figsize=(6, 4))
        for (t, name), (evals, tvs) in curves.items():
            if t == target:
                ax.plot(evals, tvs, label=name, linestyle="--" if name.endswith("+adapt") else "-")
        floor = next(r["tv_floor"] for r in rows if r["target"] == target)
        ax.axhline(floor, color="k", linewidth=0.8, label="exact samples (noise floor)")
        ax.set(yscale="log", xlabel="gradient evaluations", ylabel="TV to truth", title=f"{target}: from a poor start")
        ax.legend(fontsize=7)
        fig.tight_layout()
        save_figure(fig, out_dir / f"convergence_{target}.png", dpi=120)
        plt.close(fig)
