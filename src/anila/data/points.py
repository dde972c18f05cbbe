"""Your own point cloud: ``N`` points of any dimension ``D >= 1`` from a file or a tensor.

Files are read by their suffix:

- ``.npy``: a numeric array ``(N, D)`` (or ``(N,)``: ``N`` points in 1-D); never unpickled;
- ``.csv``: numeric columns separated by commas, an optional header row (detected: its first field is
  not a number); blank lines are skipped;
- ``.safetensors``: one tensor ``(N, D)``, or the one named ``key`` when the file holds several.

:class:`PointCloud` then splits the rows once, with its own seeded permutation (so the split does not depend
on the training seed), into ``train`` and ``heldout`` (a ``holdout`` fraction, at least 2 points), and with
``standardize=True`` maps every coordinate to zero mean and unit variance on the training rows,

    z = (x - mean) / scale,    x = mean + scale * z    (``to_model`` / ``to_data``),

so one recipe suits data of any scale. The model is trained and sampled in ``z``; samples are mapped back
with :meth:`PointCloud.to_data` before they are saved. Bad input raises :class:`PointDataError` (a
``ValueError``) with one line naming the file, the problem and the fix.

>>> cloud = PointCloud(torch.randn(500, 3) * 10 + 5)             # any (N, D) tensor
>>> cloud.train.shape, cloud.heldout.shape, cloud.dim           # doctest: +SKIP
(torch.Size([450, 3]), torch.Size([50, 3]), 3)
>>> batch = cloud.sampler()(100, torch.Generator().manual_seed(0))    # (100, 3), standardised
>>> cloud.metrics(cloud.train[:200])                            # doctest: +SKIP
{'mmd': ..., 'energy_distance': ..., 'sliced_w2': ...}
"""

from __future__ import annotations

import csv
import functools
import json
import math
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from anila.errors import DataError
from anila.io import atomic_write_text

__all__ = ["MIN_POINTS", "POINT_SUFFIXES", "PointCloud", "PointDataError", "load_points", "point_metrics"]

POINT_SUFFIXES = (".npy", ".csv", ".safetensors")
#: The fewest rows a point file may have: enough for a split with >= 2 held-out and >= 8 training points.
MIN_POINTS = 10


class PointDataError(DataError, ValueError):
    """A point file or tensor that cannot be used: missing, non-numeric, non-finite, wrong shape, too few rows."""


# ------------------------------------------------------------------------------------------------ reading


def _read_npy(path: Path) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise PointDataError(f"{path}: not a numeric .npy array ({exc}); save it with np.save(path, x.astype("
                             "np.float32))") from None
    if not isinstance(array, np.ndarray):
        raise PointDataError(f"{path}: holds several arrays; save one (N, D) array with np.save")
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_) or np.iscomplexobj(array):
        raise PointDataError(f"{path}: array of dtype {array.dtype} is not real numbers; save a float array")
    return array


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _read_csv(path: Path) -> np.ndarray:
    with path.open(newline="") as f:
        rows = [row for row in csv.reader(f) if row and any(cell.strip() for cell in row)]
    if not rows:
        raise PointDataError(f"{path}: the file is empty; write one point per row, coordinates separated by commas")
    header = None
    if not _is_number(rows[0][0].strip()):
        header, rows = rows[0], rows[1:]
    width = len(header) if header is not None else len(rows[0]) if rows else 0
    values = np.empty((len(rows), width), dtype=np.float64)
    for i, row in enumerate(rows):
        line = i + (2 if header is not None else 1)
        if len(row) != width:
            raise PointDataError(f"{path}: line {line} has {len(row)} fields, expected {width}; every row needs "
                                 "the same number of columns")
        for j, cell in enumerate(row):
            try:
                values[i, j] = float(cell)
            except ValueError:
                column = f"column {j + 1}" + (f" ({header[j].strip()!r})" if header is not None else "")
                raise PointDataError(f"{path}: {column} is not numeric (line {line}: {cell.strip()!r}); drop that "
                                     "column or encode it as numbers") from None
    return values


def _read_safetensors(path: Path, key: str | None) -> np.ndarray:
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise PointDataError(f"{path}: not a readable safetensors file ({exc})") from None
    if key is None:
        if len(tensors) != 1:
            raise PointDataError(f"{path}: holds {len(tensors)} tensors ({', '.join(sorted(tensors)) or 'none'}); "
                                 "set data.key to the one to train on")
        key = next(iter(tensors))
    if key not in tensors:
        raise PointDataError(f"{path}: no tensor named {key!r}; it holds {', '.join(sorted(tensors))}")
    return tensors[key]


def load_points(path: str | os.PathLike, *, key: str | None = None) -> Tensor:
    """The points in ``path`` (``.npy``, ``.csv`` or ``.safetensors``) as a float32 tensor ``(N, D)``.

    ``key``: the tensor to read from a safetensors file holding several. Checks every value is finite, the
    array is 1-D or 2-D and has at least :data:`MIN_POINTS` rows.

    >>> np.savetxt("pts.csv", np.random.randn(100, 3), delimiter=",", header="a,b,c", comments="")  # doctest: +SKIP
    >>> load_points("pts.csv").shape                                                                # doctest: +SKIP
    torch.Size([100, 3])
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in POINT_SUFFIXES:
        raise PointDataError(f"{path}: unknown point file type {suffix or '(none)'!r}; use one of "
                             f"{', '.join(POINT_SUFFIXES)}")
    if not path.is_file():
        raise PointDataError(f"{path}: file not found; set data.path to an existing {suffix} file (relative paths "
                             f"start from the folder you run in, here {Path.cwd()})")
    if key is not None and suffix != ".safetensors":
        raise PointDataError(f"{path}: data.key applies to .safetensors files only; remove it")
    array = {".npy": _read_npy, ".csv": _read_csv}[suffix](path) if suffix != ".safetensors" else (
        _read_safetensors(path, key))
    return _as_points(np.asarray(array), str(path))


def _as_points(array: np.ndarray | Tensor, name: str) -> Tensor:
    """Check an ``(N, D)`` or ``(N,)`` array of real numbers and return it as float32 ``(N, D)``."""
    x = torch.as_tensor(array)
    if x.dim() == 1:
        x = x[:, None]
    if x.dim() != 2:
        raise PointDataError(f"{name}: points must be an (N, D) array, one point per row; got shape "
                             f"{tuple(x.shape)}: flatten each point with x.reshape(len(x), -1)")
    if x.is_complex() or not (x.is_floating_point() or x.dtype in (torch.bool, torch.uint8, torch.int8, torch.int16,
                                                                   torch.int32, torch.int64)):
        raise PointDataError(f"{name}: dtype {x.dtype} is not real numbers; convert the points to float")
    x = x.to(torch.float32)
    if x.shape[1] == 0:
        raise PointDataError(f"{name}: points have no coordinates (shape {tuple(x.shape)})")
    bad = ~torch.isfinite(x)
    if bad.any():
        row, col = (int(i) for i in bad.nonzero()[0])
        raise PointDataError(f"{name}: {int(bad.sum())} values are NaN or infinite (first: row {row + 1}, column "
                             f"{col + 1}); drop or fill those rows")
    if x.shape[0] < MIN_POINTS:
        raise PointDataError(f"{name}: only {x.shape[0]} points; need at least {MIN_POINTS} (one point per row)")
    return x


@functools.lru_cache(maxsize=8)
def _cached(path: str, key: str | None, mtime_ns: int, size: int) -> Tensor:
    return load_points(path, key=key)


def load_points_cached(path: str | os.PathLike, *, key: str | None = None) -> Tensor:
    """:func:`load_points`, read once per file version (path, modification time, size); do not modify the result."""
    p = Path(path)
    try:
        stat = p.stat()
    except OSError:
        return load_points(p, key=key)  # raises the one-line error
    return _cached(str(p), key, stat.st_mtime_ns, stat.st_size)


# ------------------------------------------------------------------------------------------------ metrics


def point_metrics(samples: Tensor, reference: Tensor, *, generator: torch.Generator | None = None,
                  max_points: int = 2000) -> dict[str, float]:
    """Two-sample distances between ``samples (n, D)`` and ``reference (m, D)``, any ``D``.

    ``mmd`` (unbiased MMD² with Gaussian kernels at multiples of the median distance), ``energy_distance``
    and ``sliced_w2`` (sliced 2-Wasserstein, 128 directions) from :mod:`anila.metrics.samples`. Each side is
    subsampled (with ``generator``) to at most ``max_points`` points; non-finite samples are dropped and their
    fraction reported as ``non_finite_samples`` (all three distances are ``nan`` if fewer than 2 remain).

    >>> point_metrics(torch.randn(500, 5), torch.randn(400, 5))   # doctest: +SKIP
    {'mmd': ~0, 'energy_distance': ~0, 'sliced_w2': ~0.06, 'non_finite_samples': 0.0}
    """
    from anila.metrics.samples import energy_distance, mmd, sliced_wasserstein

    samples, reference = samples.detach().reshape(len(samples), -1), reference.detach().reshape(len(reference), -1)
    finite = torch.isfinite(samples).all(dim=1)
    out = {"non_finite_samples": float((~finite).float().mean()) if len(samples) else 0.0}
    samples = samples[finite]

    def subsample(x: Tensor) -> Tensor:
        if len(x) <= max_points:
            return x
        device = generator.device if generator is not None else torch.device("cpu")
        return x[torch.randperm(len(x), generator=generator, device=device)[:max_points].to(x.device)]

    if len(samples) < 2:
        return {"mmd": math.nan, "energy_distance": math.nan, "sliced_w2": math.nan, **out}
    x, y = subsample(samples), subsample(reference)
    return {"mmd": mmd(x, y, generator=generator), "energy_distance": energy_distance(x, y),
            "sliced_w2": sliced_wasserstein(x, y, generator=generator), **out}


# ------------------------------------------------------------------------------------------------ the cloud


class PointCloud:
    """Points ``(N, D)`` split into ``train`` / ``heldout`` rows, optionally standardised (see module docstring).

    ``train`` and ``heldout`` are in model coordinates ``z`` (standardised when ``standardize``); ``mean`` and
    ``scale`` (``(D,)``; zeros and ones without standardisation) map between ``z`` and the data's own units.
    ``split_seed`` seeds the permutation that picks the held-out rows.
    """

    def __init__(self, points: Tensor | np.ndarray, *, standardize: bool = True, holdout: float = 0.1,
                 split_seed: int = 0, name: str = "points") -> None:
        if not 0 < holdout < 1:
            raise PointDataError(f"{name}: holdout must be a fraction in (0, 1), got {holdout}")
        x = _as_points(points, name)
        n = len(x)
        num_heldout = max(2, round(holdout * n))
        if n - num_heldout < MIN_POINTS - 2:
            raise PointDataError(f"{name}: {n} points leave {n - num_heldout} for training after holding out "
                                 f"{num_heldout}; lower data.holdout or add points")
        order = torch.randperm(n, generator=torch.Generator().manual_seed(split_seed))
        raw_train, raw_heldout = x[order[num_heldout:]], x[order[:num_heldout]]
        self.name, self.standardize, self.holdout, self.split_seed = name, standardize, holdout, split_seed
        if standardize:
            self.mean = raw_train.double().mean(0)
            self.scale = raw_train.double().std(0)
            constant = (self.scale <= 1e-12 * (1 + self.mean.abs())).nonzero().flatten()
            if len(constant):
                raise PointDataError(f"{name}: column {int(constant[0]) + 1} is constant on the training rows; drop "
                                     "it, or set data.standardize = false")
            self.mean, self.scale = self.mean.float(), self.scale.float()
        else:
            self.mean, self.scale = torch.zeros(x.shape[1]), torch.ones(x.shape[1])
        self.train, self.heldout = self.to_model(raw_train), self.to_model(raw_heldout)

    @classmethod
    def from_file(cls, path: str | os.PathLike, *, key: str | None = None, **kwargs) -> PointCloud:
        """:func:`load_points` then the split and standardisation (``kwargs`` as for the constructor)."""
        return cls(load_points_cached(path, key=key), name=str(path), **kwargs)

    @property
    def dim(self) -> int:
        return self.train.shape[1]

    def to_model(self, x: Tensor) -> Tensor:
        """Data units -> model coordinates ``(x - mean) / scale``; any ``(..., D)``."""
        return (x - self.mean.to(x)) / self.scale.to(x)

    def to_data(self, z: Tensor) -> Tensor:
        """Model coordinates -> data units ``mean + scale * z`` (e.g. for samples); any ``(..., D)``."""
        return self.mean.to(z) + self.scale.to(z) * z

    def bound(self, quantile: float = 0.999) -> float:
        """Half-width of a square holding the training points, in model coordinates: 1.2 x the ``quantile``
        of ``max_d |z_d|`` (for figures and density grids)."""
        return 1.2 * float(torch.quantile(self.train.abs().amax(dim=1), quantile))

    def sampler(self, device: torch.device | str | None = None) -> Callable[[int, torch.Generator], Tensor]:
        """``data(num, generator)``: ``num`` training points drawn uniformly with replacement, ``(num, D)``,
        on the generator's device (``device`` without one)."""
        train = self.train

        def data(num: int, generator: torch.Generator | None = None) -> Tensor:
            where = generator.device if generator is not None else torch.device(device or "cpu")
            nonlocal train
            if train.device != where:
                train = train.to(where)
            idx = torch.randint(0, len(train), (num,), generator=generator, device=where)
            return train[idx]

        return data

    def metrics(self, samples: Tensor, *, generator: torch.Generator | None = None) -> dict[str, float]:
        """:func:`point_metrics` of model-coordinate ``samples`` against the held-out points."""
        return point_metrics(samples.to(self.heldout.device), self.heldout, generator=generator)

    def floor(self, *, generator: torch.Generator | None = None) -> dict[str, float]:
        """The same metrics for training points against the held-out ones: what a perfect model scores."""
        return {k: v for k, v in point_metrics(self.train, self.heldout, generator=generator).items()
                if k != "non_finite_samples"}

    def record(self) -> dict:
        """What a run writes to ``points.json``: sizes, the split and the standardisation (to undo it)."""
        return {"source": self.name, "dim": self.dim, "num_train": len(self.train), "num_heldout": len(self.heldout),
                "holdout": self.holdout, "split_seed": self.split_seed, "standardize": self.standardize,
                "mean": self.mean.tolist(), "scale": self.scale.tolist()}

    def write_record(self, path: Path) -> Path:
        atomic_write_text(path, json.dumps(self.record(), indent=1) + "\n")
        return path
