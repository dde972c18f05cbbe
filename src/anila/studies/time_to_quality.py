"""Time to quality: what each recipe learns in a fixed compute budget, on toys whose true density is known.

Each recipe is a preset (:mod:`anila.presets`; by default every preset shipped, so a new preset file joins
the benchmark with no other change) or a config file (``configs/rings_ksd.toml``: its ``[data]`` is replaced
by each toy), so objectives are compared the same way as recipes. For each recipe, toy and seed it trains the
recipe's model with its objective, sampler, chains and optimiser on the toy, **for ``budget_s`` seconds of
process CPU time on one torch thread** (``time.process_time``, which other processes on the machine do not
inflate; the recipe's ``train.iterations`` is ignored). Then it normalises the learned ``exp(-E)`` on a grid
over the toy's box and reports

- ``kl_true_model``: KL(true ‖ learned) on the ``grid_resolution``² grid (``anila.metrics.density``), and
  ``kl_model_true`` and ``tv`` beside it;
- ``iterations``: training iterations done in the budget, and ``cpu_s`` / ``wall_s`` actually spent
  (the loop runs in chunks sized from the time per iteration so far, so a run overshoots its budget by
  about one iteration);
- ``diverged``: a non-finite loss, energy or gradient (the run stops there and has no KL).

``time_to_quality.md`` gives mean ± sd over seeds and the worst seed for each recipe and toy;
``time_to_quality_<toy>.png`` shows the true density beside each recipe's learned density (first seed).
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import time
import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from anila.config import config_from_dict
from anila.data.toy import toy_dataset
from anila.metrics.density import density_divergences, grid_log_prob
from anila.presets import preset_names
from anila.samplers.adapt import AdaptiveStepSize
from anila.studies.common import markdown_table, write_csv
from anila.train.guard import StepRejected
from anila.train.loop import attach_objective, make_train_state, train

DATASETS = ("rings", "8gaussians", "checkerboard", "pinwheel", "2spirals")
CHUNK = 20  # most iterations per call of the training loop between budget checks


@dataclass(frozen=True)
class TimeToQualitySettings:
    """``recipes``: preset names or config files (``*.toml``; empty: every preset); ``budget_s``: process CPU
    seconds per run, one thread."""

    recipes: tuple[str, ...] = ()
    datasets: tuple[str, ...] = DATASETS
    seeds: tuple[int, ...] = (0, 1, 2)
    budget_s: float = 60.0
    grid_resolution: int = 256


QUICK = TimeToQualitySettings(datasets=("rings", "pinwheel"), seeds=(0,), budget_s=0.5, grid_resolution=32)


def recipes_of(settings: TimeToQualitySettings) -> tuple[str, ...]:
    return settings.recipes or preset_names()


def recipe_config(recipe: str, dataset_name: str, seed: int, overrides: dict | None = None):
    """The config of ``recipe`` on a toy: a preset name, or the path of a config file (``*.toml``, its
    ``[data]`` replaced by the toy), with the seed set. ``overrides``: config sections laid over the recipe, as
    in a config file (``{"train": {"lr": 3e-3}}``); the recipe sweep (``benchmarks/recipe_sweep.py``) uses it to
    measure variants of a preset."""
    if recipe.endswith(".toml"):
        raw = tomllib.loads(Path(recipe).read_text())
    else:
        raw = {"preset": recipe}
    for section, values in (overrides or {}).items():
        raw[section] = {**raw.get(section, {}), **dict(values)}
    raw = {**raw, "data": {"name": dataset_name}, "train": {**raw.get("train", {}), "seed": seed, "iterations": 1}}
    return config_from_dict(raw)


def train_for_budget(recipe: str, dataset_name: str, seed: int, budget_s: float,
                     overrides: dict | None = None):
    """Train ``recipe`` (a preset name or a config file, with ``overrides``: see :func:`recipe_config`) on a toy
    for ``budget_s`` process CPU seconds; ``(config, state, row)``."""
    config = recipe_config(recipe, dataset_name, seed, overrides)
    dataset = toy_dataset(dataset_name)
    torch.manual_seed(seed)
    energy = config.build_energy()
    state = make_train_state(energy, config.train, config.chains, config.data.event_shape)
    if config.adaptation is not None:  # [sampler] adapt = true: the step tuned across iterations
        state.adaptation = AdaptiveStepSize(config.adaptation, config.sampler.step_size, state.generator.device)

    def data(n, g):
        return dataset.sample(n, generator=g)

    attach_objective(state, config.objective, data, config.train)
    row = dict(recipe=recipe, dataset=dataset_name, seed=seed, budget_s=budget_s, diverged=False)
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        while (spent := time.process_time() - cpu) < budget_s:
            # chunks of the public loop, sized so the last one ends about when the budget does
            per_iteration = spent / state.iteration if state.iteration else math.inf
            chunk = max(1, min(CHUNK, int((budget_s - spent) / per_iteration)))
            settings = dataclasses.replace(config.train, iterations=state.iteration + chunk, log_every=10**9)
            train(state, config.sampler, config.chains, data, settings, progress=False)
    except StepRejected as exc:  # a diverged run is a result, recorded as such
        row.update(diverged=True, error=str(exc).split(";")[0])
    row.update(iterations=state.iteration, cpu_s=time.process_time() - cpu, wall_s=time.perf_counter() - wall)
    return config, state, row


def evaluate(config, state, log_true: torch.Tensor, bound: float, resolution: int) -> tuple[dict, torch.Tensor]:
    """Grid divergences of the trained energy against the truth; also returns the learned grid."""
    energy = state.eval_energy
    energy.eval()
    density_energy = config.objective.density_energy(energy)
    log_model = grid_log_prob(lambda x: -density_energy(x), bound, resolution)
    d = density_divergences(log_true, log_model)
    return {"kl_true_model": d["kl_pq"], "kl_model_true": d["kl_qp"], "tv": d["tv"]}, log_model


def summarise(rows: list[dict]) -> list[dict]:
    """Mean ± sd and worst seed of KL(true ‖ learned) per recipe and toy, and mean iterations."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["recipe"], r["dataset"]), []).append(r)
    out = []
    for (recipe, dataset), rs in groups.items():
        kls = [r["kl_true_model"] for r in rs if not r["diverged"] and math.isfinite(r.get("kl_true_model", math.nan))]
        summary = dict(recipe=recipe, dataset=dataset, seeds=len(rs), diverged=sum(r["diverged"] for r in rs),
                       iterations=round(statistics.mean(r["iterations"] for r in rs)))
        if kls:
            sd = statistics.stdev(kls) if len(kls) > 1 else 0.0
            summary["kl_true_model"] = f"{statistics.mean(kls):.3f} ± {sd:.3f}"
            summary["worst_seed"] = max(kls)
        out.append(summary)
    return out


def run(out_dir: str | Path, *, quick: bool = False, settings: TimeToQualitySettings | None = None,
        log=print) -> list[dict]:
    """Train every recipe x toy x seed; write ``time_to_quality.csv``, ``.md`` and ``time_to_quality_<toy>.png``."""
    settings = settings or (QUICK if quick else TimeToQualitySettings())
    for name in settings.datasets:
        if not toy_dataset(name).has_density:
            raise ValueError(f"toy {name!r} has no known density; choose among those that do")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    rows: list[dict] = []
    try:
        for dataset_name in settings.datasets:
            dataset = toy_dataset(dataset_name)
            log_true = grid_log_prob(dataset.log_density, dataset.bound, settings.grid_resolution)
            panels = [("true density", log_true)]
            for recipe in recipes_of(settings):
                for seed in settings.seeds:
                    config, state, row = train_for_budget(recipe, dataset_name, seed, settings.budget_s)
                    if not row["diverged"]:
                        metrics, log_model = evaluate(config, state, log_true, dataset.bound,
                                                      settings.grid_resolution)
                        row.update(metrics)
                        if seed == settings.seeds[0]:
                            panels.append((f"{recipe} (seed {seed})", log_model))
                    rows.append(row)
                    write_csv(rows, out_dir / "time_to_quality.csv")  # partial results survive an interruption
                    log(f"{dataset_name} {recipe} seed={seed}: KL={row.get('kl_true_model', math.nan):.3f} "
                        f"({row['iterations']} iterations in {row['cpu_s']:.1f} CPU s)")
            plot_panels(panels, dataset.bound, out_dir / f"time_to_quality_{dataset_name}.png",
                        f"{dataset_name}: {settings.budget_s:g} CPU s per run, one thread")
    finally:
        torch.set_num_threads(threads)
    write_report(rows, settings, out_dir)
    return rows


def write_report(rows: list[dict], settings: TimeToQualitySettings, out_dir: Path) -> Path:
    text = (f"Budget: {settings.budget_s:g} s of process CPU time per run on one torch thread; grid "
            f"{settings.grid_resolution}²; seeds {list(settings.seeds)}.\n\nSettings: {asdict(settings)}\n\n"
            + markdown_table(summarise(rows), ("recipe", "dataset", "seeds", "diverged", "iterations",
                                               "kl_true_model", "worst_seed")))
    path = out_dir / "time_to_quality.md"
    path.write_text(text)
    return path


def plot_panels(panels: list[tuple[str, torch.Tensor]], bound: float, path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(3 * len(panels), 3.2), squeeze=False)
    for ax, (name, log_p) in zip(axes[0], panels, strict=True):
        ax.imshow(log_p.exp().numpy(), origin="lower", extent=(-bound, bound, -bound, bound), cmap="viridis")
        ax.set(title=name, xticks=[], yticks=[])
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
