"""Exact resume: everything a training run mutates, to and from checkpoint tensors + JSON.

:func:`capture` turns a :class:`~anila.train.loop.TrainState` into ``(groups, meta)`` for
:func:`~anila.train.checkpoint.save_checkpoint`:

    model.*          the energy's ``state_dict``            ema.*     the EMA shadow (when kept)
    optimizer.*      the optimizer's state tensors          buffer.*  replay buffer / persistent chains
    adaptation.*     the adapted sampler step (dual averaging)
    aux.*            the objective's auxiliary modules, ``aux.<module>.<tensor>`` (NCE's ``log_z``, a flow)
    aux_optimizer.*  their optimizers' state tensors, ``aux_optimizer.<module>.<index>.<key>``
    objective.*      the objective's other state (improved CD's nearest-neighbour bank)
    rng.*            RNG states as uint8 tensors: ``generator`` (the loop's), ``torch`` (CPU global),
                     ``cuda.N``, ``numpy``, ``python``

and ``meta`` holds the iteration, the optimizers' hyperparameters (``param_groups``, which carry the
learning rates the divergence guard may have shrunk) and the RNG scalars. :func:`restore` puts them back
into a freshly built state, so that continuing from iteration ``t`` gives bit-for-bit the parameters an
uninterrupted run has at every later iteration (on the same device and software).

:func:`check_resumable` compares a config with the one a checkpoint was written under and names every key
that differs (except those a resumed run may change: :data:`RESUMABLE_KEYS`).

>>> import tempfile
>>> from pathlib import Path
>>> from anila.chains import ChainInit
>>> from anila.energies import MLPEnergy
>>> from anila.train import TrainSettings, load_checkpoint, make_train_state, save_checkpoint
>>> state = make_train_state(MLPEnergy(dim=2), TrainSettings(), ChainInit(), (2,))
>>> path = Path(tempfile.mkdtemp()) / "iter_0000000.safetensors"
>>> groups, meta = capture(state); _ = save_checkpoint(path, groups, meta)
>>> groups, meta = load_checkpoint(path); restore(state, groups, meta)
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from anila.errors import ConfigError, DataError
from anila.train.checkpoint import atomic_write_bytes, list_checkpoints, load_latest_checkpoint, warn
from anila.train.loop import TrainState

#: ``section.key`` entries a resumed run may change (the run length, logging, checkpointing, the guard).
RESUMABLE_KEYS = ("train.iterations", "train.log_every", "train.checkpoint_every", "train.keep_checkpoints",
                  "guard.*")


def seed_all(seed: int) -> None:
    """Seed every global RNG a run may touch (torch CPU and CUDA, NumPy, Python), so two runs match."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def _as_bytes(array: np.ndarray) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(array).view(np.uint8).copy())


def capture_rng(generator: torch.Generator) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Every RNG state the loop may touch: ``(tensors, scalars)``."""
    tensors = {"generator": generator.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for index, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda.{index}"] = state
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    tensors["numpy"] = _as_bytes(np.asarray(keys, dtype=np.uint32))
    version, internal, gauss_next = random.getstate()
    tensors["python"] = _as_bytes(np.asarray(internal, dtype=np.uint32))
    scalars = {"numpy": [kind, int(pos), int(has_gauss), float(cached)], "python": [version, gauss_next]}
    return tensors, scalars


def restore_rng(generator: torch.Generator, tensors: dict[str, Tensor], scalars: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng`."""
    generator.set_state(tensors["generator"])
    torch.set_rng_state(tensors["torch"])
    cuda = sorted((k for k in tensors if k.startswith("cuda.")), key=lambda k: int(k.split(".")[1]))
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([tensors[k] for k in cuda])
    kind, pos, has_gauss, cached = scalars["numpy"]
    np.random.set_state((kind, tensors["numpy"].numpy().view(np.uint32), pos, has_gauss, cached))
    version, gauss_next = scalars["python"]
    internal = tuple(int(v) for v in tensors["python"].numpy().view(np.uint32))
    random.setstate((version, internal, gauss_next))


def _optimizer_groups(optimizer: torch.optim.Optimizer) -> tuple[dict[str, Tensor], dict[str, Any]]:
    state = optimizer.state_dict()
    tensors: dict[str, Tensor] = {}
    scalars: dict[str, Any] = {}
    for index, values in state["state"].items():
        for key, value in values.items():
            if isinstance(value, Tensor):
                tensors[f"{index}.{key}"] = value
            else:
                scalars.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _load_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, Tensor], meta: dict[str, Any]) -> None:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = value
    for index, values in meta["scalars"].items():
        state.setdefault(int(index), {}).update(values)
    groups = [{k: tuple(v) if k == "betas" else v for k, v in g.items()} for g in meta["param_groups"]]
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def capture(state: TrainState) -> tuple[dict[str, dict[str, Tensor]], dict[str, Any]]:
    """``(groups, meta)`` of everything ``state`` holds; tensors are copied to the CPU by the writer."""
    optimizer_tensors, optimizer_meta = _optimizer_groups(state.optimizer)
    rng_tensors, rng_scalars = capture_rng(state.generator)
    groups = {"model": state.energy.state_dict(), "optimizer": optimizer_tensors, "rng": rng_tensors}
    meta: dict[str, Any] = {"iteration": state.iteration, "optimizer": optimizer_meta, "rng": rng_scalars}
    if state.buffer is not None:
        groups["buffer"] = state.buffer.state_dict()
    if state.ema is not None:
        groups["ema"] = state.ema.state_dict()
    if state.adaptation is not None:
        groups["adaptation"] = state.adaptation.state_dict()
    modules, optimizers = state.objective.modules(), state.objective.optimizers()
    if modules:
        groups["aux"] = {f"{name}.{k}": v for name, module in modules.items() for k, v in module.state_dict().items()}
    if optimizers:
        groups["aux_optimizer"], meta["aux_optimizer"] = {}, {}
        for name, optimizer in optimizers.items():
            tensors, meta["aux_optimizer"][name] = _optimizer_groups(optimizer)
            groups["aux_optimizer"].update({f"{name}.{k}": v for k, v in tensors.items()})
    if objective_state := state.objective.state_dict():
        groups["objective"] = objective_state
    return groups, meta


def _by_name(tensors: dict[str, Tensor], name: str) -> dict[str, Tensor]:
    return {k[len(name) + 1:]: v for k, v in tensors.items() if k.startswith(f"{name}.")}


def restore(state: TrainState, groups: dict[str, dict[str, Tensor]], meta: dict[str, Any]) -> None:
    """Load a :func:`capture` back into a state built from the same config (see :func:`check_resumable`)."""
    missing = [g for g in ("model", "rng") if g not in groups]  # no optimizer tensors before the first step
    if missing or "optimizer" not in meta or "rng" not in meta:
        raise DataError(f"checkpoint lacks {', '.join(missing) or 'optimizer / RNG metadata'}: it was not "
                        "written by a resumable run (format 2); start the run again")
    try:
        state.energy.load_state_dict(groups["model"])
        _load_optimizer(state.optimizer, groups.get("optimizer", {}), meta["optimizer"])
        if (state.buffer is None) != ("buffer" not in groups):
            raise ValueError("the checkpoint's chain buffer does not match the configured chains.init")
        if state.buffer is not None:
            state.buffer.load_state_dict(groups["buffer"])
        if (state.ema is None) != ("ema" not in groups):
            raise ValueError("the checkpoint's EMA does not match the configured train.ema_decay")
        if state.ema is not None:
            state.ema.load_state_dict(groups["ema"])
        if (state.adaptation is None) != ("adaptation" not in groups):
            raise ValueError("the checkpoint's step-size adaptation does not match the configured sampler.adapt")
        if state.adaptation is not None:
            state.adaptation.load_state_dict(groups["adaptation"])
        modules, optimizers = state.objective.modules(), state.objective.optimizers()
        if bool(modules) != ("aux" in groups):
            raise ValueError("the checkpoint's auxiliary modules do not match the configured objective")
        for name, module in modules.items():
            module.load_state_dict(_by_name(groups["aux"], name))
        for name, optimizer in optimizers.items():
            _load_optimizer(optimizer, _by_name(groups.get("aux_optimizer", {}), name), meta["aux_optimizer"][name])
        state.objective.load_state_dict(groups.get("objective", {}))
    except (RuntimeError, ValueError, KeyError) as exc:
        raise DataError(f"checkpoint does not fit this model: {str(exc).splitlines()[0]}") from None
    restore_rng(state.generator, groups["rng"], meta["rng"])
    state.iteration = int(meta["iteration"])


def _flatten(config: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {f"{section}.{key}": value for section, table in config.items() for key, value in table.items()}


def _resumable(key: str) -> bool:
    return any(key == k or (k.endswith(".*") and key.startswith(k[:-1])) for k in RESUMABLE_KEYS)


def check_resumable(config: dict[str, dict[str, Any]], saved: dict[str, dict[str, Any]]) -> None:
    """Raise :class:`ConfigError` naming every ``section.key`` where ``config`` and ``saved`` differ."""
    now, before = _flatten(config), _flatten(saved)
    differ = sorted(k for k in now.keys() | before.keys() if not _resumable(k) and now.get(k) != before.get(k))
    if differ:
        shown = "; ".join(f"{k} = {before.get(k)!r} in the checkpoint, {now.get(k)!r} now" for k in differ)
        raise ConfigError(f"cannot resume: the config differs from the checkpoint's in {shown}; "
                          "resume with the run's own config.toml")


def truncate_metrics(path: str | Path, iteration: int) -> None:
    """Drop the ``metrics.jsonl`` records written after ``iteration`` (they are about to be recomputed)."""
    path = Path(path)
    if not path.is_file():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:  # a line cut by a kill
            continue
        if isinstance(record, dict) and record.get("iteration", 0) <= iteration:
            kept.append(line)
    atomic_write_bytes(path, "".join(f"{line}\n" for line in kept).encode())


def resume_run(run_dir: str | Path, config_dict: dict[str, dict[str, Any]], state: TrainState, *,
               report: Callable[[str], None] = warn, view: Callable | None = None,
               tidy: bool = True) -> dict[str, Any] | None:
    """Restore ``state`` from the newest good checkpoint of ``run_dir``; returns its JSON metadata.

    Checks the config first (:func:`check_resumable`); a corrupt newest checkpoint is renamed ``*.corrupt``
    and the previous one used; leftover temporary files of a killed write are removed. A run folder without
    any checkpoint (killed before the first one), or with the iteration-0 one only, starts from iteration 0 with
a message. ``view(groups, meta)``
    picks this rank's part of a multi-process checkpoint; ``tidy = False`` (ranks other than 0) leaves the
    files alone."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise DataError(f"--resume {run_dir}: no such run folder; pass the folder of an earlier anila train run")
    folder = run_dir / "checkpoints"
    for leftover in folder.glob(".iter_*.tmp") if folder.is_dir() and tidy else []:
        leftover.unlink(missing_ok=True)
    if not list_checkpoints(folder):
        report(f"no checkpoint in {folder} yet: starting {run_dir} from iteration 0")
        return None
    groups, meta, path = load_latest_checkpoint(folder, report=report)
    for newer in [p for p in list_checkpoints(folder) if p.name > path.name] if tidy else []:
        for bad in (newer, newer.with_suffix(".json")):
            if bad.exists():
                bad.replace(bad.with_name(bad.name + ".corrupt"))
    if "config" in meta:
        check_resumable(config_dict, meta["config"])
    if view is not None:
        groups, meta = view(groups, meta)
    restore(state, groups, meta)
    if state.iteration == 0:
        every = config_dict.get("train", {}).get("checkpoint_every")
        report(f"resuming {run_dir} from iteration 0: its only checkpoint is the initial one (the run stopped "
               f"before its first periodic checkpoint, train.checkpoint_every = {every}); the run starts over")
    return meta
