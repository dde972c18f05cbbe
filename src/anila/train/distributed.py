"""Multi-process (data-parallel) training: ``torchrun --nproc_per_node=N -m anila train CONFIG``.

Each of the ``N`` processes (ranks) trains on its own ``train.batch_size`` data points and chains (the
effective batch is ``N · batch_size``); after each backward pass the gradients of every trained parameter (the
energy's and the objective's auxiliary modules') are averaged across ranks in one all-reduce
(:meth:`DistributedContext.average_gradients`), so every rank applies the same optimizer steps and the
parameters stay identical. This works the same for every objective, including those that differentiate the
energy twice (score matching) or train a second network. What is rank-local:

- the loop's generator, seeded ``train.seed + rank · 1_000_000_007`` (rank 0 draws what a one-process run
  draws), hence each rank's data batches, chain starts, sampler noise and replay buffer;
- the replay buffer / persistent chains and the objective's own state (improved CD's bank).

Rank 0 alone writes files. A checkpoint holds the shared state once and every rank's local state (RNG states,
buffer) under ``rankR.*`` tensor groups, gathered to rank 0, so ``--resume`` restores each rank exactly (with
the same number of processes). Logged metrics are averaged across ranks. The guard's accept/reject flag is
all-reduced (a step is applied only if every rank accepts it), so all ranks roll back together.

Backends: ``nccl`` when CUDA is available (each rank on ``cuda:LOCAL_RANK``), else ``gloo`` on the CPU. A
collective that fails (a rank died) or waits longer than ``$ANILA_DIST_TIMEOUT_S`` seconds (default 600: a rank
hung) raises :class:`~anila.errors.RankLost`, which the CLI prints as one line naming the rank (exit code 4).

>>> context = init_distributed()  # reads RANK / WORLD_SIZE / LOCAL_RANK set by torchrun; else a no-op
>>> context.enabled, context.world_size, context.is_main   # one process here
(False, 1, True)
>>> context.broadcast([state.energy])  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from anila.errors import ConfigError, RankLost

RANK_SEED_STRIDE = 1_000_000_007
RANK_LOCAL_GROUPS = ("buffer", "objective", "rng")
TIMEOUT_ENV = "ANILA_DIST_TIMEOUT_S"  #: seconds a collective waits for the other ranks (default 600)
DEFAULT_TIMEOUT_S = 600.0


def collective(method: Callable) -> Callable:
    """Turn a failed or timed-out collective into :class:`~anila.errors.RankLost`, one line naming this rank:
    a rank that died (its partner sees the connection close) or hung (the process group's timeout) must not
    leave the others waiting forever or end them with a backend traceback."""

    @functools.wraps(method)
    def wrapped(self: DistributedContext, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except RuntimeError as exc:  # gloo / nccl failures and timeouts (torch.distributed.DistError too)
            if not self.enabled:
                raise
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            first = re.sub(r"^\[[^\]]*\]\s*", "", first).split(". ")[0]  # drop gloo's source path and advice
            raise RankLost(f"rank {self.rank} of {self.world_size}: the {method.__name__} collective failed ({first}); "
                           f"another process died or hung (the timeout is {timeout_s():g} s, {TIMEOUT_ENV}); "
                           "see its output, then resume from the newest checkpoint with --resume") from None

    return wrapped


def timeout_s() -> float:
    """The collectives' timeout: ``$ANILA_DIST_TIMEOUT_S`` seconds (default 600)."""
    raw = os.environ.get(TIMEOUT_ENV, "")
    try:
        value = float(raw) if raw else DEFAULT_TIMEOUT_S
    except ValueError:
        raise ConfigError(f"{TIMEOUT_ENV} = {raw!r}: must be a number of seconds") from None
    if not value > 0:
        raise ConfigError(f"{TIMEOUT_ENV} = {raw!r}: must be > 0")
    return value


@dataclass(frozen=True)
class DistributedContext:
    """Where this process sits: ``rank`` of ``world_size``, its ``local_rank`` on the machine, the backend."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that writes files and prints."""
        return self.rank == 0

    def device(self, name: str) -> str:
        """The device of this rank: ``cuda:LOCAL_RANK`` for ``auto`` / ``cuda`` with CUDA, else ``name``."""
        if self.enabled and name in ("auto", "cuda") and torch.cuda.is_available():
            return f"cuda:{self.local_rank}"
        return "cpu" if name == "auto" and not torch.cuda.is_available() else name

    def rank_settings(self, settings):
        """``TrainSettings`` for this rank: its own seed and device."""
        if not self.enabled:
            return settings
        return dataclasses.replace(settings, seed=settings.seed + self.rank * RANK_SEED_STRIDE,
                                   device=self.device(settings.device))

    @collective
    def broadcast(self, modules: list[nn.Module]) -> None:
        """Give every rank rank 0's parameters and buffers of ``modules`` (a no-op in one process)."""
        if not self.enabled:
            return
        with torch.no_grad():
            for module in modules:
                for tensor in [*module.parameters(), *module.buffers()]:
                    dist.broadcast(tensor.data, src=0)

    @collective
    def average_gradients(self, parameters: list[nn.Parameter]) -> None:
        """Replace each parameter's ``.grad`` by its mean over the ranks, in one all-reduce of the flattened
        gradients (a parameter without a gradient on this rank counts as zero there and keeps ``grad = None``).
        Every rank must pass the same parameters in the same order. A no-op in one process."""
        if not self.enabled or not parameters:
            return
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in parameters]
        flat = torch.cat([g.detach().reshape(-1).float() for g in grads])
        dist.all_reduce(flat)
        flat /= self.world_size
        offset = 0
        for p, g in zip(parameters, grads, strict=True):
            n = g.numel()
            if p.grad is not None:
                p.grad.copy_(flat[offset:offset + n].view_as(g))
            offset += n

    @collective
    def average(self, record: dict[str, float]) -> dict[str, float]:
        """Mean of each numeric value over the ranks (``iteration`` is the same on all; it stays)."""
        if not self.enabled:
            return record
        keys = sorted(k for k in record if k != "iteration")
        values = torch.tensor([float(record[k]) for k in keys], dtype=torch.float64, device=self._comm_device())
        dist.all_reduce(values)
        values /= self.world_size
        return {**record, **dict(zip(keys, values.tolist(), strict=True))}

    @collective
    def all_agree(self, flag: Tensor) -> Tensor:
        """``flag`` (a 0-d bool tensor) AND-ed over the ranks."""
        if not self.enabled:
            return flag
        value = flag.to(device=self._comm_device(), dtype=torch.int32).reshape(1)
        dist.all_reduce(value, op=dist.ReduceOp.MIN)
        return value.to(flag.device)[0].bool()

    @collective
    def gather_local(self, groups: dict[str, dict[str, Tensor]], meta: dict[str, Any]
                     ) -> tuple[dict[str, dict[str, Tensor]], dict[str, Any]]:
        """Add every other rank's local groups (``rankR.*``) and RNG scalars to rank 0's ``(groups, meta)``.

        A collective: every rank calls it; only rank 0's return value is complete."""
        if not self.enabled:
            return groups, meta
        local = ({g: {k: t.detach().cpu() for k, t in groups[g].items()} for g in RANK_LOCAL_GROUPS if g in groups},
                 meta["rng"])
        gathered: list[Any] = [None] * self.world_size
        dist.all_gather_object(gathered, local)  # in-memory between our own processes; files never hold pickles
        groups = dict(groups)
        for rank in range(1, self.world_size):
            rank_groups, _ = gathered[rank]
            groups[f"rank{rank}"] = {f"{g}.{k}": t for g, ts in rank_groups.items() for k, t in ts.items()}
        meta = {**meta, "world_size": self.world_size, "rank_rng": {str(r): gathered[r][1]
                                                                   for r in range(1, self.world_size)}}
        return groups, meta

    def local_view(self, groups: dict[str, dict[str, Tensor]], meta: dict[str, Any]
                   ) -> tuple[dict[str, dict[str, Tensor]], dict[str, Any]]:
        """This rank's ``(groups, meta)`` from a checkpoint written by :meth:`gather_local`."""
        saved = meta.get("world_size", 1)
        if saved != self.world_size:
            raise ConfigError(f"the checkpoint was written by {saved} process(es), this run has {self.world_size}; "
                              f"resume with --nproc_per_node={saved}")
        if self.rank == 0:
            return groups, meta
        mine = {g: v for g, v in groups.items() if g not in RANK_LOCAL_GROUPS and not g.startswith("rank")}
        for key, tensor in groups.get(f"rank{self.rank}", {}).items():
            group, name = key.split(".", 1)
            mine.setdefault(group, {})[name] = tensor
        return mine, {**meta, "rng": meta["rank_rng"][str(self.rank)]}

    @collective
    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def _comm_device(self) -> torch.device:
        return torch.device(f"cuda:{self.local_rank}") if self.backend == "nccl" else torch.device("cpu")


_CONTEXT = DistributedContext()


def current() -> DistributedContext:
    """The context :func:`init_distributed` set up (one process, rank 0, by default)."""
    return _CONTEXT


def init_distributed() -> DistributedContext:
    """Join the process group torchrun describes in ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK``; a no-op (one
    process) when ``WORLD_SIZE`` is unset or 1."""
    global _CONTEXT
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        _CONTEXT = DistributedContext()
        return _CONTEXT
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(seconds=timeout_s()))
    _CONTEXT = DistributedContext(rank=rank, world_size=world_size, local_rank=local_rank, backend=backend)
    return _CONTEXT


def shutdown() -> None:
    """Leave the process group (end of a multi-process run)."""
    global _CONTEXT
    if dist.is_initialized():
        dist.destroy_process_group()
    _CONTEXT = DistributedContext()
