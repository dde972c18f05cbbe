"""A training run from a :class:`~anila.config.Config`: the edge where config becomes objects and files.

A run folder holds ``config.toml`` (resolved: reproduces the run), ``metrics.jsonl`` (one JSON object per
logged iteration), ``checkpoints/iter_NNNNNNN.safetensors`` + ``.json`` sidecars (the last
``train.keep_checkpoints``, iteration 0 included until it is rotated out; each holds all the run's state, so
``run_training(..., resume=True)`` continues exactly, see :mod:`anila.train.resume`), ``summary.json``, and
figures: for 2-D toys ``samples.png`` (data vs. final samples) and ``density.png`` (learned vs. true density
on the grid); for your own points (``name = "points"``) see :mod:`anila.train.evaluate_points`; for images
``data.png``, ``samples.png`` and ``samples_iter_NNNNNNN.png`` at every checkpoint; for every run ``curves.png``,
the training curves (:mod:`anila.train.curves`).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shlex
import signal
from pathlib import Path

import tomli_w
import torch

from anila.config import Config, check_train_device
from anila.data.images import batch_sampler, build_dataset
from anila.data.toy import toy_dataset
from anila.data.validate import validate_batch, validate_images
from anila.errors import AnilaError, ConfigError, DataError, OutputError, RunFolderBusy, RunInterrupted
from anila.metrics.density import density_divergences, grid_log_prob
from anila.samplers.adapt import AdaptiveStepSize
from anila.train.checkpoint import (
    atomic_write_bytes,
    list_checkpoints,
    load_latest_checkpoint,
    prune_checkpoints,
    save_checkpoint,
    warn,
)
from anila.train.curves import plot_curves
from anila.train.distributed import current
from anila.train.folder import check_fresh_folder
from anila.train.guard import GuardState, guarded_train
from anila.train.lock import RunLock
from anila.train.loop import TrainState, attach_objective, make_train_state
from anila.train.resume import capture, restore, resume_run, seed_all, truncate_metrics
from anila.train.summary import RunSummary, run_title, write_summary
from anila.train.threads import apply_threads
from anila.train.trained import adapted_config, draw_samples, sample_settings

GRID_IMAGES = 64  # images shown in a sample grid


def load_data(config: Config, device: torch.device):
    """``(data(num, generator) -> batch, toy dataset or None, image tensor or None)`` for the config; the batch is
    ``(x, y)`` for an objective with labels (:func:`anila.data.labelled.labelled_data`)."""
    data = config.data
    if config.objective.needs_labels:  # (x, y) batches, e.g. JEM
        from anila.data.labelled import labelled_data

        return labelled_data(config, device)
    if data.is_toy:
        dataset = toy_dataset(data.name)
        sample = lambda n, g: dataset.sample(n, generator=g, device=device)  # noqa: E731
        probe = torch.Generator(device=device).manual_seed(0)  # its own generator: the run's stream is untouched
        validate_batch(sample(8, probe), name=data.name, batch_size=8, event_shape=data.event_shape, device=device)
        return sample, dataset, None
    if data.name == "points":  # your own point file: anila.train.evaluate_points
        from anila.train.evaluate_points import point_sampler

        return point_sampler(config, device)[0], None, None
    images_set = build_dataset(data.name, data.root, image_size=data.image_size, split=data.split)
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
    meta["guard"] = {"retries": guard.retries, "sampler_step_size": guard.sampler.step_size,
                     "good_since": guard.good_since}
    save_checkpoint(path, groups, {**meta, "config": config.to_dict()})
    prune_checkpoints(folder, config.train.keep_checkpoints)
    return path


class _CheckpointWriter:
    """``on_checkpoint`` of the loop; remembers the iteration of the newest checkpoint (``last``)."""

    def __init__(self, config: Config, out_dir: Path, guard: GuardState, last: int):
        self.config, self.out_dir, self.guard, self.last = config, out_dir, guard, last

    def __call__(self, state: TrainState) -> None:
        config, out_dir = self.config, self.out_dir
        save_train_state(config, state, out_dir, self.guard)
        self.last = state.iteration
        if not config.data.is_points and current().is_main:
            from anila.train.figures import plot_image_grid  # matplotlib: imported only when a figure is drawn

            generator = torch.Generator(device=state.generator.device).manual_seed(config.train.seed + 2)
            samples = draw_samples(state.eval_energy, GRID_IMAGES,
                                   sample_settings(adapted_config(config, state.adaptation)), generator=generator)
            plot_image_grid(samples, out_dir / f"samples_iter_{state.iteration:07d}.png",
                            f"iteration {state.iteration}")


def _report(out_dir: Path):
    """Rank 0: a warning on stderr, also recorded in ``events.jsonl``; other ranks: silent."""
    def report(message: str) -> None:
        if current().is_main:
            warn(message)
            if out_dir.is_dir():
                append_jsonl(out_dir / "events.jsonl", {"event": "warning", "message": message})
    return report


def _open_run(config: Config, state: TrainState, out_dir: Path, *, resume: bool) -> GuardState:
    """Fresh run (the folder is empty, see :func:`_claim_folder`): empty logs. Resume: restore ``state`` (and the
    guard's shrunk sampler step and retries) from the newest good checkpoint and cut the logs back to it. Then
    write the resolved config and, at iteration 0, the checkpoint the guard and a resume can return to."""
    context, guard = current(), GuardState(config.sampler)
    metrics_path, events_path = out_dir / "metrics.jsonl", out_dir / "events.jsonl"
    if resume:
        meta = resume_run(out_dir, config.to_dict(), state, report=_report(out_dir), view=context.local_view,
                          tidy=context.is_main) or {}
        if "guard" in meta:
            step_size = meta["guard"]["sampler_step_size"]
            guard = GuardState(config.sampler.with_step_size(step_size), meta["guard"]["retries"],
                               meta["guard"].get("good_since", 0))
        if context.is_main:
            truncate_metrics(metrics_path, state.iteration)
            append_jsonl(events_path, {"event": "resumed", "iteration": state.iteration})
    elif context.is_main:
        atomic_write_bytes(metrics_path, b"")
        atomic_write_bytes(events_path, b"")
    if context.is_main:
        atomic_write_bytes(out_dir / "config.toml", tomli_w.dumps(config.to_dict()).encode())
    if state.iteration == 0:
        save_train_state(config, state, out_dir, guard)
    return guard


def _claim_folder(out_dir: Path, stack: contextlib.ExitStack, *, resume: bool, overwrite: bool) -> None:
    """Rank 0 creates ``out_dir``, locks it for the run (:class:`~anila.train.lock.RunLock`, released by
    ``stack``) and, for a fresh run, checks that it is empty (``overwrite``: clears the previous run). Every
    rank learns whether that worked, so that no rank waits forever for one that stopped."""
    context = current()
    error: Exception | None = None
    if context.is_main:
        try:
            if resume and not out_dir.is_dir():
                raise DataError(f"--resume {out_dir}: no such run folder; pass the folder of an earlier anila "
                                "train run")
            out_dir.mkdir(parents=True, exist_ok=True)
            stack.enter_context(RunLock(out_dir, report=warn))  # stderr only: the folder is not checked yet
            if not resume:
                check_fresh_folder(out_dir, overwrite=overwrite)
        except (AnilaError, OSError) as exc:
            error = exc
    if context.enabled and not bool(context.all_agree(torch.tensor(error is None))) and error is None:
        raise RunFolderBusy(f"rank 0 could not open the run folder {out_dir}; see its message")
    if error is not None:
        raise error


def resume_command(out_dir: Path) -> str:
    """The command line that continues the run in ``out_dir`` (its ``config.toml`` holds every setting)."""
    context = current()
    start = (f"torchrun --standalone --nproc_per_node={context.world_size} -m anila" if context.enabled
             else "anila")
    return f"{start} train --resume {shlex.quote(str(out_dir))}"


def _newest_iteration(out_dir: Path) -> int | None:
    found = list_checkpoints(out_dir / "checkpoints")
    return int(found[-1].stem.split("_")[1]) if found else None


def _stop_check(stop):
    """``stop`` (a flag set by a signal) as the loop's ``stop()``; several processes stop together."""
    if stop is None:
        return None
    context = current()
    if not context.enabled:
        return lambda: bool(stop)
    return lambda: not bool(context.all_agree(torch.tensor(not bool(stop))))


def _stopped(config: Config, state: TrainState, out_dir: Path, writer: _CheckpointWriter, stop,
             during: str = "") -> RunInterrupted:
    """After a signal: a checkpoint of the current iteration (unless the newest is one), and the error to raise."""
    if writer.last != state.iteration:
        save_train_state(config, state, out_dir, writer.guard)  # every rank: a collective in a multi-process run
    if current().is_main:
        append_jsonl(out_dir / "events.jsonl", {"event": "interrupted", "signal": stop.name,
                                                "iteration": state.iteration})
    what = during or f"at iteration {state.iteration} of {config.train.iterations}"
    checkpoint = out_dir / "checkpoints" / f"iter_{state.iteration:07d}.safetensors"
    return RunInterrupted(f"{stop.name}: stopped {what}; checkpoint {checkpoint} is saved; resume with: "
                          f"{resume_command(out_dir)}", stop.signum)


def _write_failed(exc: OSError, out_dir: Path, state: TrainState) -> OutputError:
    """A disk that filled (or a folder that became unwritable) during a run: name the file and the last good
    checkpoint, exit 1."""
    where = exc.filename or out_dir
    newest = _newest_iteration(out_dir)
    last = (f"the last good checkpoint is {out_dir / 'checkpoints' / f'iter_{newest:07d}.safetensors'}; "
            f"after freeing space, resume with: {resume_command(out_dir)}" if newest is not None
            else "no checkpoint was written")
    return OutputError(f"cannot write {where} at iteration {state.iteration} ({exc.strerror or exc}); {last}",
                       exit_code=1)


def _run_callbacks(config: Config, out_dir: Path, writer: _CheckpointWriter):
    """``(rollback, on_event, on_log)`` for :func:`~anila.train.guard.guarded_train`; rank 0 writes."""
    context, report = current(), _report(out_dir)
    metrics_path, events_path = out_dir / "metrics.jsonl", out_dir / "events.jsonl"

    def rollback(state: TrainState) -> None:
        context.barrier()
        groups, meta, _ = load_latest_checkpoint(out_dir, report=report)
        restore(state, *context.local_view(groups, meta))
        writer.last = state.iteration
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


def state_bytes(config: Config) -> int:
    """A cheap lower bound on the memory a run's tensors of chain states take: the data batch, the chains with
    their gradient and proposal (x4), and the replay buffer, in float32."""
    values = math.prod(config.data.event_shape)
    buffer = config.chains.buffer_size if config.chains.init == "replay" else 0
    return (5 * config.train.batch_size + buffer) * values * 4


def check_memory(config: Config) -> None:
    """Refuse a CPU run whose chain states alone (:func:`state_bytes`) exceed the machine's memory, before any
    allocation (a huge ``train.batch_size`` or ``chains.buffer_size`` would otherwise swap or be killed)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):
        return
    need = state_bytes(config)
    if config.train.device == "cpu" and need > total:
        raise ConfigError(f"train.batch_size = {config.train.batch_size} (chains.buffer_size = "
                          f"{config.chains.buffer_size}): the chain states alone need {need / 2**30:.1f} GiB, more "
                          f"than this machine's {total / 2**30:.1f} GiB; lower them")


def run_training(config: Config, out_dir: str | Path, *, progress: bool = True, resume: bool = False,
                 overwrite: bool = False, stop=None) -> RunSummary:
    """Train as configured, writing the run folder; returns the summary (final KL etc.).

    A fresh run needs an empty (or missing) ``out_dir``; ``overwrite=True`` first deletes a previous run there
    (:mod:`anila.train.folder`). The folder is locked for the run (:mod:`anila.train.lock`). ``resume=True``
    continues the run in ``out_dir`` from its newest good checkpoint (the config must match the checkpoint's
    but for :data:`~anila.train.resume.RESUMABLE_KEYS`); the result is bit-identical to a run that was never
    interrupted. ``stop``: a :class:`~anila.train.interrupt.StopFlag`; once it is set the run stops at the
    next iteration boundary, writes a checkpoint there and raises :class:`~anila.errors.RunInterrupted`."""
    out_dir = Path(out_dir)
    context = current()  # one process unless started by torchrun (anila.train.distributed)
    main_rank = context.is_main
    if resume and overwrite:
        raise ConfigError("--resume continues a run and --overwrite deletes it: pass one of them")
    settings = context.rank_settings(config.train)  # this rank's seed and device
    check_train_device(settings)  # a device this machine lacks: one line naming train.device
    check_memory(config)
    apply_threads(config)  # train.threads; 0: one torch thread for point data (anila.train.threads)
    seed_all(config.train.seed)  # the same initial weights on every rank
    energy = config.build_energy()
    state = make_train_state(energy, settings, config.chains, config.data.event_shape)
    if config.adaptation is not None:
        state.adaptation = AdaptiveStepSize(config.adaptation, config.sampler.step_size, state.generator.device)
    context.broadcast([state.energy])  # several processes: every rank starts from rank 0's weights
    data, _, images = load_data(config, state.generator.device)
    attach_objective(state, config.objective, data, settings)
    with contextlib.ExitStack() as stack:
        _claim_folder(out_dir, stack, resume=resume, overwrite=overwrite)
        try:
            guard = _open_run(config, state, out_dir, resume=resume)
            writer = _CheckpointWriter(config, out_dir, guard, last=state.iteration)
            rollback, on_event, on_log = _run_callbacks(config, out_dir, writer)
            guarded_train(state, guard, config.chains, data, settings, config.guard, rollback=rollback,
                          on_event=on_event, on_log=on_log, on_checkpoint=writer,
                          progress=progress and main_rank, stop=_stop_check(stop))
            if state.iteration < config.train.iterations:  # only a stop ends the loop early
                raise _stopped(config, state, out_dir, writer, stop)
            config = adapted_config(config, state.adaptation)  # figures sample with the adapted step
            before_figures = "after the last iteration, before the figures and summary.json were written"
            if stop and main_rank:
                raise _stopped(config, state, out_dir, writer, stop, during=before_figures)
            if stop is not None:
                stop.immediate = True  # no iteration left to finish: a signal stops the figures at once
            try:
                if not main_rank:
                    summary = RunSummary(out_dir=out_dir)
                elif images is not None:
                    summary = evaluate_image_run(config, state.eval_energy, images, out_dir)
                elif not config.data.is_toy:
                    from anila.train.evaluate_points import evaluate_points_run

                    summary = evaluate_points_run(config, state.eval_energy, out_dir)
                else:
                    summary = evaluate_run(config, state.eval_energy, out_dir)
                if main_rank:  # curves.png: loss, energy gap, gradient norm, clip fraction / acceptance, grid KL
                    summary.figures.append(plot_curves([out_dir], out_dir / "curves.png", title=run_title(config)))
            except KeyboardInterrupt:
                if not stop:
                    raise
                raise _stopped(config, state, out_dir, writer, stop, during=before_figures) from None
            finally:
                if stop is not None:
                    stop.immediate = False
        except OSError as exc:
            raise _write_failed(exc, out_dir, state) from None
        except KeyboardInterrupt:
            if stop is None:
                raise
            newest = _newest_iteration(out_dir)
            saved = (f"the newest checkpoint is iteration {newest}" if newest is not None else "no checkpoint yet")
            raise RunInterrupted(f"{stop.name or 'SIGINT'}: stopped at once by a second signal; {saved}; resume "
                                 f"with: {resume_command(out_dir)}", stop.signum or signal.SIGINT) from None
    summary.energy = state.energy
    return summary


def evaluate_image_run(config: Config, energy: torch.nn.Module, images: torch.Tensor, out_dir: Path) -> RunSummary:
    """Sample and data grids of a trained image energy, and mean energies; writes ``summary.json``."""
    from anila.train.figures import plot_image_grid

    device = next(energy.parameters()).device
    generator = torch.Generator(device=device).manual_seed(config.train.seed + 1)
    energy.eval()
    samples = draw_samples(energy, min(GRID_IMAGES, config.eval.num_samples), sample_settings(config),
                           generator=generator)
    shown = images[torch.randperm(len(images), generator=generator, device=device)[:GRID_IMAGES]]
    density = config.objective.density_energy(energy)  # a noise-conditional energy: E(x, σ_min)
    with torch.no_grad():
        metrics = {"energy_data": float(density(shown).mean()), "energy_samples": float(density(samples).mean())}
    title = run_title(config)
    summary = RunSummary(out_dir=out_dir, metrics=metrics, figures=[
        plot_image_grid(shown, out_dir / "data.png", f"{config.data.name}: data"),
        plot_image_grid(samples, out_dir / "samples.png", title),
    ])
    write_summary(out_dir, summary.metrics, config)
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
    density_energy = config.objective.density_energy(energy)
    log_model = grid_log_prob(lambda x: -density_energy(x), bound, config.eval.grid_resolution, device=device)
    log_true = None
    if dataset.has_density:
        log_true = grid_log_prob(dataset.log_density, bound, config.eval.grid_resolution, device=device)
        d = density_divergences(log_true, log_model)
        summary.metrics.update(kl_true_model=d["kl_pq"], kl_model_true=d["kl_qp"], tv=d["tv"],
                               hellinger=d["hellinger"])
    samples = draw_samples(energy, config.eval.num_samples, sample_settings(config), generator=generator)
    data = dataset.sample(config.eval.num_samples, generator=generator, device=device)
    title = run_title(config)
    summary.figures = [
        plot_samples(data, samples, bound, out_dir / "samples.png", title),
        plot_densities(log_model, log_true, bound, out_dir / "density.png", title),
    ]
    write_summary(out_dir, summary.metrics, config)
    return summary
