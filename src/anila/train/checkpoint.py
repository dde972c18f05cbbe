"""Checkpoints: tensors in safetensors, everything else in a JSON sidecar. Never pickle.

``save_checkpoint(path, groups, meta)`` writes ``path`` (``.safetensors``) and ``path.with_suffix(".json")``,
each atomically (:func:`anila.io.atomic_writer`: temporary file in the same folder, ``fsync``, ``os.replace``,
``fsync`` of the folder),
tensors first, so a sidecar never points at a half-written tensor file. The sidecar carries the SHA-256 of
the tensor file (``sha256``) and of its own content (``sidecar_sha256``: config, iteration, optimizer and RNG
state; format version 3); :func:`load_checkpoint` recomputes both and refuses a truncated or altered file, an
edited sidecar, and a sidecar without its hashes (format 2 sidecars have ``sha256`` only, which is then
required). Tensor names are prefixed by their group: ``model.``, ``optimizer.``, ``buffer.``, ``rng.``.

A run folder keeps its last ``keep`` checkpoints (:func:`prune_checkpoints`); :func:`load_latest_checkpoint`
walks them newest first and falls back to the previous good one, with a message, when one is corrupt.
No file is ever read with ``pickle`` or ``torch.load``: a pickle renamed ``.safetensors`` fails to parse.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_bytes
from safetensors.torch import save as save_bytes

from anila.errors import DataError
from anila.io import atomic_write_bytes

__all__ = ["atomic_write_bytes", "list_checkpoints", "load_checkpoint", "load_latest_checkpoint", "prune_checkpoints",
           "resolve_checkpoint", "save_checkpoint", "warn"]

FORMAT = "anila-checkpoint"
FORMAT_VERSION = 3  # 3: the sidecar's own SHA-256 (``sidecar_sha256``); 2: the tensor file's only
CHECKPOINT_PATTERN = "iter_*.safetensors"


def warn(message: str) -> None:
    """The default way checkpoint code reports a recoverable problem: one line on stderr."""
    print(f"anila: warning: {message}", file=sys.stderr)


def save_checkpoint(path: str | Path, groups: dict[str, dict[str, torch.Tensor]], meta: dict[str, Any]) -> Path:
    """Write ``{group: {name: tensor}}`` and ``meta`` (JSON-serialisable) atomically; returns ``path``."""
    path = Path(path)
    flat = {f"{group}.{name}": t.detach().contiguous().cpu() for group, tensors in groups.items()
            for name, t in tensors.items()}
    data = save_bytes(flat)
    atomic_write_bytes(path, data)
    sidecar = {**meta, "format": FORMAT, "format_version": FORMAT_VERSION, "tensors": path.name,
               "sha256": hashlib.sha256(data).hexdigest()}
    sidecar["sidecar_sha256"] = sidecar_hash(sidecar)
    atomic_write_bytes(path.with_suffix(".json"), json.dumps(sidecar, indent=2, sort_keys=True).encode())
    return path


def sidecar_hash(sidecar: dict[str, Any]) -> str:
    """SHA-256 of a sidecar's canonical JSON (sorted keys, no spaces) without its ``sidecar_sha256`` key: it covers
    the iteration, the config, the optimizer and RNG state and the tensor file's own hash."""
    content = json.loads(json.dumps({k: v for k, v in sidecar.items() if k != "sidecar_sha256"}))
    return hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _check_sidecar(meta: dict[str, Any], sidecar: Path) -> None:
    """Both hashes present (format 3; format 2 has the tensor file's only) and the sidecar's own one matching."""
    version = meta.get("format_version")
    if version not in (2, 3):
        raise DataError(f"{sidecar}: checkpoint format version {version!r} is not supported (2 or 3); "
                        "train the run again with this anila")
    required = ("sha256", "sidecar_sha256") if version == 3 else ("sha256",)
    missing = [key for key in required if not isinstance(meta.get(key), str)]
    if missing:
        raise DataError(f"{sidecar} has no {' or '.join(missing)}: the checkpoint cannot be verified (every anila "
                        "checkpoint carries it; the sidecar was edited); refused")
    if version == 3 and sidecar_hash(meta) != meta["sidecar_sha256"]:
        raise DataError(f"{sidecar} was altered (its SHA-256 does not match its content: config, iteration or "
                        "state edited); refused")


def list_checkpoints(folder: str | Path) -> list[Path]:
    """The ``iter_*.safetensors`` files of a checkpoint folder, oldest first (names sort by iteration)."""
    folder = Path(folder)
    return sorted(folder.glob(CHECKPOINT_PATTERN)) if folder.is_dir() else []


def prune_checkpoints(folder: str | Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` checkpoints (``keep = 0``: keep all); returns the deleted files."""
    found = list_checkpoints(folder)
    old = found[:-keep] if keep > 0 else []
    for path in old:
        path.with_suffix(".json").unlink(missing_ok=True)  # sidecar first: a lone tensor file is never trusted
        path.unlink(missing_ok=True)
    return old


def _checkpoint_folder(path: Path) -> Path:
    return path / "checkpoints" if (path / "checkpoints").is_dir() else path


def resolve_checkpoint(path: str | Path) -> Path:
    """Accept a ``.safetensors`` file, its ``.json`` sidecar, or a run folder (its latest checkpoint)."""
    path = Path(path)
    if path.is_dir():
        folder = _checkpoint_folder(path)
        found = list_checkpoints(folder) or sorted(folder.glob("*.safetensors"))
        if not found:
            raise DataError(f"no checkpoint (*.safetensors) in {folder}; pass a checkpoint file or a run folder")
        return found[-1]
    if path.suffix == ".json":
        path = path.with_suffix(".safetensors")
    if not path.is_file():
        raise DataError(f"checkpoint not found: {path}")
    return path


def _read_checkpoint_file(path: Path) -> tuple[dict[str, dict[str, torch.Tensor]], dict[str, Any]]:
    sidecar = path.with_suffix(".json")
    try:
        meta = json.loads(sidecar.read_text())
    except FileNotFoundError:
        raise DataError(f"checkpoint sidecar missing: {sidecar}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"checkpoint sidecar {sidecar} is not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise DataError(f"{sidecar} is not an anila checkpoint sidecar")
    _check_sidecar(meta, sidecar)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"checkpoint {path} is unreadable: {exc}") from None
    if hashlib.sha256(data).hexdigest() != meta["sha256"]:
        raise DataError(f"checkpoint {path} is truncated or corrupt (SHA-256 does not match its sidecar)")
    try:
        flat = load_bytes(data)
    except (SafetensorError, OSError, ValueError) as exc:
        raise DataError(f"checkpoint {path} is unreadable or corrupt: {exc}") from None
    groups: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in flat.items():
        group, name = key.split(".", 1)
        groups.setdefault(group, {})[name] = tensor
    return groups, meta


def load_latest_checkpoint(folder: str | Path, *, report: Callable[[str], None] = warn
                           ) -> tuple[dict[str, dict[str, torch.Tensor]], dict[str, Any], Path]:
    """The newest readable checkpoint of a run or checkpoint folder: ``(groups, meta, path)``.

    A corrupt or truncated checkpoint is skipped with a message through ``report``, and the previous one
    is tried; :class:`DataError` when none is readable."""
    folder = _checkpoint_folder(Path(folder))
    found = list_checkpoints(folder) or sorted(folder.glob("*.safetensors"))
    if not found:
        raise DataError(f"no checkpoint (*.safetensors) in {folder}; pass a checkpoint file or a run folder")
    for index in range(len(found) - 1, -1, -1):
        try:
            groups, meta = _read_checkpoint_file(found[index])
        except DataError as exc:
            fallback = f"using the previous one, {found[index - 1].name}" if index else "no older checkpoint left"
            report(f"{exc}; {fallback}")
            continue
        return groups, meta, found[index]
    raise DataError(f"no readable checkpoint in {folder}: every one is corrupt; start the run again")


def load_checkpoint(path: str | Path, *, report: Callable[[str], None] = warn
                    ) -> tuple[dict[str, dict[str, torch.Tensor]], dict[str, Any]]:
    """Read a checkpoint written by :func:`save_checkpoint`: ``(groups, meta)``.

    A file is read strictly (a corrupt one raises :class:`DataError`); a run folder gives its newest good
    checkpoint (see :func:`load_latest_checkpoint`)."""
    path = Path(path)
    if path.is_dir():
        groups, meta, _ = load_latest_checkpoint(path, report=report)
        return groups, meta
    return _read_checkpoint_file(resolve_checkpoint(path))
