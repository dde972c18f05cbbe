"""A fresh run never writes into a folder that holds another run (the two would mix and the old one be lost).

:func:`check_fresh_folder` refuses a non-empty run folder with a one-line error that names ``--resume`` and
``--overwrite``. With ``overwrite=True`` :func:`clear_run_folder` deletes the previous run first, but only
the files a run writes (``config.toml``, ``metrics.jsonl``, ``events.jsonl``, ``summary.json``, ``*.png``,
``checkpoints/iter_*``, temporary ``.*.tmp`` files): a folder holding anything else (your own files, a
subfolder, ``anila sample`` output) is never emptied; choose another ``--out`` then. Both run under the
folder's lock (:mod:`anila.train.lock`), whose ``.lock`` file does not count.

:func:`train_config_path`: ``anila train --resume RUN_DIR`` needs no config; it reads ``RUN_DIR/config.toml``.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path

from anila.errors import ConfigError, DataError, RunFolderBusy
from anila.train.lock import LOCK_NAME

RUN_FILES = ("config.toml", "metrics.jsonl", "events.jsonl", "summary.json", "*.png", ".*.tmp")
CHECKPOINT_FILES = ("iter_*.safetensors", "iter_*.json", "iter_*.corrupt", ".*.tmp")


def _matches(name: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def run_contents(out_dir: Path) -> list[Path]:
    """What ``out_dir`` holds besides its lock file."""
    return sorted(p for p in out_dir.iterdir() if p.name != LOCK_NAME) if out_dir.is_dir() else []


def check_fresh_folder(out_dir: Path, *, overwrite: bool = False) -> None:
    """Raise :class:`RunFolderBusy` if ``out_dir`` is not empty (``overwrite``: clear it instead)."""
    found = run_contents(out_dir)
    if not found:
        return
    if overwrite:
        clear_run_folder(out_dir)
        return
    shown = ", ".join(p.name + ("/" if p.is_dir() else "") for p in found[:4]) + (", ..." if len(found) > 4 else "")
    raise RunFolderBusy(f"run folder {out_dir} is not empty ({shown}); continue that run with --resume {out_dir}, "
                        f"start it over with --overwrite (deletes it), or pick another --out")


def clear_run_folder(out_dir: Path) -> list[Path]:
    """Delete a previous run's files from ``out_dir``; refuses (deleting nothing) if it holds anything else."""
    found = run_contents(out_dir)
    checkpoints = out_dir / "checkpoints"
    foreign = [p for p in found if not (p.is_file() and _matches(p.name, RUN_FILES)) and p != checkpoints]
    inside = sorted(checkpoints.iterdir()) if checkpoints.is_dir() else []
    foreign += [p for p in inside if not (p.is_file() and _matches(p.name, CHECKPOINT_FILES))]
    if checkpoints.exists() and not checkpoints.is_dir():
        foreign.append(checkpoints)
    if foreign:
        shown = ", ".join(str(p.relative_to(out_dir)) for p in foreign[:4]) + (", ..." if len(foreign) > 4 else "")
        raise RunFolderBusy(f"--overwrite: {out_dir} holds files that an anila run does not write ({shown}); "
                            "nothing was deleted: move them away or pick another --out")
    # sidecars first, so that an interrupted clear never leaves a sidecar pointing at a missing tensor file
    order = sorted(inside, key=lambda p: (p.suffix != ".json", p.name))
    for path in order + [p for p in found if p != checkpoints]:
        path.unlink(missing_ok=True)
    if checkpoints.is_dir():
        checkpoints.rmdir()
    return order + found


def train_config_path(config: str | None, resume: str | None) -> Path:
    """The config a ``train`` command reads: the one given, else (``--resume RUN_DIR`` alone) the run's own
    resolved ``RUN_DIR/config.toml``, which holds every setting of that run (``--set`` overrides included)."""
    if config is not None:
        return Path(config)
    if resume is None:
        raise ConfigError("train needs a config file (anila train CONFIG), or --resume RUN_DIR to continue a run")
    path = Path(resume) / "config.toml"
    if not Path(resume).is_dir():
        raise DataError(f"--resume {resume}: no such run folder; pass the folder of an earlier anila train run")
    if not path.is_file():
        raise DataError(f"--resume {resume}: {path} is missing, so the run's settings are unknown; pass the config "
                        f"it was started with: anila train CONFIG --resume {resume}")
    return path
