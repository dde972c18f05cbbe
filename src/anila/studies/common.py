"""Shared pieces of the toy studies: targets with known density, sampler grids, and result writers.

Every study writes ``<name>.csv`` (one row per run), ``<name>.md`` (a Markdown table) and PNG plots to its
output folder, and returns the rows.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from anila.data.toy import toy_dataset
from anila.energies import AnalyticEnergy, Gaussian, Rings
from anila.io import atomic_write_text


def anisotropic_gaussian() -> Gaussian:
    """Condition number 100: sds 1 and 0.1 along axes rotated by 30°, mean (1, -0.5)."""
    angle = math.pi / 6
    rot = torch.tensor([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    return Gaussian(torch.tensor([1.0, -0.5]), rot @ torch.diag(torch.tensor([1.0, 0.01])) @ rot.T)


#: Fixed targets of the sampler studies: name -> (energy factory, half-width of the evaluation box).
TARGETS: dict[str, tuple[Callable[[], AnalyticEnergy], float]] = {
    "rings": (Rings, toy_dataset("rings").bound),
    "gaussian_cond100": (anisotropic_gaussian, 4.0),
    "8gaussians": (toy_dataset("8gaussians").true_energy, toy_dataset("8gaussians").bound),
}


def write_csv(rows: Sequence[dict], path: Path) -> Path:
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=keys)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, text.getvalue())
    return path


def _fmt(value) -> str:
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        return f"{value:.3g}" if abs(value) < 1e4 else f"{value:.2e}"
    return str(value)


def markdown_table(rows: Sequence[dict], columns: Sequence[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_fmt(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"
