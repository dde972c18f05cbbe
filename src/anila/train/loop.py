"""The training loop (AniLA Algorithm 1; tutorial seed section 3), the same for every objective.

For each iteration: draw a data batch ``x⁺``; when the objective needs negatives, start chains (the objective's
:meth:`~anila.objectives.base.Objective.chain_starts`, by default :class:`~anila.chains.ChainInit`) and run
``num_steps`` sampler transitions to get ``x⁻``; take the objective's loss on ``Batch(x⁺, x⁻, x0)``, one
backward pass, and (if the divergence guard's check passes) an Adam step on the energy and a step of each of the
objective's own optimizers. Contrastive divergence (``mean E(x⁺) - mean E(x⁻)`` + ``l2_reg`` · mean(E⁺² + E⁻²))
is the default objective. The loop is library code: it takes objects, not a config, and reports through
callbacks (the run layer writes files from them). See :mod:`anila.objectives.base` for the protocol.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from anila.chains.init import ChainInit, ReplayBuffer
from anila.objectives.base import Batch, DataSampler, Objective, ObjectiveContext, ObjectiveSpec
from anila.objectives.contrastive import ContrastiveDivergenceLoss
from anila.samplers.adapt import AdaptiveStepSize
from anila.samplers.base import Sampler
from anila.samplers.runner import run_chains
from anila.train.acceleration import make_adam, sampling_energy
from anila.train.distributed import current
from anila.train.ema import EMA
from anila.train.progress import training_progress
from anila.train.step_check import StepRejected, check_step, gradient_norm, rejection_reason

MAX_BATCH_SIZE = 1_000_000  #: ``train.batch_size`` at most (chains and data points per iteration)
MAX_NUM_STEPS = 100_000  #: ``train.num_steps`` (K) at most; the papers use 50-150
MAX_ITERATIONS = 10**9  #: ``train.iterations`` at most


@dataclass(frozen=True)
class TrainSettings:
    """Hyperparameters of the loop (the ``[train]`` config section).

    ``iterations`` parameter updates with Adam(``lr``, ``(beta1, beta2)``) on batches of ``batch_size``
    data points and as many chains (at most :data:`MAX_BATCH_SIZE`); ``num_steps`` (K, at most
    :data:`MAX_NUM_STEPS`) sampler transitions per iteration; a log record
    every ``log_every`` iterations; ``checkpoint_every`` (0: only at the end), of which the run folder keeps
    the last ``keep_checkpoints`` (0: all). ``ema_decay`` > 0 keeps an
    exponential moving average of the weights, used for sampling and evaluation; ``grad_clip`` > 0 clips the
    parameter gradient's global norm. ``precision = "bf16"`` runs the energy's forward passes (sampler and loss)
    under bfloat16 autocast; ``channels_last`` stores conv weights channels-last. Both are meant for GPUs, as are
    ``compile`` (the chains' energy through ``torch.compile``) and ``cuda_graphs`` (CUDA only): see
    :mod:`anila.train.acceleration`. ``threads``: torch CPU threads for a run (0: one for point data, torch's
    choice for images; see :mod:`anila.train.threads`); the run layer applies it, this loop does not.
    """

    iterations: int = 1000
    batch_size: int = 100
    num_steps: int = 100
    lr: float = 1e-4
    beta1: float = 0.9
    beta2: float = 0.999
    l2_reg: float = 0.0
    seed: int = 0
    log_every: int = 50
    checkpoint_every: int = 0
    keep_checkpoints: int = 3
    device: str = "cpu"
    ema_decay: float = 0.0
    grad_clip: float = 0.0
    precision: str = "float32"
    channels_last: bool = False
    compile: bool = False
    cuda_graphs: bool = False
    threads: int = 0

    def __post_init__(self) -> None:
        for name in ("iterations", "batch_size", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name, most in (("batch_size", MAX_BATCH_SIZE), ("num_steps", MAX_NUM_STEPS),
                           ("iterations", MAX_ITERATIONS)):
            if getattr(self, name) > most:
                raise ValueError(f"{name} must be <= {most}, got {getattr(self, name)}")
        for name in ("num_steps", "checkpoint_every", "keep_checkpoints", "seed", "threads"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a finite number > 0, got {self.lr}")
        if not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1):
            raise ValueError("beta1 and beta2 must be in [0, 1)")
        if self.l2_reg < 0:
            raise ValueError(f"l2_reg must be >= 0, got {self.l2_reg}")
        if self.precision not in ("float32", "bf16"):
            raise ValueError(f"precision must be float32 or bf16, got {self.precision!r}")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if not self.grad_clip >= 0:
            raise ValueError(f"grad_clip must be >= 0, got {self.grad_clip}")
        if self.device != "auto":
            try:
                torch.device(self.device)
            except RuntimeError:
                raise ValueError(f"device must be auto, cpu, cuda or cuda:N; got {self.device!r}") from None
            if self.cuda_graphs and torch.device(self.device).type != "cuda":
                raise ValueError(f"cuda_graphs needs a CUDA device, got device = {self.device!r}; set device = "
                                 "\"cuda\" or cuda_graphs = false")


@dataclass
class TrainState:
    """Everything the loop mutates, owned by the caller: model, optimizer, buffer, generator, iteration, and the
    objective (with its auxiliary modules, their optimizers and its state). ``objective`` defaults to contrastive
    divergence with ``train.l2_reg`` (:func:`make_train_state`); set another with :func:`attach_objective`."""

    energy: nn.Module
    optimizer: torch.optim.Optimizer
    generator: torch.Generator
    buffer: ReplayBuffer | None
    objective: Objective
    iteration: int = 0
    ema: EMA | None = None
    chain_energy: Callable[[Tensor], Tensor] | None = None  # compiled view of ``energy`` for the chains
    adaptation: AdaptiveStepSize | None = None  # the sampler's step size, tuned across iterations

    @property
    def eval_energy(self) -> nn.Module:
        """The weights to sample and evaluate with: the EMA copy when one is kept."""
        return self.ema.shadow if self.ema is not None else self.energy

    def optimizers(self) -> list[torch.optim.Optimizer]:
        """The energy's optimizer, then the objective's (all step together; the guard shrinks all of them)."""
        return [self.optimizer, *self.objective.optimizers().values()]

    def parameters(self) -> list[nn.Parameter]:
        """Every trained parameter: the energy's, then the objective's auxiliary modules'."""
        return [*self.energy.parameters(), *self.objective.parameters()]


def resolve_device(name: str) -> torch.device:
    """``"auto"`` picks CUDA when available, else CPU; anything else is passed to ``torch.device``. A CUDA device
    that this machine (or this torch build) does not have raises :class:`ValueError` naming ``device``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            why = "this torch is a CPU-only build" if torch.version.cuda is None else "no CUDA GPU is visible"
            raise ValueError(f"device = {name!r}: {why}; use \"cpu\" or \"auto\"")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"device = {name!r}: only {torch.cuda.device_count()} CUDA device(s) here")
    return device


def make_train_state(energy: nn.Module, settings: TrainSettings, chains: ChainInit,
                     event_shape: tuple[int, ...]) -> TrainState:
    """Move ``energy`` to the device and build Adam, the seeded generator, the chain buffer and the default
    objective (contrastive divergence with ``settings.l2_reg``)."""
    device = resolve_device(settings.device)
    energy.to(device)
    if settings.channels_last:
        energy.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # missing from torch's stubs
    generator = torch.Generator(device=device).manual_seed(settings.seed)
    optimizer = make_adam(energy, settings.lr, (settings.beta1, settings.beta2), device)
    chain_energy = sampling_energy(energy, settings.compile, settings.cuda_graphs, device)
    dtype = next(energy.parameters()).dtype
    buffer = chains.make_buffer(settings.batch_size, event_shape, generator=generator, device=device, dtype=dtype)
    ema = EMA(energy, decay=settings.ema_decay) if settings.ema_decay > 0 else None
    return TrainState(energy=energy, optimizer=optimizer, generator=generator, buffer=buffer, ema=ema,
                      chain_energy=chain_energy, objective=ContrastiveDivergenceLoss(l2_reg=settings.l2_reg))


def attach_objective(state: TrainState, spec: ObjectiveSpec, data: DataSampler, settings: TrainSettings) -> Objective:
    """Build ``spec``'s objective for this run (it may draw from ``data`` with the state's generator, e.g. NCE
    fitting its noise) and make it the state's; in a multi-process run the auxiliary modules start from rank 0's
    values. Returns the objective."""
    context = ObjectiveContext(energy=state.energy, data=data, generator=state.generator, lr=settings.lr,
                               betas=(settings.beta1, settings.beta2), l2_reg=settings.l2_reg)
    state.objective = spec.build(context)
    current().broadcast(list(state.objective.modules().values()))
    return state.objective


def train_step(state: TrainState, sampler: Sampler, chains: ChainInit, x_pos: Tensor, settings: TrainSettings,
               *, collect_info: bool = False, max_energy_gap: float | None = None,
               labels: Tensor | None = None) -> dict[str, Tensor]:
    """One iteration of ``state.objective`` on the data batch ``x_pos`` (and its ``labels`` ``(n,)``, for
    objectives that use them); returns detached scalar metrics.

    After the backward pass the gradients are averaged over the ranks of a multi-process run (a no-op in one
    process). Before the optimizers apply the step, :func:`~anila.train.step_check.check_step` looks at the loss,
    the energies, the gradient norm over every parameter (the energy's and the objective's modules') and
    (``max_energy_gap``) the energy gap: a bad step raises :class:`~anila.train.step_check.StepRejected` with the
    parameters untouched. That check is the only host synchronisation, once per iteration, outside the sampler
    loop."""
    device_type = state.generator.device.type
    with torch.autocast(device_type, dtype=torch.bfloat16, enabled=settings.precision == "bf16"):
        loss, metrics, info, batch = _forward(state, sampler, chains, x_pos, labels, settings, collect_info)
    for optimizer in state.optimizers():
        optimizer.zero_grad(set_to_none=True)
    loss.backward()
    parameters = [p for p in state.parameters() if p.grad is not None]
    current().average_gradients(parameters)
    if settings.grad_clip > 0:
        grad_norm = torch.nn.utils.clip_grad_norm_(parameters, settings.grad_clip)  # the norm before clipping
    else:
        grad_norm = gradient_norm(parameters)
    metrics["param_grad_norm"] = grad_norm
    if not bool(check_step(loss, metrics, grad_norm, max_energy_gap)):
        for optimizer in state.optimizers():
            optimizer.zero_grad(set_to_none=True)
        reason = rejection_reason(loss, metrics, grad_norm, max_energy_gap)
        raise StepRejected(state.iteration + 1, reason)
    for optimizer in state.optimizers():
        optimizer.step()
    if state.ema is not None:
        state.ema.update(state.energy)
    state.objective.after_step(batch)
    state.iteration += 1
    metrics["loss"] = loss.detach()
    for key, values in info.items():
        name = {"accept_prob": "accept_rate"}.get(key, key)
        metrics[name] = values.mean()
    return metrics


def _forward(state: TrainState, sampler: Sampler, chains: ChainInit, x_pos: Tensor, labels: Tensor | None,
             settings: TrainSettings, collect_info: bool) -> tuple[Tensor, dict[str, Tensor], dict[str, Tensor], Batch]:
    """Sampling and the loss of one iteration: ``(loss, metrics, per-step sampler info, batch)``."""
    objective = state.objective
    info: dict[str, Tensor] = {}
    metrics: dict[str, Tensor] = {}
    batch = Batch(x_pos, y=labels)
    if objective.needs_negatives:
        x0, indices = objective.chain_starts(x_pos, chains, state.buffer, state.generator)
        differentiable = objective.differentiable_negatives
        chain_energy = state.chain_energy if state.chain_energy is not None and not differentiable else state.energy
        if state.adaptation is not None:
            sampler = sampler.with_step_size(state.adaptation.step_size())
        result = run_chains(sampler, chain_energy, x0, settings.num_steps, generator=state.generator,
                            record_info=collect_info, differentiable_last_step=differentiable, check_start=False)
        if state.adaptation is not None and result.accept_rate is not None:
            state.adaptation.update(result.accept_rate.mean())
            metrics["step_size"] = state.adaptation.step_size()
        if state.buffer is not None:
            state.buffer.push(result.x.detach(), indices)  # type: ignore[arg-type]  # a buffer's draws have indices
        batch = Batch(x_pos, result.x if differentiable else result.x.detach(), x0, y=labels)
        info = result.info
    loss, objective_metrics = objective.loss(state.energy, batch, state.generator)
    metrics.update(objective_metrics)
    return loss.float(), metrics, info, batch


def train(state: TrainState, sampler: Sampler, chains: ChainInit, data: DataSampler, settings: TrainSettings,
          *, on_log: Callable[[dict[str, float]], None] | None = None,
          on_checkpoint: Callable[[TrainState], None] | None = None, progress: bool = True,
          max_energy_gap: float | None = None,
          stop: Callable[[], bool] | None = None) -> TrainState:
    """Run ``settings.iterations - state.iteration`` iterations.

    ``data(batch_size, generator)`` returns a batch ``(batch_size, *event)`` on the device, or a pair
    ``(batch, labels)`` with integer ``labels`` ``(batch_size,)`` for objectives that use labels (``Batch.y``).
    ``on_log`` receives ``{"iteration", "loss", "energy_pos", "energy_neg", "energy_gap", "grad_norm", ...,
    "wall_time"}`` every ``log_every`` iterations and at the last one; ``on_checkpoint`` is called every
    ``checkpoint_every`` iterations and at the end. The objective is ``state.objective`` (``sampler`` and
    ``chains`` are used only when it needs negatives). A step that fails the guard's
    check (see :func:`train_step`) raises :class:`~anila.train.step_check.StepRejected`; the run layer's
    :func:`~anila.train.guard.guarded_train` rolls back and retries. ``stop()`` is asked before every
    iteration; when it is true the loop returns early, at an iteration boundary (SIGINT / SIGTERM:
    :mod:`anila.train.interrupt`).
    """
    start = time.perf_counter()
    bar = training_progress(settings.iterations, state.iteration, enabled=progress)
    while state.iteration < settings.iterations:
        if stop is not None and stop():
            break
        log_now = (state.iteration + 1) % settings.log_every == 0 or state.iteration + 1 == settings.iterations
        drawn = data(settings.batch_size, state.generator)
        x_pos, labels = drawn if isinstance(drawn, tuple) else (drawn, None)
        metrics = train_step(state, sampler, chains, x_pos, settings, collect_info=log_now,
                             max_energy_gap=max_energy_gap, labels=labels)
        bar.update(1)
        if log_now:
            record = {"iteration": state.iteration, **{k: float(v) for k, v in metrics.items()},
                      "wall_time": time.perf_counter() - start}
            bar.show(record)
            if on_log is not None:
                on_log(record)
        every = settings.checkpoint_every
        if on_checkpoint is not None and (state.iteration == settings.iterations
                                          or (every and state.iteration % every == 0)):
            on_checkpoint(state)
    bar.close()
    return state
