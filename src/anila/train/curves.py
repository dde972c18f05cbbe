"""Training curves from a run folder's ``metrics.jsonl``: one panel per logged quantity against iteration.

Panels, each drawn when at least one run logged it:

- ``loss``: the objective's loss;
- ``energy_gap``: ``mean E(x⁺) - mean E(x⁻)`` over data and negatives (CD objectives). It stays near zero
  while the chains keep up with the model; a run away from zero is the usual sign of divergence;
- ``grad_norm``: the mean input-gradient norm ``‖∇x E‖`` along the chains;
- ``clip_fraction`` (AniLA: the fraction of coordinates where ``γ < 1``) or ``accept_rate`` (Metropolis
  samplers and HMC);
- ``kl_true_model``: KL(true ‖ learned) on the grid, for toys whose true density is known. Training does not
  log it every iteration, so the panel shows the final value from ``summary.json`` at the last iteration
  (and any ``kl_true_model`` a record holds).

:func:`plot_curves` overlays several runs, one colour each: ``anila plot RUN [RUN ...] --out FILE``.

>>> plot_curves(["runs/demo/demo_rings_anila", "runs/demo/demo_rings_langevin"], "curves.png")  # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from anila.errors import DataError
from anila.io import save_figure

#: ``(keys, y-axis label)`` per panel; the first key a record holds is plotted.
PANELS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("loss",), "loss"),
    (("energy_gap",), "energy gap E(x+) - E(x-)"),
    (("grad_norm",), "mean |grad_x E| along the chains"),
    (("clip_fraction", "accept_rate"), "clip fraction / acceptance"),
    (("kl_true_model",), "KL(true || learned), grid"),
)


def read_metrics(run_dir: str | Path) -> list[dict[str, float]]:
    """The records of ``run_dir/metrics.jsonl``, in order; a truncated last line (a killed run) is skipped."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise DataError(f"{run_dir} is not a run folder: {path} not found")
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def _final_metrics(run_dir: Path) -> dict[str, float]:
    path = run_dir / "summary.json"
    try:
        summary = json.loads(path.read_text()) if path.is_file() else {}
    except json.JSONDecodeError:
        return {}
    metrics = summary.get("metrics", summary) if isinstance(summary, dict) else {}
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float))}


def _series(records: list[dict[str, float]], keys: tuple[str, ...]) -> tuple[list[float], list[float], str]:
    """``(iterations, values, key)`` of the first key in ``keys`` that any record holds."""
    for key in keys:
        points = [(r["iteration"], r[key]) for r in records if key in r and "iteration" in r]
        if points:
            return [p[0] for p in points], [p[1] for p in points], key
    return [], [], keys[0]


def plot_curves(run_dirs: Sequence[str | Path], out: str | Path, *, labels: Sequence[str] | None = None,
                title: str = "") -> Path:
    """Draw the curves of one or more runs into ``out`` (a PNG) and return its path.

    ``labels`` name the runs in the legend (default: each folder's name)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folders = [Path(r) for r in run_dirs]
    labels = list(labels) if labels is not None else [r.name for r in folders]
    runs = []
    for run_dir in folders:
        records = read_metrics(run_dir)
        final = _final_metrics(run_dir)
        if records and "kl_true_model" in final:
            records = records + [{"iteration": records[-1]["iteration"], "kl_true_model": final["kl_true_model"]}]
        runs.append(records)
    panels = [(keys, label) for keys, label in PANELS if any(_series(r, keys)[0] for r in runs)]
    if not panels:
        raise DataError(f"no logged iterations in {', '.join(map(str, folders))}")
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.2), squeeze=False)
    for ax, (keys, ylabel) in zip(axes[0], panels, strict=True):
        for i, (records, label) in enumerate(zip(runs, labels, strict=True)):
            x, y, key = _series(records, keys)
            if not x:
                continue
            style = "o" if len(x) == 1 else "-"
            name = label if len(keys) == 1 or len(runs) > 1 else key
            ax.plot(x, y, style, color=f"C{i}", label=name, markersize=4)
        ax.set(xlabel="iteration", ylabel=ylabel)
        ax.grid(alpha=0.3)
    if len(runs) > 1:
        axes[0][0].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out = Path(out)
    try:
        save_figure(fig, out, dpi=110)  # atomic, like every output file (creates the folder)
    finally:
        plt.close(fig)
    return out
