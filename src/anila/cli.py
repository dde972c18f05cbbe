"""The ``anila`` command line: ``train``, ``sample``, ``demo``, ``plot``, ``compare``, ``bench``, ``compose``, ``eval``,
``ood``, ``classify``, ``explore``.

Each subcommand imports what it needs inside its handler, so ``anila --help``, ``anila --version`` and a
mistyped subcommand start without loading torch.

User errors (bad config, missing file, diverged run) print one line ``anila: error: ...`` and exit
non-zero (2 for bad input, 3 for a diverged run) without a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from anila.errors import AnilaError, RunInterrupted, describe_os_error


def _train(args: argparse.Namespace) -> int:
    from anila.config import load_config
    from anila.train.distributed import init_distributed, shutdown
    from anila.train.folder import train_config_path
    from anila.train.interrupt import graceful_stop
    from anila.train.run import run_training

    config_path = train_config_path(args.config, args.resume)
    config = load_config(config_path, args.set)
    if args.resume and args.out and Path(args.out).resolve() != Path(args.resume).resolve():
        raise AnilaError(f"--resume {args.resume} continues that run folder; drop --out {args.out}")
    out = Path(args.resume or args.out or Path("runs") / config_path.stem)
    context = init_distributed()  # torchrun --nproc_per_node=N: one process per rank; else a no-op
    try:
        with graceful_stop() as stop:  # SIGINT / SIGTERM: checkpoint at the current iteration, then exit 130 / 143
            summary = run_training(config, out, progress=not args.quiet, resume=bool(args.resume),
                                   overwrite=args.overwrite, stop=stop)
    finally:
        shutdown()
    if context.is_main:
        metrics = ", ".join(f"{k} = {v:.4f}" for k, v in summary.metrics.items())
        processes = f", {context.world_size} processes" if context.enabled else ""
        print(f"run written to {out}/ ({metrics or 'no exact metrics for this data set'}{processes})")
    return 0


def _sample(args: argparse.Namespace) -> int:
    import torch

    from anila.train.trained import (
        MAX_SAMPLE_STEPS,
        MAX_SAMPLES,
        data_units,
        load_trained_energy,
        sample_settings,
        write_samples,
    )

    if Path(args.out).suffix != ".npy":
        raise AnilaError(f"--out must name a .npy file, got {args.out}")
    if not 1 <= args.num <= MAX_SAMPLES:
        raise AnilaError(f"--num must be in [1, {MAX_SAMPLES}], got {args.num}")
    if args.steps is not None and not 0 <= args.steps <= MAX_SAMPLE_STEPS:
        raise AnilaError(f"--steps must be in [0, {MAX_SAMPLE_STEPS}], got {args.steps}")
    if args.figure is not None:
        _check_figure_path(args.figure)
    config, energy = load_trained_energy(args.checkpoint)
    generator = torch.Generator().manual_seed(args.seed)
    if args.augment_every and config.data.is_points:
        raise AnilaError("--augment-every applies to image models only")
    shape = write_samples(energy, args.num, args.out, sample_settings(config, num_steps=args.steps),
                          generator=generator, augment_every=args.augment_every, to_data=data_units(config.data))
    print(f"wrote {args.num} samples, shape {shape}, to {args.out}")
    if args.figure is not None:
        print(f"wrote {_sample_figure(config, args.out, args.figure, args.steps)}")
    return 0


def _check_figure_path(figure: str) -> None:
    from anila.train.figures import FIGURE_FORMATS

    suffix = Path(figure).suffix.lstrip(".").lower()
    if suffix not in FIGURE_FORMATS:
        raise AnilaError(f"--figure must end in .{', .'.join(FIGURE_FORMATS)}, got {figure}")


def _sample_figure(config, npy: str, figure: str, steps: int | None) -> Path:
    """The figure of the samples just written to ``npy`` (read back from the file), written atomically."""
    import numpy as np
    import torch

    from anila.data.toy import toy_dataset
    from anila.samplers.registry import name_of
    from anila.train.figures import plot_drawn_samples

    limit = 64 if len(config.data.event_shape) == 3 else 20_000  # a grid or a scatter needs no more
    samples = torch.from_numpy(np.array(np.load(npy, mmap_mode="r", allow_pickle=False)[:limit]))
    bound = (config.eval.bound or toy_dataset(config.data.name).bound) if config.data.is_toy else None
    steps = config.train.num_steps if steps is None else steps
    title = f"{config.data.name}: {name_of(config.sampler)}, {steps} steps"
    return plot_drawn_samples(samples, Path(figure), title, bound=bound)


def demo_configs() -> list[str]:
    """The README demo's two configs, shipped inside the package (``configs/demo_rings_*.toml`` link to them)."""
    from importlib.resources import files

    folder = files("anila") / "configs"
    return [str(folder / name) for name in ("demo_rings_anila.toml", "demo_rings_langevin.toml")]


def _long_run_samples(config, run_dir: Path) -> Path:
    """``samples_long_run.png``: fresh noise run with the training sampler for ``sample_steps(config)`` steps
    (:func:`anila.train.evaluate_points.sample_steps`: at least 1000).

    A recipe that trains with persistent or replay chains runs only K steps per iteration, continuing old
    chains; fresh chains need many more steps to reach the model, so ``samples.png`` (K steps from noise)
    does not show what it learned. This figure does."""
    import torch

    from anila.data.toy import toy_dataset
    from anila.train.evaluate_points import sample_steps
    from anila.train.figures import plot_samples
    from anila.train.summary import run_title
    from anila.train.trained import draw_samples, load_trained_energy, sample_settings

    config, energy = load_trained_energy(run_dir)
    energy.eval()
    generator = torch.Generator().manual_seed(config.train.seed + 1)
    steps = sample_steps(config)
    samples = draw_samples(energy, config.eval.num_samples, sample_settings(config, num_steps=steps),
                           generator=generator)
    dataset = toy_dataset(config.data.name)
    data = dataset.sample(config.eval.num_samples, generator=generator)
    bound = config.eval.bound or dataset.bound
    return plot_samples(data, samples, bound, run_dir / "samples_long_run.png",
                        f"{run_title(config)}; samples: {steps} steps from noise")


def _demo(args: argparse.Namespace) -> int:
    import time

    from anila.config import load_config
    from anila.samplers import registry
    from anila.train.run import run_training

    out = Path(args.out)
    results = []
    for path in args.configs or demo_configs():
        config = load_config(path, args.set)
        name = Path(path).stem
        start = time.perf_counter()
        summary = run_training(config, out / name, progress=not args.quiet, overwrite=args.overwrite)
        elapsed = time.perf_counter() - start
        kl = summary.metrics.get("kl_true_model", float("nan"))
        print(f"{name}: {registry.name_of(config.sampler)}, KL(true || learned) = {kl:.4f}, "
              f"TV = {summary.metrics.get('tv', float('nan')):.4f}, {elapsed:.0f} s")
        if config.chains.init in ("persistent", "replay") and config.data.is_toy:
            _long_run_samples(config, out / name)
        results.append((name, kl))
    kls = ", ".join(f"{name} {kl:.4f}" for name, kl in results)
    print(f"figures in {out}/<run>/samples.png, density.png and curves.png; final KL(true || learned): {kls}")
    return 0


def _plot(args: argparse.Namespace) -> int:
    from anila.train.curves import plot_curves

    if Path(args.out).suffix.lower() not in (".png", ".pdf", ".svg"):
        raise AnilaError(f"--out must name a .png, .pdf or .svg file, got {args.out}")
    if args.label and len(args.label) != len(args.runs):
        raise AnilaError(f"--label given {len(args.label)} times for {len(args.runs)} runs; give one per run")
    path = plot_curves(args.runs, args.out, labels=args.label or None)
    print(f"curves of {len(args.runs)} run(s) written to {path}")
    return 0


class _Version(argparse.Action):
    """``--version``: the installed package's version, read from its metadata only when asked."""

    def __call__(self, parser, namespace, values, option_string=None):
        import anila

        print(f"anila {anila.__version__}")
        parser.exit()


def _compare(args: argparse.Namespace) -> int:
    import dataclasses
    import importlib
    import tomllib

    from anila.studies import STUDIES

    module = importlib.import_module(STUDIES[args.study])
    settings_cls = type(module.QUICK)
    settings = module.QUICK if args.quick else settings_cls()
    fields = {f.name: f for f in dataclasses.fields(settings_cls)}
    for item in args.set:
        key, _, raw = item.partition("=")
        if key not in fields:
            raise AnilaError(f"--set {key}: unknown setting of study {args.study}; valid: {', '.join(fields)}")
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        default = getattr(settings, key)
        if isinstance(default, tuple):
            value = tuple(value) if isinstance(value, list) else (value,)
        elif isinstance(default, float) and isinstance(value, int):
            value = float(value)
        if type(value) is not type(default) and not (isinstance(default, tuple) and isinstance(value, tuple)):
            raise AnilaError(f"--set {key}: expected {type(default).__name__}, got {raw!r}")
        settings = dataclasses.replace(settings, **{key: value})
    out = Path(args.out or Path("runs") / "compare" / args.study)
    module.run(out, settings=settings)
    print(f"{args.study}: results in {out}/ ({args.study}.csv, {args.study}.md, PNG plots)")
    return 0


def _check_json_path(option: str, path: str | None) -> None:
    """Refuse an output path for JSON results that is not a ``.json`` file, before any work is done."""
    if path and Path(path).suffix != ".json":
        raise AnilaError(f"{option} must name a .json file, got {path}")


def _write_json(path: str | None, results: dict, *, indent: int) -> None:
    """Write ``results`` to ``path`` (when given, atomically), creating its folder."""
    if not path:
        return
    from anila.io import atomic_write_text

    atomic_write_text(path, json.dumps(results, indent=indent) + "\n")
    print(f"results written to {path}")


def _bench(args: argparse.Namespace) -> int:
    import dataclasses

    from anila.bench.speed import QUICK, SpeedSettings, format_markdown, run_speed

    options = tuple(o.strip() for o in args.options.split(",") if o.strip()) if args.options else ()
    base = QUICK if args.quick else SpeedSettings()
    models = tuple(m.strip() for m in args.models.split(",")) if args.models else base.models
    if args.threads is not None and args.threads < 1:
        raise AnilaError(f"--threads must be >= 1, got {args.threads}")
    settings = dataclasses.replace(base, device=args.device, threads=args.threads or base.threads, options=options,
                                   models=models)
    if args.batches:
        try:
            batches = tuple(int(b) for b in args.batches.split(","))
        except ValueError:
            raise AnilaError(f"--batches must be comma-separated integers, got {args.batches!r}") from None
        settings = dataclasses.replace(settings, mlp_batches=batches, image_batches=batches)
    _check_json_path("--out", args.out)
    results = run_speed(settings, progress=lambda text: print(f"bench: {text}", file=sys.stderr))
    print(format_markdown(results))
    _write_json(args.out, results, indent=1)
    return 0


def _compose(args: argparse.Namespace) -> int:
    from anila.commands.compose import compose_checkpoints

    samples = compose_checkpoints(args.checkpoints, args.op, args.out, alpha=args.alpha, sampler=args.sampler,
                                  overrides=args.set, num=args.num, num_steps=args.steps, seed=args.seed,
                                  normalise=args.normalise)
    print(f"wrote {len(samples)} samples of {args.op}({', '.join(args.checkpoints)}) to {args.out}/ "
          "(samples.npy, samples.png, compose.json)")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from anila.commands.evaluate import evaluate_checkpoint, parse_metrics

    _check_json_path("--out", args.out)
    results = evaluate_checkpoint(args.checkpoint, parse_metrics(args.metrics), num=args.num, seed=args.seed,
                                  ais_chains=args.ais_chains, ais_temperatures=args.ais_temperatures,
                                  ais_step_size=args.ais_step_size, features=args.features,
                                  progress=not args.quiet, num_steps=args.steps)
    for name, value in results.items():
        print(f"{name} = {value:.6g}")
    _write_json(args.out, results, indent=2)
    return 0


def _ood(args: argparse.Namespace) -> int:
    from anila.commands.ood import ood_checkpoint

    _check_json_path("--json", args.json)
    specs = [s for s in args.out.split(",") if s.strip()]
    results = ood_checkpoint(args.checkpoint, specs, in_spec=args.in_spec, num=args.num, seed=args.seed,
                             out_json=args.json)
    print("| OOD set | AUROC (energy) | AUROC (grad norm) | inputs in / out |")
    print("|---|---|---|---|")
    for spec, row in results.items():
        print(f"| {spec} | {row['auroc_energy']:.4f} | {row['auroc_grad_norm']:.4f} | {row['num_in']} / "
              f"{row['num_out']} |")
    for spec, row in results.items():
        if "auroc_max_softmax" in row:  # a classifier energy (JEM): the max-softmax baseline
            print(f"{spec}: AUROC (max softmax) {row['auroc_max_softmax']:.4f}")
    if args.json:
        print(f"results written to {args.json}")
    return 0


def _classify(args: argparse.Namespace) -> int:
    from anila.commands.classify import classify_checkpoint

    results = classify_checkpoint(args.checkpoint, split=args.split, num=args.num, seed=args.seed, out=args.out)
    for name, value in results.items():
        print(f"{name} = {value:.6g}")
    return 0


def _explore(args: argparse.Namespace) -> int:
    from anila.commands.explore import explore_checkpoint

    record = explore_checkpoint(args.checkpoint, args.out, num=args.num, steps=args.steps,
                                num_snapshots=args.snapshots, temperature=args.temperature,
                                descent_steps=args.descent_steps, sampler=args.sampler, overrides=args.set,
                                seed=args.seed, progress=not args.quiet)
    print(f"mean energy: start {record['mean_energy_start']:.4g}, after {args.steps} steps "
          f"{record['mean_energy_long_run']:.4g}, after {args.descent_steps} low-temperature steps "
          f"{record['mean_energy_low_temperature']:.4g}")
    print(f"written to {args.out}/ (long_run.png/.npy, energy_trace.png/.csv, low_temperature.png/.npy, "
          "explore.json)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="anila", description="Train and sample energy-based models with MCMC.")
    parser.add_argument("--version", action=_Version, nargs=0, help="print the version and exit")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train an EBM from a TOML config",
                       description="Train an EBM from a TOML config and write a run folder.")
    p.add_argument("config", nargs="?", help="path to a TOML config (see configs/); with --resume: optional")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a config value, e.g. --set train.lr=1e-3 (repeatable)")
    p.add_argument("--out", help="run folder, new or empty (default: runs/<config name>)")
    p.add_argument("--resume", metavar="RUN_DIR",
                   help="continue the run in RUN_DIR from its newest good checkpoint (its own config.toml)")
    p.add_argument("--overwrite", action="store_true",
                   help="delete the previous run in the run folder first (only the files a run writes)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_train)

    p = sub.add_parser("sample", help="draw samples from a trained checkpoint",
                       description="Draw samples from a trained EBM with the sampler of its config.")
    p.add_argument("checkpoint", help="a .safetensors checkpoint, its .json sidecar, or a run folder")
    p.add_argument("--num", type=int, required=True, help="number of samples")
    p.add_argument("--out", required=True, help="output .npy file, shape (num, *event)")
    p.add_argument("--steps", type=int, default=None, help="sampler steps (default: the training K)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--augment-every", type=int, default=0, metavar="N",
                   help="improved-CD sampling (Algorithm 2): augmentation transitions every N steps (images)")
    p.add_argument("--figure", metavar="PATH", default=None,
                   help="also draw the samples into PATH (.png, .pdf, .svg, .jpg): a scatter, a histogram, the "
                        "pairwise scatters or an image grid, as their shape suits")
    p.set_defaults(func=_sample)

    p = sub.add_parser("demo", help="train several configs and compare their final density KL",
                       description="Train each config in turn and print the final KL(true || learned).")
    p.add_argument("configs", nargs="*", help="TOML configs to train and compare (default: the README demo's "
                   "AniLA and Langevin configs, shipped with the package)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override applied to every config (repeatable)")
    p.add_argument("--out", default="runs/demo", help="folder for the run folders (default: runs/demo)")
    p.add_argument("--overwrite", action="store_true", help="replace the previous demo runs in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_demo)

    p = sub.add_parser("plot", help="training curves of one or more runs, overlaid",
                       description="Plot loss, energy gap, input-gradient norm, clip fraction / acceptance and the "
                                   "grid KL (where known) against iteration, from each run's metrics.jsonl.")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run folders (each holds metrics.jsonl)")
    p.add_argument("--out", required=True, help="output figure (.png, .pdf or .svg)")
    p.add_argument("--label", action="append", default=[], help="legend name of each run, in order (repeatable)")
    p.set_defaults(func=_plot)

    p = sub.add_parser("compare", help="run a study on the toys (bias, convergence, equal_budget, time_to_quality)",
                       description="Run one of the toy studies and write CSV, Markdown and PNG results.")
    p.add_argument("study", choices=["bias", "convergence", "equal_budget", "time_to_quality"])
    p.add_argument("--quick", action="store_true", help="a few-minute version (the tests smoke-run it)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a study setting, e.g. --set seeds=[0,1] (repeatable)")
    p.add_argument("--out", help="output folder (default: runs/compare/<study>)")
    p.set_defaults(func=_compare)

    p = sub.add_parser("bench", help="time every sampler step against the bare forward+backward pass",
                       description="Speed benchmark: models x batches x samplers, as ratios to the limit.")
    p.add_argument("--quick", action="store_true", help="tiny sizes, a few seconds (the tests smoke-run it)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default: cpu)")
    p.add_argument("--options", default="", help="comma-separated: compile, channels_last, bf16, cuda_graphs")
    p.add_argument("--models", default="", help="comma-separated subset of mlp, convnet, resnet")
    p.add_argument("--batches", default="", help="comma-separated batch sizes for every model (default: the grid's)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--out", help="write the results as JSON here, e.g. benchmarks/results/cpu.json")
    p.set_defaults(func=_bench)

    p = sub.add_parser("compose", help="sample the and / or / not of independently trained energies",
                       description="Compose trained energies (and: E_a + E_b; or: -logsumexp(-E_a, -E_b); "
                                   "not: E_a - alpha E_b) and sample the result; see docs/applications.md.")
    p.add_argument("checkpoints", nargs="+", metavar="CHECKPOINT",
                   help="checkpoints or run folders (two for --op not)")
    p.add_argument("--op", required=True, choices=["and", "or", "not"], help="the composition")
    p.add_argument("--alpha", type=float, default=0.5, help="weight of B in 'A not B': E_a - alpha E_b (0.5)")
    p.add_argument("--normalise", action="store_true",
                   help="--op or: estimate each model's log Z by AIS and mix them with equal weights")
    p.add_argument("--sampler", help="langevin | anila | mala | metropolis_anila | hmc (default: the first "
                   "checkpoint's sampler)")
    p.add_argument("--set", action="append", default=[], metavar="sampler.KEY=VALUE",
                   help="override a sampler field, e.g. --set sampler.step_size=0.1 (repeatable)")
    p.add_argument("--num", type=int, default=64, help="number of samples (64)")
    p.add_argument("--steps", type=int, default=None, help="sampler steps (default: the training K)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=_compose)

    p = sub.add_parser("eval", help="evaluate a trained checkpoint: test log-likelihood (AIS), FID, KID",
                       description="Evaluate a checkpoint; see docs/evaluation.md for each metric.")
    p.add_argument("checkpoint", help="a .safetensors checkpoint, its .json sidecar, or a run folder")
    p.add_argument("--metrics", default="loglik", help="comma-separated: loglik, fid, kid (default: loglik)")
    p.add_argument("--features", default="classifier",
                   help="fid / kid features: classifier (trained on the data set's labels) or inception "
                        "(needs pip install 'anila[fid]')")
    p.add_argument("--num", type=int, default=1000, help="test points / samples (1000)")
    p.add_argument("--steps", type=int, default=None,
                   help="sampler steps of the fid / kid samples from fresh noise (default: the training K)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--ais-chains", type=int, default=256, help="AIS chains (256)")
    p.add_argument("--ais-temperatures", type=int, default=1000, help="AIS temperatures (1000)")
    p.add_argument("--ais-step-size", type=float, default=None,
                   help="MALA step size of the AIS kernel (default 0.01 for toys, 1e-4 for images)")
    p.add_argument("--out", help="write the results as JSON here")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_eval)

    p = sub.add_parser("ood", help="out-of-distribution detection: AUROC of energy and gradient-norm scores",
                       description="Score inputs by energy and by input-gradient norm and report the AUROC of "
                                   "the in-distribution set against each OOD set; see docs/applications.md.")
    p.add_argument("checkpoint", help="a .safetensors checkpoint, its .json sidecar, or a run folder")
    p.add_argument("--in", dest="in_spec", metavar="DATASET",
                   help="in-distribution set (default: the checkpoint's training data), e.g. digits:holdout=9")
    p.add_argument("--out", required=True, metavar="DATASET[,DATASET...]",
                   help="OOD sets, e.g. digits:class=9,uniform,gaussian:std=0.5")
    p.add_argument("--num", type=int, default=1000, help="inputs per set (1000)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--json", help="also write the results to this .json file")
    p.set_defaults(func=_ood)

    p = sub.add_parser("classify", help="a trained JEM classifier on test data: accuracy, NLL, calibration (ECE)",
                       description="Accuracy, NLL and expected calibration error of a checkpoint with a class "
                                   "head (objective jem) on its data set's test split; see docs/objectives.md.")
    p.add_argument("checkpoint", help="a .safetensors checkpoint, its .json sidecar, or a run folder")
    p.add_argument("--split", default="test", choices=("test", "train"), help="test (default) or train data")
    p.add_argument("--num", type=int, default=10000, help="test draws of a toy (10000)")
    p.add_argument("--seed", type=int, default=0, help="random seed of toy draws")
    p.add_argument("--out", help="folder for classify.json and the reliability diagram reliability.png")
    p.set_defaults(func=_classify)

    p = sub.add_parser("explore", help="mode exploration: long-run chains and low-temperature samples",
                       description="Run long chains from a trained energy (snapshots and energy trace), then "
                                   "descend to low temperature; see docs/applications.md.")
    p.add_argument("checkpoint", help="a .safetensors checkpoint, its .json sidecar, or a run folder")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--num", type=int, default=None, help="chains (default: 16 for images, 1000 for toys)")
    p.add_argument("--steps", type=int, default=1000, help="long-run sampler steps (1000)")
    p.add_argument("--snapshots", type=int, default=8, help="snapshots shown, log-spaced (8)")
    p.add_argument("--temperature", type=float, default=0.0,
                   help="low-temperature run: noise scaled by sqrt(T); 0 = gradient descent (default)")
    p.add_argument("--descent-steps", type=int, default=1000, help="low-temperature steps (1000, as improved CD)")
    p.add_argument("--sampler", help="sampler for the long run (default: the checkpoint's)")
    p.add_argument("--set", action="append", default=[], metavar="sampler.KEY=VALUE",
                   help="override a sampler field (repeatable)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_explore)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except RunInterrupted as exc:
        print(f"anila: {exc}", file=sys.stderr)
        return exc.exit_code
    except AnilaError as exc:
        print(f"anila: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # a path that is a file, a read-only folder, a full disk: one line, no traceback
        print(f"anila: error: {describe_os_error(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("anila: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
