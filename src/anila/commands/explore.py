"""``anila explore``: mode exploration of a trained energy, as improved CD does (section 3.2, "Mode
Convergence", Figure 7: "very low energy samples obtained after running gradient descent 1000 steps"):
long-run chains, and low-temperature samples.

**Long-run chains.** ``num`` fresh chains (the checkpoint's chain initialisation) run the checkpoint's sampler
(or ``--sampler``) for ``steps`` steps, far beyond the training K. Snapshots at log-spaced steps show whether
the chains stay on the data (a stable energy) or drift into spurious modes (saturated images, collapsed points);
the mean energy along the chains is the stability trace. Files: ``long_run.npy``
``(num_snapshots, num, *event)`` with ``long_run_steps.json``, ``long_run.png`` (rows: chains, columns:
snapshots; scatter panels for toys), ``energy_trace.csv`` / ``.png`` (step, mean, 10% and 90% quantiles of E).

**Low-temperature samples.** From the long-run end states, ``descent_steps`` steps of the Langevin update
with the noise scaled by ``sqrt(temperature)``:

    x' = x - step_size · γ/2 · ∇E(x) + sqrt(temperature) · noise_scale · sqrt(step_size · γ) · ξ

(the sampler's ``γ`` rule; Metropolis samplers run unadjusted here). ``temperature = 0`` is gradient descent
on the energy: the chains settle into the nearest local minima, the modes the model actually has. Files:
``low_temperature.npy`` / ``.png`` and ``explore.json`` (mean energy at the start, after the long run, after
descent; the number of non-finite states).

>>> explore_checkpoint("runs/digits", "runs/digits/explore", steps=2000)   # doctest: +SKIP
"""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from anila.commands.common import with_sampler
from anila.data.toy import toy_dataset
from anila.errors import DataError
from anila.io import atomic_write_text, save_figure, save_npy
from anila.samplers import low_temperature, name_of, run_chains


def low_temperature_sampler(sampler, temperature: float):
    """The sampler's unadjusted Langevin proposal with its noise scaled by ``sqrt(temperature)``."""
    try:
        return low_temperature(sampler, temperature)
    except ValueError as exc:
        raise DataError(f"{exc} (pass --sampler and --set sampler.step_size=...; --temperature >= 0)") from None


def snapshot_steps(steps: int, num_snapshots: int) -> list[int]:
    """``0`` and up to ``num_snapshots - 1`` log-spaced steps ending at ``steps``."""
    if steps < 1 or num_snapshots < 2:
        raise DataError(f"--steps must be >= 1 and --snapshots >= 2; got {steps}, {num_snapshots}")
    return [0, *sorted({int(round(s)) for s in np.geomspace(1, steps, num_snapshots - 1)})]


@torch.no_grad()
def _energy_stats(energy, x: torch.Tensor) -> tuple[float, float, float]:
    e = energy(x).double()
    return float(e.mean()), float(torch.quantile(e, 0.1)), float(torch.quantile(e, 0.9))


def explore_checkpoint(checkpoint, out_dir, *, num: int | None = None, steps: int = 1000, num_snapshots: int = 8,
                       temperature: float = 0.0, descent_steps: int = 1000, sampler: str | None = None,
                       overrides: list[str] | tuple[str, ...] = (), seed: int = 0, progress: bool = True) -> dict:
    """Long-run chains and low-temperature samples of a checkpoint (module docstring); returns the record."""
    from anila.train.trained import load_trained_energy

    config, energy = load_trained_energy(checkpoint)
    if config.objective.noise_conditional:
        raise DataError("a noise-conditional model (multilevel_dsm) has no single energy to explore")
    config = with_sampler(config, sampler, overrides)
    toy = config.data.is_toy
    num = num if num is not None else (1000 if toy else 16)
    if num < 1 or descent_steps < 0:
        raise DataError(f"--num must be >= 1 and --descent-steps >= 0; got {num}, {descent_steps}")
    marks = snapshot_steps(steps, num_snapshots)
    cold = low_temperature_sampler(config.sampler, temperature)
    generator = torch.Generator().manual_seed(seed)
    x = config.chains.noise_init().sample(num, config.data.event_shape, generator=generator)

    trace_every = max(1, steps // 200)
    trace_marks = sorted(set(range(0, steps + 1, trace_every)) | set(marks))
    snapshots, trace = [x], [(0, *_energy_stats(energy, x))]
    state: Any = x  # a tensor first, then the runner's ChainState (carries the last energy and gradient)
    done = 0
    iterator = trace_marks[1:]
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, desc="long run", unit="segment", leave=False)
    for mark in iterator:
        state = run_chains(config.sampler, energy, state, mark - done, generator=generator).state
        done = mark
        trace.append((mark, *_energy_stats(energy, state.x)))
        if mark in marks:
            snapshots.append(state.x.detach())
    long_run = torch.stack(snapshots)
    cold_x = run_chains(cold, energy, long_run[-1], descent_steps, generator=generator).x.detach()

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_npy(out_dir / "long_run.npy", long_run.numpy())
    atomic_write_text(out_dir / "long_run_steps.json", json.dumps(marks))
    save_npy(out_dir / "low_temperature.npy", cold_x.numpy())
    with (out_dir / "energy_trace.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["step", "mean_energy", "q10_energy", "q90_energy"])
        writer.writerows(trace)
    bound = (config.eval.bound or toy_dataset(config.data.name).bound) if toy else None
    _plot(long_run, marks, cold_x, trace, out_dir, bound, temperature, name_of(config.sampler))
    record = {
        "checkpoint": str(checkpoint), "num": num, "steps": steps, "snapshot_steps": marks,
        "sampler": config.to_dict()["sampler"], "temperature": temperature, "descent_steps": descent_steps,
        "low_temperature_sampler": {"name": f"low_temperature({name_of(config.sampler)})",
                                    **dataclasses.asdict(cold)},
        "mean_energy_start": trace[0][1], "mean_energy_long_run": trace[-1][1],
        "mean_energy_low_temperature": _energy_stats(energy, cold_x)[0],
        "nonfinite_long_run": int((~torch.isfinite(long_run[-1].flatten(1))).any(1).sum()),
        "nonfinite_low_temperature": int((~torch.isfinite(cold_x.flatten(1))).any(1).sum()),
        "seed": seed,
    }
    atomic_write_text(out_dir / "explore.json", json.dumps(record, indent=2) + "\n")
    return record


def _plot(long_run, marks, cold_x, trace, out_dir: Path, bound, temperature: float, sampler_name: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from anila.train.figures import image_grid, plot_image_grid, plot_points

    num_snapshots = len(marks)
    if bound is not None:
        fig, axes = plt.subplots(1, num_snapshots, figsize=(2.2 * num_snapshots, 2.4), squeeze=False)
        for ax, points, step in zip(axes[0], long_run, marks, strict=True):
            pts = points.cpu().numpy()
            ax.scatter(pts[:, 0], pts[:, 1], s=1, alpha=0.5, linewidths=0)
            ax.set(xlim=(-bound, bound), ylim=(-bound, bound), aspect="equal", title=f"step {step}",
                   xticks=[], yticks=[])
        fig.suptitle(f"long-run chains ({sampler_name})")
        fig.tight_layout()
        save_figure(fig, out_dir / "long_run.png", dpi=120)
        plt.close(fig)
        plot_points(cold_x, bound, out_dir / "low_temperature.png", f"temperature {temperature}")
    else:
        # rows: chains, columns: snapshots
        grid = image_grid(long_run.transpose(0, 1).reshape(-1, *long_run.shape[2:]), nrow=num_snapshots)
        fig, ax = plt.subplots(figsize=(1.0 * num_snapshots + 1, 1.0 * long_run.shape[1] + 0.6))
        ax.imshow(grid[..., 0] if grid.shape[2] == 1 else grid, cmap="gray" if grid.shape[2] == 1 else None,
                  vmin=0, vmax=1, interpolation="nearest")
        ax.set(title=f"long-run chains ({sampler_name}); steps " + ", ".join(map(str, marks)))
        ax.axis("off")
        fig.tight_layout()
        save_figure(fig, out_dir / "long_run.png", dpi=120)
        plt.close(fig)
        plot_image_grid(cold_x, out_dir / "low_temperature.png", f"temperature {temperature}")
    steps, mean, low, high = (np.array(c) for c in zip(*trace, strict=True))
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot(steps, mean, label="mean E")
    ax.fill_between(steps, low, high, alpha=0.3, label="10-90% of chains")
    ax.set(xlabel="sampler step", ylabel="energy", xscale="symlog", title="energy along the long-run chains")
    ax.legend()
    fig.tight_layout()
    save_figure(fig, out_dir / "energy_trace.png", dpi=120)
    plt.close(fig)
