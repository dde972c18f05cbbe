"""The speed benchmark: every sampler's step against the hardware limit measured in the same run.

One Langevin-type step costs one forward and one backward pass of the energy with respect to its input;
that pass, written bare as

    x = x.detach().requires_grad_();  torch.autograd.grad(energy(x).sum(), x)

is the **limit**. For each model and batch size the benchmark times the limit, a step of each sampler (from a
chain run of ``num_steps`` steps, so the runner's own overhead counts), and a whole training iteration with
``train_steps`` (K) sampler steps, and the loss pass inside it (forward over data and negatives, backward
into the parameters), and the update of a Langevin and an AniLA step alone (from a state whose energy and
gradient are known: the arithmetic a step adds to the limit), and reports each as a ratio to the limit.
HMC is reported per gradient evaluation (its transition makes ``num_leapfrog_steps`` of them). The issue's targets:

    AniLA step / limit <= 1.10 (ConvNet, batch 128);   AniLA step / Langevin step <= 1.03;
    training iteration / limit <= K + 2.5

A :func:`~anila.bench.timing.profile_call` of one step of each sampler (HMC: one transition) and of one
training iteration counts operators, allocations and the peak memory above the call's start (CPU allocator;
on CUDA the peak is ``torch.cuda.max_memory_allocated``).

>>> results = run_speed(QUICK)                          # doctest: +SKIP
>>> print(format_markdown(results))                     # doctest: +SKIP
"""

from __future__ import annotations

import copy
import dataclasses
import os
import platform
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from anila.bench.timing import CLOCKS, median_ratio, profile_call, synchronize, time_interleaved
from anila.chains.init import ChainInit
from anila.energies.base import Energy
from anila.energies.conv import ConvNetEnergy, ResNetEnergy
from anila.energies.networks import MLPEnergy
from anila.errors import AnilaError
from anila.objectives.contrastive import contrastive_divergence
from anila.samplers import REGISTRY, ChainState, Sampler, make, run_chains
from anila.train.acceleration import sampling_energy
from anila.train.loop import TrainSettings, make_train_state, resolve_device, train_step

MODELS = ("mlp", "convnet", "resnet")
OPTIONS = ("compile", "channels_last", "bf16", "cuda_graphs")
SAMPLER_NAMES = tuple(REGISTRY)  # every registered sampler is timed


@dataclass(frozen=True)
class SpeedSettings:
    """The grid: ``models`` (``mlp``: the paper's toy net, width 64, 4 hidden layers; ``convnet``: the
    short-run-EBM ConvNet with ``convnet_width`` = n_f; ``resnet``: :class:`ResNetEnergy` of ``resnet_width``)
    at ``mlp_batches`` / ``image_batches`` on ``image_size`` × ``image_size`` RGB images."""

    models: tuple[str, ...] = MODELS
    mlp_batches: tuple[int, ...] = (100, 1000, 10000)
    image_batches: tuple[int, ...] = (64, 128)
    image_size: int = 32
    convnet_width: int = 64
    resnet_width: int = 32
    num_steps: int = 5
    train_steps: int = 5
    rounds: int = 3
    min_round_s: float = 0.5
    warmup: int = 1
    device: str = "cpu"
    threads: int | None = None
    options: tuple[str, ...] = ()
    profile: bool = True
    clock: str = "auto"

    def __post_init__(self) -> None:
        unknown = [m for m in self.models if m not in MODELS] + [o for o in self.options if o not in OPTIONS]
        if unknown:
            raise AnilaError(f"unknown model or option {', '.join(unknown)}; models: {', '.join(MODELS)}; "
                             f"options: {', '.join(OPTIONS)}")
        if self.clock not in ("auto", *CLOCKS):
            raise AnilaError(f"clock must be auto, wall or process; got {self.clock!r}")
        if min(self.mlp_batches + self.image_batches, default=1) < 1 or self.num_steps < 1 or self.train_steps < 1:
            raise AnilaError("batch sizes, num_steps and train_steps must be >= 1")


#: A few seconds on a laptop CPU: every code path of the full benchmark on tiny sizes (the tests run it). One
#: thread: several threads on a busy shared CPU wait on each other and make tiny sizes erratic.
QUICK = SpeedSettings(models=("mlp", "convnet"), mlp_batches=(100,), image_batches=(8,), image_size=16,
                      convnet_width=8, num_steps=3, train_steps=3, rounds=3, min_round_s=0.02, warmup=1, threads=1)


def build_model(name: str, settings: SpeedSettings) -> tuple[nn.Module, tuple[int, ...], tuple[int, ...]]:
    """``(energy, event_shape, batch sizes)`` of one model of the grid (seeded: the same weights every run)."""
    torch.manual_seed(0)
    if name == "mlp":
        return MLPEnergy(dim=2, width=64, depth=4), (2,), settings.mlp_batches
    event = (3, settings.image_size, settings.image_size)
    if name == "convnet":
        return ConvNetEnergy(3, settings.convnet_width, settings.image_size), event, settings.image_batches
    return ResNetEnergy(3, settings.resnet_width, image_size=settings.image_size), event, settings.image_batches


def samplers_for(model: str) -> dict[str, Sampler]:
    """Every registered sampler with the registry's settings: ``toy`` ones on the MLP, ``image`` ones (the paper's
    low-temperature regime: step 1, noise 0.01, threshold 0.01) on the image networks."""
    return {name: make(name, image=model != "mlp") for name in REGISTRY}


def prepare_energy(energy: nn.Module, options: tuple[str, ...], device: torch.device) -> Callable[[Tensor], Tensor]:
    """The energy as the chains see it with ``options``: ``channels_last`` weights, and ``compile`` /
    ``cuda_graphs`` exactly as the training loop applies them (:func:`~anila.train.acceleration.sampling_energy`)."""
    if "channels_last" in options:
        # Module.to(memory_format=...) is documented and works; torch's overloads of Module.to omit it
        energy = energy.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    compiled = sampling_energy(energy, "compile" in options, "cuda_graphs" in options, device)
    return energy if compiled is None else compiled


def _bare_pass(energy: Callable[[Tensor], Tensor], x: Tensor) -> Callable[[], object]:
    def limit() -> object:
        leaf = x.detach().requires_grad_(True)
        return torch.autograd.grad(energy(leaf).sum(), leaf)
    return limit


def _cuda_peak_bytes(fn: Callable[[], object], device: torch.device) -> int:
    synchronize(device)
    base = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    fn()
    synchronize(device)
    return torch.cuda.max_memory_allocated(device) - base


def _profile_row(call: Callable[[], object], settings: SpeedSettings, device: torch.device) -> dict:
    """Operator and allocation counts (CPU) and the peak memory of one call."""
    if device.type == "cuda":
        return {"peak_bytes": _cuda_peak_bytes(call, device)}
    if not settings.profile:
        return {"peak_bytes": None}
    profile = profile_call(call).as_dict()
    return {"profile": profile, "peak_bytes": profile["peak_bytes"]}


def _train_iteration(energy: nn.Module, event: tuple[int, ...], batch: int, settings: SpeedSettings,
                     device: torch.device) -> Callable[[], object]:
    """One training iteration (noise-started AniLA chains, K = ``train_steps``) on a copy of ``energy``."""
    image = len(event) == 3
    train = TrainSettings(batch_size=batch, num_steps=settings.train_steps, device=str(device),
                          precision="bf16" if "bf16" in settings.options else "float32",
                          channels_last="channels_last" in settings.options, compile="compile" in settings.options,
                          cuda_graphs="cuda_graphs" in settings.options)
    chains = ChainInit(noise="uniform") if image else ChainInit(scale=2.0)
    state = make_train_state(copy.deepcopy(energy), train, chains, event)
    sampler = samplers_for("convnet" if image else "mlp")["anila"]
    g = torch.Generator(device=device).manual_seed(1)
    x_pos = torch.rand((batch, *event), generator=g, device=device) * 2 - 1
    return lambda: train_step(state, sampler, chains, x_pos, train)


def _chains_call(sampler: Sampler, energy: Energy, start: ChainState, num_steps: int,
                 generator: torch.Generator) -> Callable[[], object]:
    """``num_steps`` transitions of ``sampler`` from ``start``, as a call to time."""
    return lambda: run_chains(sampler, energy, start, num_steps, generator=generator).x


def _update_call(sampler: Sampler, energy: Energy, state: ChainState,
                 generator: torch.Generator) -> Callable[[], object]:
    """One transition from an evaluated ``state`` (the update alone), as a call to time."""
    return lambda: sampler.step(energy, state, generator)[0].x


def _loss_pass(energy: nn.Module, x: Tensor, autocast) -> Callable[[], object]:
    """The contrastive divergence loss's pass: forward over data and negatives (``2 · batch``), backward into
    the parameters. It is inside every training iteration; measured alone it shows what the K steps leave."""
    x_neg = x.flip(0)

    def loss_pass() -> object:
        energy.zero_grad(set_to_none=True)
        with autocast():
            loss, _ = contrastive_divergence(energy, x, x_neg)
        loss.backward()
        return loss
    return loss_pass


def run_case(model: str, batch: int, settings: SpeedSettings, device: torch.device) -> dict:
    """All rows for one model at one batch size, timed in interleaved rounds; ratios are to this case's limit."""
    energy, event, _ = build_model(model, settings)
    energy = energy.to(device)
    g = torch.Generator(device=device).manual_seed(0)
    x = (torch.rand((batch, *event), generator=g, device=device) * 2 - 1) if len(event) == 3 else \
        2 * torch.randn((batch, *event), generator=g, device=device)
    if "channels_last" in settings.options and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    sample_energy = prepare_energy(energy, settings.options, device)
    use_bf16 = "bf16" in settings.options

    def autocast():
        return torch.autocast(device.type, dtype=torch.bfloat16) if use_bf16 else nullcontext()

    def under_autocast(fn: Callable[[], object]) -> Callable[[], object]:
        def call() -> object:
            with autocast():
                return fn()
        return call

    calls = {"limit": under_autocast(_bare_pass(sample_energy, x))}
    units = {"limit": 1}
    one_step = {"limit": calls["limit"]}  # what the profile runs: one step of each, one training iteration
    for name, sampler in samplers_for(model).items():
        start = ChainState.at(x)
        if sampler.carries_gradient:  # MALA and HMC carry E and ∇E in the state
            with autocast():
                start = start.evaluated(sample_energy)
        # Every chain call makes about num_steps gradient evaluations (HMC: num_steps / L transitions).
        steps = max(1, settings.num_steps // sampler.gradients_per_step)
        units[name] = steps * sampler.gradients_per_step
        calls[name] = under_autocast(_chains_call(sampler, sample_energy, start, steps, g))
        one_step[name] = under_autocast(_chains_call(sampler, sample_energy, start, 1, g))
    for name in ("langevin", "anila"):  # the update alone: a step from a state whose E and ∇E are known
        sampler = samplers_for(model)[name]
        with autocast():
            evaluated = ChainState.at(x).evaluated(sample_energy)
        calls[f"{name}_update"] = one_step[f"{name}_update"] = under_autocast(
            _update_call(sampler, sample_energy, evaluated, g))
        units[f"{name}_update"] = 1
    calls["train_iteration"] = one_step["train_iteration"] = _train_iteration(energy, event, batch, settings,
                                                                              device)  # autocast inside
    units["train_iteration"] = 1
    calls["loss_pass"] = one_step["loss_pass"] = _loss_pass(energy, x, autocast)
    units["loss_pass"] = 1
    timings = time_interleaved(calls, device, rounds=settings.rounds, min_round_s=settings.min_round_s,
                               warmup=settings.warmup, clock=resolve_clock(settings.clock, device))
    rows = {}
    for name, timing in timings.items():
        rows[name] = {"case": name, "units_per_call": units[name], "seconds": timing.median_s / units[name],
                      "timing": timing.as_dict(), **_profile_row(one_step[name], settings, device)}
        # Paired per-round ratio: both timings share each round's machine load.
        rows[name]["ratio_to_limit"] = median_ratio(timing, timings["limit"]) / units[name]
    rows["anila"]["ratio_to_langevin"] = median_ratio(timings["anila"], timings["langevin"])
    rows["anila_update"]["ratio_to_langevin"] = median_ratio(timings["anila_update"], timings["langevin_update"])
    rows["train_iteration"]["target_ratio"] = settings.train_steps + 2.5
    return {"model": model, "batch": batch, "event_shape": list(event), "rows": list(rows.values())}


def resolve_clock(clock: str, device: torch.device) -> str:
    """``auto``: this process's CPU time on a CPU with one torch thread (other processes do not inflate it),
    else the wall clock (CUDA rounds are always timed by CUDA events)."""
    if clock != "auto":
        return clock
    return "process" if device.type == "cpu" and torch.get_num_threads() == 1 else "wall"


def machine_info(device: torch.device) -> dict:
    """What the numbers depend on: versions, threads, the device, the machine's load when the run started."""
    info = {"torch": torch.__version__, "python": platform.python_version(), "platform": platform.platform(),
            "device": str(device), "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
            "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}
    if device.type == "cuda":
        info["device_name"] = torch.cuda.get_device_name(device)
    return info


def run_speed(settings: SpeedSettings, *, progress: Callable[[str], None] | None = None) -> dict:
    """Run the grid; returns ``{"machine", "settings", "cases": [...], "targets": [...]}`` (JSON-ready)."""
    try:
        device = resolve_device(settings.device)
    except ValueError as exc:  # "device = 'cuda': ..." names the argument; here it is the --device flag
        raise AnilaError(f"--{exc}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise AnilaError("--device cuda: no CUDA device is available here; use --device cpu")
    if "cuda_graphs" in settings.options and device.type != "cuda":
        raise AnilaError("--options cuda_graphs needs a CUDA device; add --device cuda or drop cuda_graphs")
    threads = torch.get_num_threads()
    if settings.threads:
        torch.set_num_threads(settings.threads)
    try:
        machine = machine_info(device)
        machine["clock"] = resolve_clock(settings.clock, device)
        cases = []
        for model in settings.models:
            _, _, batches = build_model(model, settings)
            for batch in batches:
                if progress is not None:
                    progress(f"{model} batch {batch}")
                cases.append(run_case(model, batch, settings, device))
    finally:
        torch.set_num_threads(threads)
    machine["load_average_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    results = {"machine": machine, "settings": dataclasses.asdict(settings), "cases": cases}
    results["targets"] = check_targets(results)
    return results


def check_targets(results: dict) -> list[dict]:
    """The issue's targets, each ``{"target", "case", "value", "bound", "met"}``."""
    out = []
    for case in results["cases"]:
        rows = {row["case"]: row for row in case["rows"]}
        label = f"{case['model']} batch {case['batch']}"
        if case["model"] == "convnet" and case["batch"] == 128:
            out.append({"target": "AniLA step / limit", "case": label, "value": rows["anila"]["ratio_to_limit"],
                        "bound": 1.10})
        out.append({"target": "AniLA step / Langevin step", "case": label,
                    "value": rows["anila"]["ratio_to_langevin"], "bound": 1.03})
        it = rows["train_iteration"]
        out.append({"target": "training iteration / limit", "case": label, "value": it["ratio_to_limit"],
                    "bound": it["target_ratio"]})
    for t in out:
        t["met"] = t["value"] <= t["bound"]
    return out


def format_markdown(results: dict) -> str:
    """A Markdown summary: one table of times and ratios per run, then the targets."""
    m, s = results["machine"], results["settings"]
    lines = [f"torch {m['torch']}, device {m['device']}, {m['threads']} threads, {m['clock']} clock, load average at "
             f"start {_load(m.get('load_average'))}, at end {_load(m.get('load_average_end'))}; options: "
             f"{', '.join(s['options']) or 'none'}; chains of {s['num_steps']} steps, K = {s['train_steps']} "
             "per training iteration.", "",
             "| model | batch | limit (ms) | " + " | ".join(SAMPLER_NAMES) + " | AniLA / Langevin "
             "| update µs (Langevin / AniLA) | loss pass | train iteration | peak MiB (AniLA) |",
             "|---|---|---|" + "---|" * len(SAMPLER_NAMES) + "---|---|---|---|---|"]
    for case in results["cases"]:
        rows = {row["case"]: row for row in case["rows"]}
        peak = rows["anila"].get("peak_bytes")
        lines.append(
            f"| {case['model']} | {case['batch']} | {1e3 * rows['limit']['seconds']:.3f} | "
            + " | ".join(f"{rows[n]['ratio_to_limit']:.2f}x" for n in SAMPLER_NAMES)
            + f" | {rows['anila']['ratio_to_langevin']:.3f}"
            f" | {1e6 * rows['langevin_update']['seconds']:.0f} / {1e6 * rows['anila_update']['seconds']:.0f}"
            f" | {rows['loss_pass']['ratio_to_limit']:.2f}x"
            f" | {rows['train_iteration']['ratio_to_limit']:.2f}x "
            f"(≤ {rows['train_iteration']['target_ratio']:g}) | "
            + (f"{peak / 2**20:.1f}" if peak is not None else "n/a") + " |")
    lines += ["", "| target | case | value | bound | met |", "|---|---|---|---|---|"]
    lines += [f"| {t['target']} | {t['case']} | {t['value']:.3f} | {t['bound']:g} | {'yes' if t['met'] else 'no'} |"
              for t in results["targets"]]
    return "\n".join(lines)


def _load(values) -> str:
    return "n/a" if not values else "/".join(f"{v:.1f}" for v in values)
