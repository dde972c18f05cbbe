"""An exclusive lock on a run folder, so that two trainings never write into one folder at once.

:class:`RunLock` holds ``RUN_DIR/.lock``: a file with the owner's pid and host, locked with ``fcntl.flock``
(released by the kernel when the process dies, however it dies). A second process that finds the lock held
gets :class:`~anila.errors.RunFolderBusy` naming the pid; a lock file left by a process that died (the flock
is free, the file remains) is reported through ``report`` as stale and taken over. On platforms without
``fcntl`` the pid in the file is checked with ``os.kill(pid, 0)`` instead.

>>> with RunLock(Path("runs/a")):  # doctest: +SKIP
...     train()
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable
from pathlib import Path

from anila.errors import RunFolderBusy

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".lock"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return False
    return True


def _read_owner(path: Path) -> dict:
    try:
        owner = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return {}
    return owner if isinstance(owner, dict) else {}


class RunLock:
    """``with RunLock(run_dir, report=print):`` holds ``run_dir/.lock`` for the block (the folder must exist)."""

    def __init__(self, run_dir: str | Path, *, report: Callable[[str], None] | None = None):
        self.path = Path(run_dir) / LOCK_NAME
        self.report = report or (lambda message: None)
        self._fd: int | None = None

    def _busy(self, owner: dict) -> RunFolderBusy:
        who = f"process {owner.get('pid', '?')}" + (f" on {owner['host']}" if owner.get("host") else "")
        return RunFolderBusy(f"run folder {self.path.parent} is in use by {who} (lock file {self.path}); wait for "
                             "that run to finish, stop it, or train into another --out")

    def acquire(self) -> RunLock:
        for _ in range(10):  # retried only when the file is replaced between open and lock
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                if fcntl is not None:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except BlockingIOError:
                        raise self._busy(_read_owner(self.path)) from None
                    if not self.path.exists() or os.stat(self.path).st_ino != os.fstat(fd).st_ino:
                        os.close(fd)  # the holder released (and removed) it meanwhile: lock the new file
                        continue
                owner = _read_owner(self.path)
                pid = owner.get("pid")
                if isinstance(pid, int) and pid != os.getpid():
                    same_host = owner.get("host") in (None, socket.gethostname())
                    if fcntl is None and same_host and _pid_alive(pid):
                        raise self._busy(owner)
                    self.report(f"stale lock in {self.path.parent}: process {pid} died without releasing it "
                                "(killed?); taking it over")
                os.ftruncate(fd, 0)
                os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname()}).encode(), 0)
            except BaseException:
                if self._fd != fd:
                    os.close(fd)
                raise
            self._fd = fd
            return self
        raise RunFolderBusy(f"could not lock {self.path}: it keeps being replaced by another process")

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)  # unlink while still locked: no other process can own this file
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
