"""Output files written atomically: a crash, a full disk or a kill leaves the old file or the new one, never a mix.

Every file the library and the CLI write (checkpoints, ``config.toml``, samples ``.npy``, JSON results,
figures) goes through :func:`atomic_writer`: the data go to a hidden temporary file in the target's folder
(``.NAME.XXXXXXXX.tmp``), which is flushed, ``fsync``-ed and renamed over the target with ``os.replace``;
the folder is then ``fsync``-ed. On any error the temporary file is removed and the target is untouched.

New files get the usual permissions of the process (``0o666`` minus the umask), like any other tool: the
temporary file is created with ``os.open(..., 0o666)``, not with :func:`tempfile.mkstemp`'s ``0o600``.

>>> atomic_write_bytes(Path("out/summary.json"), b"{}")  # doctest: +SKIP
>>> save_npy(Path("samples.npy"), array)  # doctest: +SKIP
>>> with NpyWriter(Path("samples.npy"), (num, 2)) as out:  # batches appended, renamed into place at the end
...     out.write(batch)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import io
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

__all__ = ["NpyWriter", "atomic_write_bytes", "atomic_write_text", "atomic_writer", "save_figure", "save_npy"]


def fsync_dir(folder: Path) -> None:
    """``fsync`` a folder so a rename in it is durable (skipped where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _create_temporary(path: Path) -> tuple[int, Path]:
    """A new hidden file beside ``path``, opened for writing with mode ``0o666`` (the umask applies)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temporary file beside {path}")


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """A binary file object whose content replaces ``path`` atomically when the ``with`` block ends without error.

    The parent folder is created when missing. An exception (``KeyboardInterrupt`` included) removes the
    temporary file and leaves ``path`` as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temporary(path)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_writer`)."""
    with atomic_writer(path) as f:
        f.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def save_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    """``np.save`` through :func:`atomic_writer` (no pickled objects: ``allow_pickle=False``)."""
    with atomic_writer(path) as f:
        np.save(f, np.asarray(array), allow_pickle=False)


def save_figure(fig, path: str | os.PathLike, **kwargs) -> Path:
    """``fig.savefig`` into memory, then an atomic write of ``path``; the format comes from the suffix."""
    path = Path(path)
    buffer = io.BytesIO()
    fig.savefig(buffer, format=path.suffix.lstrip(".") or "png", **kwargs)
    atomic_write_bytes(path, buffer.getvalue())
    return path


class NpyWriter:
    """A ``.npy`` file of known shape written batch by batch, renamed into place only once it is complete.

    ``with NpyWriter(path, (num, *event)) as out: out.write(batch)`` (float32 by default); the batches must
    add up to exactly ``num`` rows, else the file is not written and :class:`ValueError` is raised. Memory
    holds one batch at a time."""

    def __init__(self, path: str | os.PathLike, shape: tuple[int, ...], dtype: np.typing.DTypeLike = np.float32):
        self.path, self.shape, self.dtype = Path(path), tuple(int(s) for s in shape), np.dtype(dtype)
        self.rows = 0
        self._context: Any = None  # the atomic_writer context, entered in __enter__
        self._file: Any = None  # its binary file

    def __enter__(self) -> NpyWriter:
        self._context = atomic_writer(self.path)
        self._file = self._context.__enter__()
        header = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False, "shape": self.shape}
        np.lib.format.write_array_header_1_0(self._file, header)
        return self

    def write(self, batch: np.ndarray) -> None:
        """Append ``batch`` (its trailing shape must be the file's)."""
        batch = np.ascontiguousarray(batch, dtype=self.dtype)
        if batch.shape[1:] != self.shape[1:] or self.rows + len(batch) > self.shape[0]:
            raise ValueError(f"batch of shape {batch.shape} does not fit {self.path} of shape {self.shape} "
                             f"after {self.rows} rows")
        self._file.write(batch.tobytes())
        self.rows += len(batch)

    def __exit__(self, kind, value, traceback) -> bool:
        if kind is None and self.rows != self.shape[0]:
            error = ValueError(f"{self.path}: {self.rows} rows written, {self.shape[0]} announced")
            self._context.__exit__(ValueError, error, None)  # removes the temporary file
            raise error
        return bool(self._context.__exit__(kind, value, traceback))
