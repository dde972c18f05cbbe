"""What every example shares: ``--out`` (where the figure goes) and ``--tiny`` (or ``ANILA_EXAMPLES_TINY=1``:
tiny sizes, a few seconds; the test suite smoke-runs every example that way)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def parse_args(name: str, description: str) -> tuple[Path, bool]:
    """``(out folder, tiny)`` from the command line; creates the folder."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", default=f"runs/examples/{name}", help="output folder (default: %(default)s)")
    parser.add_argument("--tiny", action="store_true", help="tiny sizes: a smoke run of a few seconds")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    return out, args.tiny or os.environ.get("ANILA_EXAMPLES_TINY") == "1"


def scatter(panels: dict, path: Path, bound: float = 5.0) -> Path:
    """Side-by-side scatter plots of ``{title: (n, 2) tensor}``, saved as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.2), squeeze=False)
    for ax, (title, points) in zip(axes[0], panels.items(), strict=True):
        pts = points.detach().cpu().numpy()
        ax.scatter(pts[:, 0], pts[:, 1], s=2, alpha=0.5, linewidths=0)
        ax.set(xlim=(-bound, bound), ylim=(-bound, bound), aspect="equal", title=title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"figure written to {path}")
    return path
