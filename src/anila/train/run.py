"""A training run from a :class:`~anila.config.Config`: the edge where config becomes objects and files.

A run folder holds ``config.toml`` (resolved: reproduces the run), ``metrics.jsonl`` (one JSON object per
logged iteration), ``checkpoints/iter_NNNNNNN.safetensors`` + ``.json`` sidecars (the last
``train.keep_checkpoints``, iteration 0 included until it is rotated out; each holds all the run's state, so
``run_training(..., resume=True)`` continues exactly, see :mod:`anila.train.resume`), ``summary.json``, and
figures: for 2-D toys ``samples.png`` (data vs. final samples) and ``density.png`` (learned vs. true density
on the grid); for images ``data.png``, ``samples.png`` and ``samples_iter_NNNNNNN.png`` at every checkpoint;
for every run ``curves.png``, the training curves (:mod:`anila.train.curves`).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w
import torch

from anila.chains.augment import Augmentation, augment_every_n
from anila.config import Config, config_from_dict
from anila.data.images import batch_sampler, image_dataset
from anila.data.toy import toy_dataset
from anila.data.validate import validate_batch, validate_images
from anila.errors import ConfigError
from anila.metrics.density import density_divergences, grid_log_prob
from anila.objectives.select import ContrastiveDivergence, ImprovedCD, bind_objective
from anila.samplers.adapt import AdaptiveStepSize
from anila.samplers.runner import sample_chains
from anila.train.checkpoint import (
    atomic_write_bytes,
    load_checkpoint,
    load_latest_checkpoint,
    prune_checkpoints,
    save_checkpoint,
    warn,
)
from anila.train.curves import plot_curves
from anila.train.distributed import current
from anila.train.guard import GuardState, guarded_train
from anila.train.loop import TrainState, make_train_state
from anila.train.resume import capture, restore, resume_run, seed_all, truncate_metrics

GRID_IMAGES = 64  # images shown in a sample grid


@dataclass
class RunSummary:
    """Where a run wrote its files, and its final metrics."""

    out_dir: Path
    metrics: dict[str, float] = field(default_factory=dict)
    figures: list[Path] = field(default_factory=list)
    energy: torch.nn.Module | None = None  # the trained weights (not the EMA copy)


def load_data(config: Config, device: torch.device):
    """``(data(num, generator) -> batch, toy dataset or None, image tensor or None)`` for the config."""
    data = config.data
    if data.is_toy:
        dataset = toy_dataset(data.name)
        sample = lambda n, g: dataset.sample(n, generator=g, device=device)  # noqa: E731
        probe = torch.Generator(device=device).manual_seed(0)  # its own generator: the run's stream is untouched
        validate_batch(sample(8, probe), name=data.name, batch_size=8, event_shape=data.event_shape, device=device)
        return sample, dataset, None
    kwargs: dict[str, Any] = {"size": data.image_size or 8} if data.name == "digits" else {}
    kwargs = {"size": data.image_size or 32} if data.name == "folder" else kwargs
    if data.name in ("mnist", "cifar10"):
        kwargs = {"split": data.split}
    images_set = image_dataset(data.name, data.root, **kwargs)
    images = (images_set if data.holdout_class is None else images_set.select(exclude=data.holdout_class)).images
    validate_images(images, name=data.name, event_shape=data.event_shape)
    images = images.to(device)
    return batch_sampler(images, noise_std=data.noise_std), None, images


def append_jsonl(path: Path, record: dict) -> None:
    """Append one JSON object as a line (``metrics.jsonl``, ``events.jsonl``)."""
    with path.open("a") as f:
        f.write(json.dumps(record) + "\n")


def save_train_state(config: Config, state: TrainState, out_dir: Path, guard: GuardState | None = None) -> Path:
    """Write ``checkpoints/iter_NNNNNNN`` with everything needed to resume, and drop the oldest beyond K.

    In a multi-process run every rank calls it (it gathers the ranks' local state) and rank 0 writes."""
    context = current()
    groups, meta = context.gather_local(*capture(state))
    folder = out_dir / "checkpoints"
    path = folder / f"iter_{state.iteration:07d}.safetensors"
    if not context.is_main:
        return path
    guard = guard or GuardState(config.sampler)
    meta["guard"] = {"retries": guard.retries, "sampler_step_size": guard.sampler.step_size}
    save_checkpoint(path, groups, {**meta, "config": config.to_dict()})
    prune_checkpoints(folder, config.train.keep_checkpoints)
    return path


def _checkpoint_writer(config: Config, out_dir: Path, guard: GuardState):
    def write(state: TrainState) -> None:
        save_train_state(config, state, out_dir, guard)
        if not config.data.is_toy and current().is_main:
            from anila.train.figures import plot_image_grid  # matplotlib: imported only when a figure is drawn

            generator = torch.Generator(device=state.generator.device).manual_seed(config.train.seed + 2)
            samples = draw_samples(adapted_config(config, state.adaptation), state.eval_energy, GRID_IMAGES,
                                   generator=generator)
            plot_image_grid(samples, out_dir / f"samples_iter_{state.iteration:07d}.png",
                            f"iteration {state.iteration}")
    return write


def draw_samples(config: Config, energy: torch.nn.Module, num: int, *, num_steps: int | None = None,
                 generator: torch.Generator | None = None, batch_size: int = 10000,
                 augment_every: int = 0) -> torch.Tensor:
    """Fresh chains from the config's noise, run with its sampler for ``num_steps`` (default: training K).

    ``augment_every`` > 0: improved CD's sampling Algorithm 2, augmentation transitions every that many steps
    (images only)."""
    steps = config.train.num_steps if num_steps is None else num_steps
    device = next(energy.parameters()).device
    noise = config.chains.noise_init()
    annealed = getattr(config.objective, "sample", None)  # noise-conditional models: annealed Langevin
    out = []
    for start in range(0, num, batch_size):
        n = min(batch_size, num - start)
        x0 = noise.sample(n, config.data.event_shape, generator=generator, device=device)
        if annealed is not None:
            out.append(annealed(energy, x0, generator=generator).detach())
        elif augment_every > 0:
            out.append(augment_every_n(config.sampler, energy, x0, steps, augment_every, Augmentation(),
                                       generator).detach())
        else:
            out.append(sample_chains(config.sampler, energy, x0, steps, generator=generator).detach())
    return torch.cat(out)


def _report(out_dir: Path):
    """Rank 0: a warning on stderr, also recorded in ``events.jsonl``; other ranks: silent."""
    def report(message: str) -> None:
        if current().is_main:
            warn(message)
            if out_dir.is_dir():
                append_jsonl(out_dir / "events.jsonl", {"event": "warning", "message": message})
    return report


def _open_run(config: Config, state: TrainState, out_dir: Path, *, resume: bool) -> GuardState:
    """Fresh run: create the folder and empty logs. Resume: restore ``state`` (and the guard's shrunk sampler
    step and retries) from the newest good checkpoint and cut the logs back to it. Then write the resolved
    config and, at iteration 0, the checkpoint the guard and a resume can return to."""
    context, guard = current(), GuardState(config.sampler)
    metrics_path, events_path = out_dir / "metrics.jsonl", out_dir / "events.jsonl"
    if resume:
        meta = resume_run(out_dir, config.to_dict(), state, report=_report(out_dir), view=context.local_view,
                          tidy=context.is_main) or {}
        if "guard" in meta:
            step_size = meta["guard"]["sampler_step_size"]
            guard = GuardState(config.sampler.with_step_size(step_size), meta["guard"]["retries"])
        if context.is_main:
            truncate_metrics(metrics_path, state.iteration)
            append_jsonl(events_path, {"event": "resumed", "iteration": state.iteration})
    elif context.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        metrics_path.write_text("")
        events_path.write_text("")
    if context.is_main:
        atomic_write_bytes(out_dir / "config.toml", tomli_w.dumps(config.to_dict()).encode())
    if state.iteration == 0:
        save_train_state(config, state, out_dir, guard)
    return guard


def _run_callbacks(config: Config, out_dir: Path):
    """``(rollback, on_event, on_log)`` for :func:`~anila.train.guard.guarded_train`; rank 0 writes."""
    context, report = current(), _report(out_dir)
    metrics_path, events_path = out_dir / "metrics.jsonl", out_dir / "events.jsonl"

    def rollback(state: TrainState) -> None:
        context.barrier()
        groups, meta, _ = load_latest_checkpoint(out_dir, report=report)
        restore(state, *context.local_view(groups, meta))
        if context.is_main:
            truncate_metrics(metrics_path, state.iteration)

    def on_event(record: dict) -> None:
        if not context.is_main:
            return
        append_jsonl(events_path, record)
        if record["event"] == "step_rejected":
            warn(f"iteration {record['iteration']}: {record['reason']}; rolled back to iteration "
                 f"{record['rolled_back_to']}, lr and sampler step x{config.guard.shrink} "
                 f"(retry {record['retry']} of {config.guard.max_retries})")

    def on_log(record: dict) -> None:
        record = context.average(record)  # a collective: every rank takes part
        if context.is_main:
            append_jsonl(metrics_path, record)

    return rollback, on_event, on_log


def run_training(config: Config, out_dir: str | Path, *, progress: bool = True, resume: bool = False) -> RunSummary:
    """Train as configured, writing the run folder; returns the summary (final KL etc.).

    ``resume=True`` continues the run in ``out_dir`` from its newest good checkpoint (the config must match
    the checkpoint's but for :data:`~anila.train.resume.RESUMABLE_KEYS`); the result is bit-identical to a
    run that was never interrupted."""
    out_dir = Path(out_dir)
    context = current()  # one process unless started by torchrun (anila.train.distributed)
    main_rank = context.is_main
    if context.enabled and not isinstance(config.objective, ContrastiveDivergence):
        raise ConfigError("objective.name: several processes train the cd objective only; run this one with a "
                          "single process")
    settings = context.rank_settings(config.train)  # this rank's seed and device
    seed_all(config.train.seed)  # the same initial weights on every rank
    energy = config.build_energy()
    state = make_train_state(energy, settings, config.chains, config.data.event_shape)
    if config.adaptation is not None:
        state.adaptation = AdaptiveStepSize(config.adaptation, config.sampler.step_size, state.generator.device)
    state.ddp = context.wrap(state.energy)
    data, _, images = load_data(config, state.generator.device)
    objective = bind_objective(config.objective, data, state.generator) or (
        config.objective if isinstance(config.objective, ImprovedCD) else None)
    guard = _open_run(config, state, out_dir, resume=resume)
    rollback, on_event, on_log = _run_callbacks(config, out_dir)
    guarded_train(state, guard, config.chains, data, settings, config.guard, rollback=rollback, on_event=on_event,
                  on_log=on_log, on_checkpoint=_checkpoint_writer(config, out_dir, guard),
                  progress=progress and main_rank, objective=objective)
    config = adapted_config(config, state.adaptation)
    if not main_rank:
        summary = RunSummary(out_dir=out_dir)
    elif images is not None:
        summary = evaluate_image_run(config, state.eval_energy, images, out_dir)
    else:
        summary = evaluate_run(config, state.eval_energy, out_dir)
    if main_rank:  # curves.png: loss, energy gap, gradient norm, clip fraction / acceptance, grid KL
        summary.figures.append(plot_curves([out_dir], out_dir / "curves.png", title=run_title(config)))
    summary.energy = state.energy
    return summary


def run_title(config: Config) -> str:
    """``data: sampler, K`` for MCMC training; ``data: objective (samples: sampler, K)`` otherwise."""
    sampling = f"{type(config.sampler).__name__}, K={config.train.num_steps}"
    if config.objective.uses_sampler:
        return f"{config.data.name}: {sampling}"
    if hasattr(config.objective, "sample"):
        return f"{config.data.name}: {type(config.objective).__name__} (annealed Langevin samples)"
    return f"{config.data.name}: {type(config.objective).__name__} (samples: {sampling})"


def evaluate_image_run(config: Config, energy: torch.nn.Module, images: torch.Tensor, out_dir: Path) -> RunSummary:
    """Sample and data grids of a trained image energy, and mean energies; writes ``summary.json``."""
    from anila.train.figures import plot_image_grid

    device = next(energy.parameters()).device
    generator = torch.Generator(device=device).manual_seed(config.train.seed + 1)
    energy.eval()
    samples = draw_samples(config, energy, min(GRID_IMAGES, config.eval.num_samples), generator=generator)
    shown = images[torch.randperm(len(images), generator=generator, device=device)[:GRID_IMAGES]]
    with torch.no_grad():
        metrics = {"energy_data": float(energy(shown).mean()), "energy_samples": float(energy(samples).mean())}
    title = run_title(config)
    summary = RunSummary(out_dir=out_dir, metrics=metrics, figures=[
        plot_image_grid(shown, out_dir / "data.png", f"{config.data.name}: data"),
        plot_image_grid(samples, out_dir / "samples.png", title),
    ])
    (out_dir / "summary.json").write_text(json.dumps(summary.metrics, indent=2))
    return summary


def evaluate_run(config: Config, energy: torch.nn.Module, out_dir: Path) -> RunSummary:
    """Figures and grid metrics of a trained 2-D energy; writes ``summary.json``."""
    from anila.train.figures import plot_densities, plot_samples

    dataset = toy_dataset(config.data.name)
    bound = config.eval.bound or dataset.bound
    device = next(energy.parameters()).device
    generator = torch.Generator(device=device).manual_seed(config.train.seed + 1)
    summary = RunSummary(out_dir=out_dir)
    energy.eval()
    density_energy = getattr(config.objective, "density_energy", lambda e: e)(energy)
    log_model = grid_log_prob(lambda x: -density_energy(x), bound, config.eval.grid_resolution, device=device)
    log_true = None
    if dataset.has_density:
        log_true = grid_log_prob(dataset.log_density, bound, config.eval.grid_resolution, device=device)
        d = density_divergences(log_true, log_model)
        summary.metrics.update(kl_true_model=d["kl_pq"], kl_model_true=d["kl_qp"], tv=d["tv"],
                               hellinger=d["hellinger"])
    samples = draw_samples(config, energy, config.eval.num_samples, generator=generator)
    data = dataset.sample(config.eval.num_samples, generator=generator, device=device)
    title = run_title(config)
    summary.figures = [
        plot_samples(data, samples, bound, out_dir / "samples.png", title),
        plot_densities(log_model, log_true, bound, out_dir / "density.png", title),
    ]
    (out_dir / "summary.json").write_text(json.dumps(summary.metrics, indent=2))
    return summary


def adapted_config(config: Config, adaptation: AdaptiveStepSize | None) -> Config:
    """The config whose sampler uses the step size adapted during training (``[sampler] adapt = true``)."""
    if adaptation is None:
        return config
    return dataclasses.replace(config, sampler=config.sampler.with_step_size(float(adaptation.step_size())))


def load_trained_energy(checkpoint: str | Path) -> tuple[Config, torch.nn.Module]:
    """Rebuild the config and the trained energy from a checkpoint file or run folder; a sampler whose step was
    adapted during training samples with the adapted step."""
    groups, meta = load_checkpoint(checkpoint)
    config = config_from_dict(meta["config"])
    if config.adaptation is not None and "adaptation" in groups:
        adaptation = AdaptiveStepSize(config.adaptation, 1.0)
        adaptation.load_state_dict(groups["adaptation"])
        config = adapted_config(config, adaptation)
    energy = config.build_energy()
    energy.load_state_dict(groups["ema"] if "ema" in groups else groups["model"])  # sample with EMA weights
    energy.eval()
    return config, energy
