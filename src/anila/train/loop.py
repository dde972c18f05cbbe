"""The MCMC training loop (AniLA Algorithm 1; tutorial seed section 3).

For each iteration: draw a data batch ``x⁺``, start chains (:class:`~anila.chains.ChainInit`), run
``num_steps`` sampler transitions to get ``x⁻``, take an Adam step on the contrastive divergence loss
``mean E(x⁺) - mean E(x⁻)`` (+ ``l2_reg`` · mean(E⁺² + E⁻²)). With an MCMC-free ``objective``
(``(energy, x, generator) -> (loss, metrics)``, see :mod:`anila.objectives.select`) the sampler is not run
and the step is taken on that loss instead. The loop is library code: it takes objects, not a config, and
reports through callbacks (the run layer writes files from them).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from anila.chains.augment import Augmentation
from anila.chains.init import ChainInit, ReplayBuffer
from anila.errors import ConfigError
from anila.objectives.contrastive import contrastive_divergence
from anila.objectives.improved_cd import NearestNeighbourBank, kl_term
from anila.objectives.select import ImprovedCD
from anila.samplers.adapt import AdaptiveStepSize
from anila.samplers.base import Sampler
from anila.samplers.runner import run_chains
from anila.train.acceleration import make_adam, sampling_energy
from anila.train.ema import EMA
from anila.train.guard import StepRejected, check_step, gradient_norm, rejection_reason
from anila.train.progress import training_progress

DataSampler = Callable[[int, torch.Generator], Tensor]
MAX_BATCH_SIZE = 1_000_000  #: ``train.batch_size`` at most (chains and data points per iteration)
MAX_NUM_STEPS = 100_000  #: ``train.num_steps`` (K) at most; the papers use 50-150
MAX_ITERATIONS = 10**9  #: ``train.iterations`` at most
Objective = Callable[[nn.Module, Tensor, torch.Generator], tuple[Tensor, dict[str, Tensor]]]


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
    """Everything the loop mutates, owned by the caller: model, optimizer, buffer, generator, iteration."""

    energy: nn.Module
    optimizer: torch.optim.Optimizer
    generator: torch.Generator
    buffer: ReplayBuffer | None
    iteration: int = 0
    ema: EMA | None = None
    bank: NearestNeighbourBank | None = None
    chain_energy: Callable[[Tensor], Tensor] | None = None  # compiled view of ``energy`` for the chains
    ddp: nn.Module | None = None
    adaptation: AdaptiveStepSize | None = None  # the sampler's step size, tuned across iterations

    @property
    def loss_energy(self) -> nn.Module:
        """The module the loss's forward pass goes through: the DistributedDataParallel wrapper of ``energy``
        in a multi-process run (it averages the parameter gradients across ranks), else ``energy`` itself.
        The sampler always uses ``energy``: its input gradients need no synchronisation."""
        return self.ddp if self.ddp is not None else self.energy

    @property
    def eval_energy(self) -> nn.Module:
        """The weights to sample and evaluate with: the EMA copy when one is kept."""
        return self.ema.shadow if self.ema is not None else self.energy


def resolve_device(name: str) -> torch.device:
    """``"auto"`` picks CUDA when available, else CPU; anything else is passed to ``torch.device``. A CUDA device
    that this machine (or this torch build) does not have raises :class:`~anila.errors.ConfigError`."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            why = "this torch is a CPU-only build" if torch.version.cuda is None else "no CUDA GPU is visible"
            raise ConfigError(f"train.device = {name!r}: {why}; set train.device = \"cpu\" or \"auto\"")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"train.device = {name!r}: only {torch.cuda.device_count()} CUDA device(s) here")
    return device


def make_train_state(energy: nn.Module, settings: TrainSettings, chains: ChainInit,
                     event_shape: tuple[int, ...]) -> TrainState:
    """Move ``energy`` to the device and build Adam, the seeded generator and the chain buffer."""
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
                      chain_energy=chain_energy)


def train_step(state: TrainState, sampler: Sampler, chains: ChainInit, x_pos: Tensor, settings: TrainSettings,
               *, collect_info: bool = False, objective: Objective | None = None,
               max_energy_gap: float | None = None) -> dict[str, Tensor]:
    """One iteration of Algorithm 1 (or of an MCMC-free ``objective``); returns detached scalar metrics.

    Before the optimizer applies the step, :func:`~anila.train.guard.check_step` looks at the loss, the
    energies, the parameter gradient's norm and (``max_energy_gap``) the energy gap: a bad step raises
    :class:`~anila.train.guard.StepRejected` with the parameters untouched. That check is the only host
    synchronisation, once per iteration, outside the sampler loop."""
    device_type = state.generator.device.type
    with torch.autocast(device_type, dtype=torch.bfloat16, enabled=settings.precision == "bf16"):
        loss, metrics, info = _forward(state, sampler, chains, x_pos, settings, collect_info, objective)
    state.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    parameters = [p for p in state.energy.parameters() if p.grad is not None]
    if settings.grad_clip > 0:
        grad_norm = torch.nn.utils.clip_grad_norm_(parameters, settings.grad_clip)  # the norm before clipping
    else:
        grad_norm = gradient_norm(parameters)
    metrics["param_grad_norm"] = grad_norm
    if not bool(check_step(loss, metrics, grad_norm, max_energy_gap)):
        state.optimizer.zero_grad(set_to_none=True)
        reason = rejection_reason(loss, metrics, grad_norm, max_energy_gap)
        raise StepRejected(state.iteration + 1, reason)
    state.optimizer.step()
    if state.ema is not None:
        state.ema.update(state.energy)
    state.iteration += 1
    metrics["loss"] = loss.detach()
    for key, values in info.items():
        name = {"accept_prob": "accept_rate"}.get(key, key)
        metrics[name] = values.mean()
    return metrics


def _forward(state: TrainState, sampler: Sampler, chains: ChainInit, x_pos: Tensor, settings: TrainSettings,
             collect_info: bool, objective: Objective | None) -> tuple[Tensor, dict[str, Tensor], dict[str, Tensor]]:
    """Sampling and the loss of one iteration: ``(loss, metrics, per-step sampler info)``."""
    info: dict[str, Tensor] = {}
    metrics: dict[str, Tensor] = {}
    if objective is None or isinstance(objective, ImprovedCD):
        improved = objective
        x0, indices = chains.initial(x_pos, state.buffer, state.generator)
        if improved is not None and improved.augment and indices is not None and x0.dim() == 4:
            x0 = Augmentation()(x0, state.generator)
        chain_energy = state.chain_energy if state.chain_energy is not None and improved is None else state.energy
        if state.adaptation is not None:
            sampler = sampler.with_step_size(state.adaptation.step_size())
        result = run_chains(sampler, chain_energy, x0, settings.num_steps, generator=state.generator,  # type: ignore[arg-type]
                            record_info=collect_info, differentiable_last_step=improved is not None)
        if state.adaptation is not None and result.accept_rate is not None:
            state.adaptation.update(result.accept_rate.mean())
            metrics["step_size"] = state.adaptation.step_size()
        x_neg = result.x.detach()
        if state.buffer is not None:
            state.buffer.push(x_neg, indices)  # type: ignore[arg-type]  # a buffer's draws always have indices
        loss, cd_metrics = contrastive_divergence(state.loss_energy, x_pos, x_neg, l2_reg=settings.l2_reg)
        metrics.update(cd_metrics)
        if improved is not None:
            if state.bank is None:
                state.bank = NearestNeighbourBank(improved.bank_size)
            kl_loss, kl_metrics = kl_term(state.energy, result.x, entropy_samples=state.bank.tensor(),
                                          entropy_weight=improved.entropy_weight)
            loss = loss + improved.kl_weight * kl_loss
            metrics.update(kl_metrics)
            state.bank.push(x_neg)
        info = result.info
    else:
        loss, metrics = objective(state.energy, x_pos, state.generator)
        metrics = dict(metrics)
    return loss.float(), metrics, info


def train(state: TrainState, sampler: Sampler, chains: ChainInit, data: DataSampler, settings: TrainSettings,
          *, on_log: Callable[[dict[str, float]], None] | None = None,
          on_checkpoint: Callable[[TrainState], None] | None = None, progress: bool = True,
          objective: Objective | None = None, max_energy_gap: float | None = None,
          stop: Callable[[], bool] | None = None) -> TrainState:
    """Run ``settings.iterations - state.iteration`` iterations.

    ``data(batch_size, generator)`` returns a batch ``(batch_size, *event)`` on the device. ``on_log``
    receives ``{"iteration", "loss", "energy_pos", "energy_neg", "energy_gap", "grad_norm", ...,
    "wall_time"}`` every ``log_every`` iterations and at the last one; ``on_checkpoint`` is called every
    ``checkpoint_every`` iterations and at the end. ``objective``: an MCMC-free loss to train with instead of
    contrastive divergence (then ``sampler`` and ``chains`` are not used). A step that fails the guard's
    check (see :func:`train_step`) raises :class:`~anila.train.guard.StepRejected`; the run layer's
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
        x_pos = data(settings.batch_size, state.generator)
        metrics = train_step(state, sampler, chains, x_pos, settings, collect_info=log_now, objective=objective,
                             max_energy_gap=max_energy_gap)
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
