"""Study 3: EBM training at an equal budget of gradient evaluations (the paper's toy figure, quantified).

For each data set, sampler, budget ``K`` (input-gradient evaluations per training iteration) and seed, train
the per-point MLP with short-run chains from fresh Gaussian×2 noise. Samplers are keyed by registry name; one
whose step costs several gradients (HMC: its leapfrog steps, parallel tempering: its replicas) spends ``K`` as
``K / gradients_per_step`` transitions (at least one). All samplers share one Langevin-equivalent step size
(integrators at ``sqrt(h)``) and noise scale; those with a threshold share one. ``<name>+adapt`` starts the
exact sampler at ``100 h`` and adapts its step across iterations by dual averaging toward its target acceptance
(``[sampler] adapt = true``). After training we report:

- ``kl_true_model`` and ``tv``: the learned ``exp(-E)``, normalised on a 256² grid, against the true density
  (data sets with a closed form only);
- ``mmd``: unbiased MMD² between 2000 short-run samples (the training sampler, ``K`` evaluations from fresh
  noise) and 2000 data points;
- ``high_quality_fraction``, ``modes_covered`` and ``mode_weight_tv`` for the Gaussian mixtures;
- ``wall_s``: training wall time.

The Markdown table gives mean ± sd over seeds.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from anila.chains import ChainInit
from anila.data.toy import toy_dataset
from anila.energies import GaussianMixture, MLPEnergy
from anila.io import atomic_write_text, save_figure
from anila.metrics.density import density_divergences, grid_log_prob
from anila.samplers import REGISTRY, AdaptiveStepSize, DualAveraging, make, sample_chains
from anila.studies.common import markdown_table, write_csv
from anila.train.loop import TrainSettings, make_train_state, train

DATASETS = ("rings", "8gaussians", "25gaussians", "checkerboard", "pinwheel", "2spirals")
SAMPLERS = ("langevin", "anila", "mala", "metropolis_anila", "hmc", "psgld", "metropolis_psgld", "underdamped",
            "parallel_tempering", "mala+adapt", "hmc+adapt")
BUDGETS = (5, 10, 20, 50, 100)


@dataclass(frozen=True)
class BudgetSettings:
    datasets: tuple[str, ...] = DATASETS
    samplers: tuple[str, ...] = SAMPLERS
    budgets: tuple[int, ...] = BUDGETS
    seeds: tuple[int, ...] = (0, 1, 2)
    iterations: int = 1000
    batch_size: int = 100
    lr: float = 1e-3
    l2_reg: float = 0.1
    step_size: float = 0.02
    threshold: float = 5.0
    init_scale: float = 2.0
    num_eval_samples: int = 2000
    grid_resolution: int = 256


QUICK = BudgetSettings(datasets=("rings", "8gaussians"), samplers=("langevin", "anila", "hmc", "mala+adapt"),
                       budgets=(5, 10),
                       seeds=(0,), iterations=30, num_eval_samples=200, grid_resolution=64)


def make_sampler(name: str, budget: int, settings: BudgetSettings):
    """``(sampler, transitions per iteration, adaptation or None)`` spending ``budget`` gradient evaluations."""
    base = name.removesuffix("+adapt")
    sampler = make(base, langevin_step=settings.step_size, threshold=settings.threshold)
    transitions = max(1, budget // sampler.gradients_per_step)
    if base == name:
        return sampler, transitions, None
    return sampler.with_step_size(100 * sampler.step_size), transitions, DualAveraging(REGISTRY[base].target_accept)


def train_one(dataset_name: str, sampler_name: str, budget: int, seed: int, settings: BudgetSettings) -> dict:
    from anila.metrics.samples import mmd, mode_metrics_for

    dataset = toy_dataset(dataset_name)
    sampler, transitions, adaptation = make_sampler(sampler_name, budget, settings)
    train_settings = TrainSettings(iterations=settings.iterations, batch_size=settings.batch_size,
                                   num_steps=transitions, lr=settings.lr, l2_reg=settings.l2_reg, seed=seed,
                                   log_every=settings.iterations)
    chains = ChainInit(init="noise", scale=settings.init_scale)
    torch.manual_seed(seed)
    energy = MLPEnergy(dim=2, width=64, depth=4)
    state = make_train_state(energy, train_settings, chains, (2,))
    if adaptation is not None:
        state.adaptation = AdaptiveStepSize(adaptation, sampler.step_size)
    start = time.perf_counter()
    row = dict(dataset=dataset_name, sampler=sampler_name, budget=budget, transitions=transitions, seed=seed)
    try:
        train(state, sampler, chains, lambda n, g: dataset.sample(n, generator=g), train_settings, progress=False)
    except Exception as exc:  # a diverged run is a result of the study, recorded as such
        row.update(wall_s=time.perf_counter() - start, diverged=True, error=str(exc).split(";")[0])
        return row
    row["wall_s"] = time.perf_counter() - start
    row["diverged"] = False
    if state.adaptation is not None:
        sampler = sampler.with_step_size(float(state.adaptation.step_size()))
        row["adapted_step_size"] = sampler.step_size
    energy.eval()
    g = torch.Generator().manual_seed(10_000 + seed)
    with torch.no_grad():
        if dataset.has_density:
            log_true = grid_log_prob(dataset.log_density, dataset.bound, settings.grid_resolution)
            log_model = grid_log_prob(lambda x: -energy(x), dataset.bound, settings.grid_resolution)
            d = density_divergences(log_true, log_model)
            row.update(kl_true_model=d["kl_pq"], tv=d["tv"])
    x0 = chains.noise_init().sample(settings.num_eval_samples, (2,), generator=g)
    samples = sample_chains(sampler, energy, x0, transitions, generator=g).detach()
    data = dataset.sample(settings.num_eval_samples, generator=g)
    finite = torch.isfinite(samples).all(1)
    row["mmd"] = mmd(samples[finite], data, generator=g) if finite.any() else math.nan
    row["non_finite_samples"] = float((~finite).double().mean())
    if dataset_name in ("8gaussians", "25gaussians"):
        mixture = dataset.true_energy()
        if not isinstance(mixture, GaussianMixture):
            raise TypeError(f"{dataset_name}'s true energy is a {type(mixture).__name__}, not a GaussianMixture")
        row.update(mode_metrics_for(samples[finite], mixture))
    return row


def summarise(rows: list[dict], metrics: tuple[str, ...]) -> list[dict]:
    """Mean ± sd over seeds for each (dataset, sampler, budget)."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["dataset"], r["sampler"], r["budget"]), []).append(r)
    out = []
    for (dataset, sampler, budget), rs in groups.items():
        summary = dict(dataset=dataset, sampler=sampler, budget=budget, runs=len(rs),
                       diverged=sum(bool(r.get("diverged")) for r in rs))
        for m in metrics:
            values = [r[m] for r in rs if isinstance(r.get(m), int | float) and math.isfinite(r[m])]
            if values:
                sd = statistics.stdev(values) if len(values) > 1 else 0.0
                summary[m] = f"{statistics.mean(values):.3g} ± {sd:.2g}"
        out.append(summary)
    return out


METRICS = ("kl_true_model", "tv", "mmd", "high_quality_fraction", "modes_covered", "wall_s")


def run(out_dir: str | Path, *, quick: bool = False, settings: BudgetSettings | None = None,
        log=print) -> list[dict]:
    """Train every combination; write ``equal_budget.csv``, ``equal_budget.md`` and ``equal_budget_<data>.png``."""
    settings = settings or (QUICK if quick else BudgetSettings())
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for dataset in settings.datasets:
        for sampler in settings.samplers:
            for budget in settings.budgets:
                for seed in settings.seeds:
                    rows.append(train_one(dataset, sampler, budget, seed, settings))
                    write_csv(rows, out_dir / "equal_budget.csv")  # partial results survive an interruption
                    r = rows[-1]
                    log(f"{dataset} {sampler} K={budget} seed={seed}: KL={r.get('kl_true_model', math.nan):.3g} "
                        f"MMD={r.get('mmd', math.nan):.3g} ({r['wall_s']:.0f} s)")
    write_report(rows, settings, out_dir)
    return rows


def write_report(rows: list[dict], settings: BudgetSettings, out_dir: Path, note: str = "") -> None:
    """``equal_budget.md`` (mean ± sd over seeds) and the plots, from result rows."""
    summary = summarise(rows, METRICS)
    text = f"Settings: {asdict(settings)}\n\n{note}" + markdown_table(
        summary, ("dataset", "sampler", "budget", "runs", "diverged", *METRICS))
    atomic_write_text(out_dir / "equal_budget.md", text)
    plot(rows, settings, out_dir)


def rows_from_csv(path: str | Path) -> list[dict]:
    """Read ``equal_budget.csv`` back (numbers parsed), e.g. to report an interrupted run."""
    import csv

    def parse(value: str):
        if value in ("True", "False"):
            return value == "True"
        try:
            number = float(value)
        except ValueError:
            return value if value else math.nan
        return int(number) if number.is_integer() and "." not in value and "e" not in value else number

    with open(path, newline="") as f:
        return [{k: parse(v) for k, v in row.items()} for row in csv.DictReader(f)]


def plot(rows: list[dict], settings: BudgetSettings, out_dir: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for dataset in settings.datasets:
        metric = "kl_true_model" if toy_dataset(dataset).has_density else "mmd"
        fig, ax = plt.subplots(figsize=(5, 4))
        for sampler in settings.samplers:
            xs, means, sds = [], [], []
            for budget in settings.budgets:
                values = [r[metric] for r in rows if r["dataset"] == dataset and r["sampler"] == sampler
                          and r["budget"] == budget and math.isfinite(r.get(metric, math.nan))]
                if values:
                    xs.append(budget)
                    means.append(statistics.mean(values))
                    sds.append(statistics.stdev(values) if len(values) > 1 else 0.0)
            if xs:
                ax.errorbar(xs, means, yerr=sds, marker="o", capsize=3, label=sampler)
        ax.set(xscale="log", yscale="log", xlabel="gradient evaluations per iteration (K)", ylabel=metric,
               title=dataset)
        ax.legend(fontsize=7)
        fig.tight_layout()
        save_figure(fig, out_dir / f"equal_budget_{dataset}.png", dpi=120)
        plt.close(fig)
