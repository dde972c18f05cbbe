"""Checkpoints: tensors in safetensors, everything else in a JSON sidecar. Never pickle.

``save_checkpoint(path, tensors, meta)`` writes ``path`` (``.safetensors``) and ``path.with_suffix(".json")``,
each atomically (temporary file in the same folder, fsync, rename), tensors first, so a sidecar never
points at a half-written tensor file. Tensor names are prefixed by their group: ``model.``, ``buffer.``.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from anila.errors import DataError

FORMAT = "anila-checkpoint"
FORMAT_VERSION = 1


def _atomic_write(path: Path, write: callable) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_checkpoint(path: str | Path, groups: dict[str, dict[str, torch.Tensor]], meta: dict[str, Any]) -> Path:
    """Write ``{group: {name: tensor}}`` and ``meta`` (JSON-serialisable) atomically; returns ``path``."""
    path = Path(path)
    flat = {f"{group}.{name}": t.detach().contiguous().cpu() for group, tensors in groups.items()
            for name, t in tensors.items()}
    _atomic_write(path, lambda tmp: save_file(flat, tmp))
    sidecar = {"format": FORMAT, "format_version": FORMAT_VERSION, "tensors": path.name, **meta}
    text = json.dumps(sidecar, indent=2, sort_keys=True)
    _atomic_write(path.with_suffix(".json"), lambda tmp: Path(tmp).write_text(text))
    return path


def resolve_checkpoint(path: str | Path) -> Path:
    """Accept a ``.safetensors`` file, its ``.json`` sidecar, or a run folder (its latest checkpoint)."""
    path = Path(path)
    if path.is_dir():
        folder = path / "checkpoints" if (path / "checkpoints").is_dir() else path
        found = sorted(folder.glob("*.safetensors"))
        if not found:
            raise DataError(f"no checkpoint (*.safetensors) in {folder}; pass a checkpoint file or a run folder")
        return found[-1]
    if path.suffix == ".json":
        path = path.with_suffix(".safetensors")
    if not path.is_file():
        raise DataError(f"checkpoint not found: {path}")
    return path


def load_checkpoint(path: str | Path) -> tuple[dict[str, dict[str, torch.Tensor]], dict[str, Any]]:
    """Read a checkpoint written by :func:`save_checkpoint`: ``(groups, meta)``."""
    path = resolve_checkpoint(path)
    sidecar = path.with_suffix(".json")
    try:
        meta = json.loads(sidecar.read_text())
    except FileNotFoundError:
        raise DataError(f"checkpoint sidecar missing: {sidecar}") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"checkpoint sidecar {sidecar} is not valid JSON ({exc.msg})") from None
    if meta.get("format") != FORMAT:
        raise DataError(f"{sidecar} is not an anila checkpoint sidecar")
    try:
        flat = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise DataError(f"checkpoint {path} is unreadable or corrupt: {exc}") from None
    groups: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in flat.items():
        group, name = key.split(".", 1)
        groups.setdefault(group, {})[name] = tensor
    return groups, meta
