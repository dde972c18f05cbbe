"""The paper's rings toy, scored as a density and as a sampler: `python benchmarks/paper_toy.py RUN... --out DIR`.

For each trained rings run folder (``anila train ... --out RUN``) it reports

- the learned density ``exp(-E)`` normalised on a 256² grid: KL(true || learned) and TV against the truth;
- short-run samples, exactly as training drew them (fresh chains from the config's noise, the training
  sampler, K = ``train.num_steps``): the TV of their 64² histogram against the true cell masses
  (``anila.metrics.density.sample_divergences``; the box's outside counts as one more cell);
- long-run samples (``--long-steps`` steps of the same sampler from the same noise): the same TV. A model that
  learned a density gives good long-run samples; a model that learned a short-run sampler may not;
- the floor: the same TV for as many exact samples of the toy (what a perfect sampler scores).

It writes ``paper_toy.md`` (the table) and ``paper_toy.png``: per run, the learned density, the short-run
samples and the long-run samples, beside the true density. Results in docs/results/paper_toy.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from anila.data.toy import toy_dataset
from anila.metrics.density import cell_log_prob, density_divergences, grid_log_prob, sample_divergences
from anila.train.trained import draw_samples, load_trained_energy, sample_settings


def score_run(run: Path, num: int, long_steps: int, truth_cells, log_true, bound: float) -> tuple[dict, dict]:
    config, energy = load_trained_energy(run)
    energy.eval()
    log_model = grid_log_prob(lambda x: -energy(x), bound, 256).detach()
    d = density_divergences(log_true, log_model)
    g = torch.Generator().manual_seed(1)
    short = draw_samples(energy, num, sample_settings(config), generator=g)
    g = torch.Generator().manual_seed(1)
    long = draw_samples(energy, num, sample_settings(config, num_steps=long_steps), generator=g)
    s_short = sample_divergences(short, None, bound, truth=truth_cells)
    s_long = sample_divergences(long, None, bound, truth=truth_cells)
    row = {"run": run.name, "K": config.train.num_steps, "kl_true_model": round(d["kl_pq"], 3),
           "density_tv": round(d["tv"], 3), "short_run_tv": round(s_short["tv"], 3),
           "short_run_outside": round(s_short["outside"], 3), f"long_run_{long_steps}_tv": round(s_long["tv"], 3)}
    return row, {"log_model": log_model, "short": short, "long": long}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--num", type=int, default=10000, help="samples per run")
    parser.add_argument("--long-steps", type=int, default=1000)
    parser.add_argument("--labels", default="", help="comma-separated labels for the figure (default: run names)")
    parser.add_argument("--out", type=Path, default=Path("runs/paper_toy"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    toy = toy_dataset("rings")
    bound = toy.bound
    log_true = grid_log_prob(toy.log_density, bound, 256)
    truth_cells = cell_log_prob(toy.log_density, bound, 64)
    exact = toy.sample(args.num, generator=torch.Generator().manual_seed(2))
    floor = sample_divergences(exact, None, bound, truth=truth_cells)["tv"]
    labels = args.labels.split(",") if args.labels else [r.name for r in args.runs]
    rows, panels = [], []
    for run, label in zip(args.runs, labels, strict=True):
        row, p = score_run(run, args.num, args.long_steps, truth_cells, log_true, bound)
        row["label"] = label
        rows.append(row)
        panels.append((label, row, p))
        print(json.dumps(row), flush=True)
    cols = ["label", "K", "kl_true_model", "density_tv", "short_run_tv", "short_run_outside",
            f"long_run_{args.long_steps}_tv"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in rows]
    text = (f"Samples per run: {args.num}; histogram TV on 64² cells (+1 for outside the box); "
            f"floor (exact samples): {floor:.3f}\n\n" + "\n".join(lines) + "\n")
    (args.out / "paper_toy.md").write_text(text)
    print(text)
    plot(panels, log_true, exact, bound, args.long_steps, args.out / "paper_toy.png")
    return 0


def plot(panels, log_true, exact, bound: float, long_steps: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(panels) + 1
    fig, axes = plt.subplots(3, n, figsize=(3 * n, 9), squeeze=False)
    ext = (-bound, bound, -bound, bound)
    axes[0, 0].imshow(log_true.exp().numpy(), origin="lower", extent=ext, cmap="viridis")
    axes[0, 0].set_title("true density")
    pts = exact[:5000].numpy()
    axes[1, 0].scatter(pts[:, 0], pts[:, 1], s=1, alpha=0.4, linewidths=0)
    axes[1, 0].set_title("exact samples")
    axes[2, 0].axis("off")
    for j, (label, row, p) in enumerate(panels, start=1):
        axes[0, j].imshow(p["log_model"].exp().numpy(), origin="lower", extent=ext, cmap="viridis")
        axes[0, j].set_title(f"{label}\nexp(-E): KL {row['kl_true_model']:.2f}", fontsize=9)
        for i, key, name in ((1, "short", f"short-run (K={row['K']})"), (2, "long", f"long-run ({long_steps})")):
            s = p[key][:5000].numpy()
            tv = row["short_run_tv"] if key == "short" else row[f"long_run_{long_steps}_tv"]
            axes[i, j].scatter(s[:, 0], s[:, 1], s=1, alpha=0.4, linewidths=0)
            axes[i, j].set_title(f"{name}: TV {tv:.2f}", fontsize=9)
    for ax in axes.flat:
        ax.set(xlim=(-bound, bound), ylim=(-bound, bound), aspect="equal", xticks=[], yticks=[])
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
