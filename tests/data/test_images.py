"""Tests for the image loaders in ``anila.data.images``: tiny files in each real on-disk format."""

from __future__ import annotations

import builtins
import gzip
import os
import pickle
import struct

import numpy as np
import pytest
import torch
from PIL import Image

from anila.data import images as im
from anila.errors import DataError

# --------------------------------------------------------------------------------------------- writers


def _idx_bytes(array: np.ndarray) -> bytes:
    """``array`` (uint8) as an IDX file: magic 0x0000 08 <ndim>, big-endian uint32 dims, then the bytes."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def _write(path, data: bytes, *, gz: bool = False):
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def _mnist_arrays(num: int, seed: int):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (num, 28, 28), dtype=np.uint8), rng.integers(0, 10, num, dtype=np.uint8)


def _write_mnist(root, split="train", num=5, seed=0, gz=False):
    images, labels = _mnist_arrays(num, seed)
    image_name, label_name = im.MNIST_FILES[split]
    _write(root / image_name, _idx_bytes(images), gz=gz)
    _write(root / label_name, _idx_bytes(labels), gz=gz)
    return images, labels


def _cifar_arrays(num: int, seed: int):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (num, 3072), dtype=np.uint8), [int(v) for v in rng.integers(0, 10, num)]


def _cifar_bin_bytes(data: np.ndarray, labels: list[int]) -> bytes:
    return np.concatenate([np.asarray(labels, np.uint8)[:, None], data], axis=1).tobytes()


def _cifar_dict(data, labels, index=1):
    return {b"batch_label": f"training batch {index} of 5".encode(), b"labels": labels, b"data": data,
            b"filenames": [f"img_{index}_{i}.png".encode() for i in range(len(labels))]}


def _py2_cifar_pickle(data: np.ndarray, labels: list[int]) -> bytes:
    """A batch byte-for-byte in the style of the real files (Python 2 cPickle, protocol 2, str as SHORT_BINSTRING)."""

    def s(b: bytes) -> bytes:
        return b"U" + bytes([len(b)]) + b if len(b) < 256 else b"T" + struct.pack("<i", len(b)) + b

    rows, cols = data.shape
    return (b"\x80\x02}(" + s(b"data") + b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85" + s(b"b")
            + b"\x87R(K\x01J" + struct.pack("<i", rows) + b"M" + struct.pack("<H", cols) + b"\x86cnumpy\ndtype\n"
            + s(b"u1") + b"K\x00K\x01\x87R(K\x03" + s(b"|") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89"
            + s(data.tobytes()) + b"tb" + s(b"labels") + b"](" + b"".join(b"K" + bytes([v]) for v in labels) + b"e"
            + s(b"batch_label") + s(b"training batch 1 of 5") + s(b"filenames") + b"]("
            + b"".join(s(b"x_%d.png" % i) for i in range(rows)) + b"eu.")


def _write_cifar(root, fmt: str, split="train", num=3, seed=0):
    """Writes a tiny split in ``fmt`` ("bin", "py2", or a pickle protocol number as a str) under ``root``."""
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    folder = root / ("cifar-10-batches-bin" if fmt == "bin" else "cifar-10-batches-py")
    all_data, all_labels = [], []
    for i, name in enumerate(names):
        data, labels = _cifar_arrays(num, seed + i)
        all_data.append(data)
        all_labels += labels
        if fmt == "bin":
            _write(folder / f"{name}.bin", _cifar_bin_bytes(data, labels))
        elif fmt == "py2":
            _write(folder / name, _py2_cifar_pickle(data, labels))
        else:
            _write(folder / name, pickle.dumps(_cifar_dict(data, labels, i + 1), protocol=int(fmt)))
    return np.concatenate(all_data).reshape(-1, 3, 32, 32), np.asarray(all_labels)


def _scaled(pixels) -> torch.Tensor:
    return torch.as_tensor(np.asarray(pixels), dtype=torch.float32) / 127.5 - 1


def _check_images(x: torch.Tensor, shape):
    assert x.shape == shape
    assert x.dtype == torch.float32
    assert x.min() >= -1 and x.max() <= 1


# --------------------------------------------------------------------------------------------- digits


@pytest.fixture(scope="module")
def digits():
    pytest.importorskip("sklearn")
    return im.load_digits()


def test_digits_shape_range_and_values(digits):
    from sklearn.datasets import load_digits

    images, labels = digits
    _check_images(images, (1797, 1, 8, 8))
    assert images.min() == -1 and images.max() == 1
    assert labels.shape == (1797,) and labels.dtype == torch.int64 and set(labels.tolist()) == set(range(10))
    raw = load_digits()
    assert torch.equal(images[:, 0], torch.as_tensor(raw.images, dtype=torch.float32) / 8 - 1)
    assert torch.equal(labels, torch.as_tensor(raw.target, dtype=torch.int64))


def test_digits_upsampled(digits):
    images, labels = im.load_digits(size=16)
    _check_images(images, (1797, 1, 16, 16))
    assert torch.equal(labels, digits[1])
    # bilinear 2x upsampling averages neighbours: the mean intensity barely moves
    assert torch.allclose(images.mean(dim=(2, 3)), digits[0].mean(dim=(2, 3)), atol=0.1)


@pytest.mark.parametrize("size", [4, 7, 8.5, True])
def test_digits_bad_size(size):
    with pytest.raises(ValueError, match="size"):
        im.load_digits(size=size)


def test_digits_without_sklearn(monkeypatch):
    real_import = builtins.__import__

    def no_sklearn(name, *args, **kwargs):
        if name.startswith("sklearn"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_sklearn)
    with pytest.raises(DataError, match=r"pip install scikit-learn.*anila\[images\]"):
        im.load_digits()


# --------------------------------------------------------------------------------------------- MNIST


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("split", ["train", "test"])
def test_mnist_loads_idx(tmp_path, split, gz):
    raw_images, raw_labels = _write_mnist(tmp_path, split, num=4, gz=gz)
    images, labels = im.load_mnist(tmp_path, split=split)
    _check_images(images, (4, 1, 28, 28))
    assert torch.equal(images[:, 0], _scaled(raw_images))
    assert labels.dtype == torch.int64 and labels.tolist() == raw_labels.tolist()
    # a known pixel, exactly
    p = np.float32(raw_images[2, 5, 7])
    assert images[2, 0, 5, 7].item() == p / np.float32(127.5) - np.float32(1)
    assert images[2, 0, 5, 7].item() == pytest.approx(raw_images[2, 5, 7] / 127.5 - 1, abs=1e-7)
    assert torch.equal(im.load_mnist(tmp_path, split=split)[0], images)  # deterministic


def test_mnist_extremes_map_to_minus_one_and_one(tmp_path):
    pixels = np.zeros((2, 28, 28), np.uint8)
    pixels[1] = 255
    _write(tmp_path / "t10k-images-idx3-ubyte", _idx_bytes(pixels))
    _write(tmp_path / "t10k-labels-idx1-ubyte", _idx_bytes(np.array([0, 9], np.uint8)))
    images, _ = im.load_mnist(tmp_path, split="test")
    assert (images[0] == -1).all() and (images[1] == 1).all()


def test_mnist_torchvision_layout(tmp_path):
    raw_images, _ = _write_mnist(tmp_path / "MNIST" / "raw", "test", num=2, gz=True)
    assert torch.equal(im.load_mnist(tmp_path, split="test")[0][:, 0], _scaled(raw_images))


def test_mnist_missing_root(tmp_path):
    with pytest.raises(DataError, match="does not exist") as err:
        im.load_mnist(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(err.value) and "\n" not in str(err.value)


def test_mnist_missing_files_named(tmp_path):
    _write(tmp_path / "train-images-idx3-ubyte", _idx_bytes(_mnist_arrays(2, 0)[0]))
    with pytest.raises(DataError) as err:
        im.load_mnist(tmp_path)
    message = str(err.value)
    assert "train-images-idx3-ubyte" in message and "train-labels-idx1-ubyte" in message
    assert "missing train-labels-idx1-ubyte" in message and str(tmp_path) in message and "\n" not in message


def test_mnist_bad_split(tmp_path):
    with pytest.raises(ValueError, match="train, test"):
        im.load_mnist(tmp_path, split="val")


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_truncated(tmp_path, gz):
    _write_mnist(tmp_path, num=3)
    path = tmp_path / "train-images-idx3-ubyte"
    data = path.read_bytes()[:-100]
    path.unlink()
    bad = _write(path, data, gz=gz)
    with pytest.raises(DataError, match="truncated") as err:
        im.load_mnist(tmp_path)
    assert str(bad) in str(err.value)


def test_mnist_cut_gzip_stream(tmp_path):
    _write_mnist(tmp_path, num=3, gz=True)
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:15])
    with pytest.raises(DataError, match="train-labels-idx1-ubyte.gz"):
        im.load_mnist(tmp_path)


def test_mnist_wrong_magic(tmp_path):
    images, labels = _mnist_arrays(3, 0)
    _write(tmp_path / "train-images-idx3-ubyte", _idx_bytes(labels))  # a labels file in the images' place
    _write(tmp_path / "train-labels-idx1-ubyte", _idx_bytes(labels))
    with pytest.raises(DataError, match="magic number 00000801, expected 00000803") as err:
        im.load_mnist(tmp_path)
    assert "train-images-idx3-ubyte" in str(err.value)


def test_mnist_wrong_image_size_and_count_mismatch(tmp_path):
    _write(tmp_path / "train-images-idx3-ubyte", _idx_bytes(np.zeros((2, 32, 32), np.uint8)))
    _write(tmp_path / "train-labels-idx1-ubyte", _idx_bytes(np.zeros(2, np.uint8)))
    with pytest.raises(DataError, match="shape"):
        im.load_mnist(tmp_path)
    _write(tmp_path / "train-images-idx3-ubyte", _idx_bytes(np.zeros((2, 28, 28), np.uint8)))
    _write(tmp_path / "train-labels-idx1-ubyte", _idx_bytes(np.zeros(3, np.uint8)))
    with pytest.raises(DataError, match="2 images but .* 3 labels"):
        im.load_mnist(tmp_path)


# --------------------------------------------------------------------------------------------- CIFAR-10


@pytest.mark.parametrize("fmt", ["bin", "py2", "2", "4", "5"])
@pytest.mark.parametrize("split", ["train", "test"])
def test_cifar_formats(tmp_path, fmt, split):
    raw, raw_labels = _write_cifar(tmp_path, fmt, split, num=3)
    images, labels = im.load_cifar10(tmp_path, split=split)
    n = 15 if split == "train" else 3
    _check_images(images, (n, 3, 32, 32))
    assert torch.equal(images, _scaled(raw))
    assert labels.dtype == torch.int64 and labels.tolist() == raw_labels.tolist()


def test_cifar_channel_order_and_known_pixel(tmp_path):
    """Record bytes are 1024 red, 1024 green, 1024 blue, each row-major: byte 1 + c*1024 + y*32 + x."""
    data = np.zeros((1, 3072), np.uint8)
    data[0, 0 * 1024 + 2 * 32 + 5] = 255  # red at (y=2, x=5)
    data[0, 1 * 1024 + 31 * 32 + 0] = 128  # green at (y=31, x=0)
    for fmt in ("bin", "py"):
        folder = tmp_path / fmt
        if fmt == "bin":
            _write(folder / "test_batch.bin", _cifar_bin_bytes(data, [7]))
        else:
            _write(folder / "test_batch", pickle.dumps(_cifar_dict(data, [7]), protocol=2))
        images, labels = im.load_cifar10(folder, split="test")  # root is the batches folder itself
        assert labels.tolist() == [7]
        assert images[0, 0, 2, 5].item() == 1.0
        assert images[0, 1, 31, 0].item() == pytest.approx(128 / 127.5 - 1, abs=1e-7)
        assert (images != -1).sum() == 2


def test_cifar_binary_preferred_and_same_as_python(tmp_path):
    _write_cifar(tmp_path, "bin", "test", num=4, seed=3)
    _write_cifar(tmp_path, "py2", "test", num=4, seed=3)
    from_bin = im.load_cifar10(tmp_path, split="test")
    (tmp_path / "cifar-10-batches-bin" / "test_batch.bin").unlink()
    from_py = im.load_cifar10(tmp_path, split="test")
    assert torch.equal(from_bin[0], from_py[0]) and torch.equal(from_bin[1], from_py[1])


def test_cifar_missing(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        im.load_cifar10(tmp_path / "nowhere")
    with pytest.raises(DataError) as err:
        im.load_cifar10(tmp_path)
    message = str(err.value)
    assert "cifar-10-batches-bin/data_batch_{1..5}.bin" in message
    assert "cifar-10-batches-py/data_batch_{1..5}" in message
    assert str(tmp_path) in message and "\n" not in message
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(b"")
    with pytest.raises(DataError, match=r"extract cifar-10-python.tar.gz first.*test_batch"):
        im.load_cifar10(tmp_path, split="test")


def test_cifar_incomplete_split_names_missing_batches(tmp_path):
    _write_cifar(tmp_path, "bin")
    (tmp_path / "cifar-10-batches-bin" / "data_batch_3.bin").unlink()
    with pytest.raises(DataError, match="missing data_batch_3.bin"):
        im.load_cifar10(tmp_path)


def test_cifar_truncated_binary(tmp_path):
    _write_cifar(tmp_path, "bin", "test")
    path = tmp_path / "cifar-10-batches-bin" / "test_batch.bin"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DataError, match="not a positive multiple of 3073") as err:
        im.load_cifar10(tmp_path, split="test")
    assert str(path) in str(err.value)


def test_cifar_truncated_pickle(tmp_path):
    _write_cifar(tmp_path, "py2", "test")
    path = tmp_path / "cifar-10-batches-py" / "test_batch"
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(DataError, match="corrupt or truncated") as err:
        im.load_cifar10(tmp_path, split="test")
    assert str(path) in str(err.value)


@pytest.mark.parametrize("bad", [
    {b"data": np.zeros((2, 3072), np.float32), b"labels": [0, 1]},  # wrong dtype
    {b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]},  # wrong width
    {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]},  # too few labels
    {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]},  # out of range
    {b"data": np.zeros((2, 3072), np.uint8), b"labels": ["a", "b"]},
    [1, 2, 3],
])
def test_cifar_python_batch_with_wrong_structure(tmp_path, bad):
    _write(tmp_path / "test_batch", pickle.dumps(bad, protocol=4))
    with pytest.raises(DataError, match="not a CIFAR-10 python batch"):
        im.load_cifar10(tmp_path, split="test")


class _RunsShell:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class _Execs:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').close()",)


@pytest.mark.parametrize("payload", [_RunsShell, _Execs])
@pytest.mark.parametrize("protocol", [2, 4])
def test_cifar_malicious_pickle_is_refused_and_not_run(tmp_path, payload, protocol):
    marker = tmp_path / "pwned"
    data, labels = _cifar_arrays(2, 0)
    batch = _cifar_dict(data, labels)
    batch[b"batch_label"] = payload(marker)
    _write(tmp_path / "cifar-10-batches-py" / "test_batch", pickle.dumps(batch, protocol=protocol))
    with pytest.raises(DataError, match="refused to unpickle") as err:
        im.load_cifar10(tmp_path, split="test")
    assert not marker.exists()
    # protocol 2 writes Python 2 names (__builtin__.exec); os.system pickles as posix.system or nt.system
    assert (".system" if payload is _RunsShell else "builtin") in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("module, name, args", [
    (b"numpy.testing._private.utils", b"runstring", b"S'open(\"MARKER\", \"w\")'\n}"),  # a gadget inside numpy
    (b"numpy", b"load", b"S'MARKER'\n"),
    (b"_codecs", b"decode", b"S'x'\nS'rot13'\n"),  # _codecs.encode is allowed for latin-1 only; decode never
])
def test_cifar_numpy_gadgets_are_refused(tmp_path, module, name, args):
    marker = tmp_path / "pwned"
    payload = b"c" + module + b"\n" + name + b"\n(" + args.replace(b"MARKER", str(marker).encode()) + b"tR."
    _write(tmp_path / "test_batch", payload)
    with pytest.raises(DataError, match=f"{module.decode()}.{name.decode()}"):
        im.load_cifar10(tmp_path, split="test")
    assert not marker.exists()


def test_cifar_codecs_encode_only_for_latin1(tmp_path):
    _write(tmp_path / "test_batch", b"\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00xX\x05\x00\x00\x00rot13\x86R.")
    with pytest.raises(DataError, match="latin1"):
        im.load_cifar10(tmp_path, split="test")


def test_cifar_bad_split(tmp_path):
    with pytest.raises(ValueError, match="split"):
        im.load_cifar10(tmp_path, split="validation")


# --------------------------------------------------------------------------------------------- image folder


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "flowers"
    (root / "sub").mkdir(parents=True)
    Image.new("L", (10, 20), 200).save(root / "a_grey.png")  # portrait, grey
    Image.new("RGBA", (30, 15), (10, 20, 30, 40)).save(root / "b_rgba.PNG")  # landscape, alpha is dropped
    Image.new("RGB", (40, 40), (250, 0, 120)).save(root / "sub" / "c_rgb.jpg", quality=95)
    Image.new("RGB", (12, 12), (1, 2, 3)).save(root / "d.jpeg")
    (root / "notes.txt").write_text("not an image")
    (root / ".hidden").mkdir()
    (root / ".hidden" / "junk.jpg").write_bytes(b"AppleDouble junk")
    return root


def test_image_folder(folder):
    images = im.load_image_folder(folder, size=8)
    _check_images(images, (4, 3, 8, 8))
    # sorted by relative path: a_grey.png, b_rgba.PNG, d.jpeg, sub/c_rgb.jpg; flat colours stay exact in PNGs
    assert torch.equal(images[0], _scaled([200, 200, 200])[:, None, None].expand(3, 8, 8))
    assert torch.equal(images[1], _scaled([10, 20, 30])[:, None, None].expand(3, 8, 8))
    assert torch.allclose(images[3], _scaled([250, 0, 120])[:, None, None].expand(3, 8, 8), atol=6 / 127.5)
    assert torch.equal(im.load_image_folder(folder, size=8), images)  # deterministic


def test_image_folder_resize_and_centre_crop(tmp_path):
    pixels = np.zeros((8, 16, 3), np.uint8)  # 16 wide, 8 high: left quarter black, middle half white, right grey
    pixels[:, 4:12] = 255
    pixels[:, 12:] = 100
    Image.fromarray(pixels).save(tmp_path / "x.png")
    images = im.load_image_folder(tmp_path, size=4)  # -> 8x4 (short side 4), centre crop keeps columns 2..5
    _check_images(images, (1, 3, 4, 4))
    assert (images[0, :, :, 1:3] == 1).all()  # the middle of the white band
    assert images[0, :, :, 0].mean() < 1 and images[0, :, :, 3].mean() < 1  # edges blend in black / grey


def test_image_folder_empty(tmp_path):
    with pytest.raises(DataError, match="no .jpg/.jpeg/.png images"):
        im.load_image_folder(tmp_path)
    (tmp_path / "readme.txt").write_text("x")
    with pytest.raises(DataError, match="no .jpg/.jpeg/.png images"):
        im.load_image_folder(tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        im.load_image_folder(tmp_path / "nowhere")


@pytest.mark.parametrize("content", ["garbage", "truncated"])
def test_image_folder_corrupt_jpeg(folder, content):
    bad = folder / "sub" / "bad.jpg"
    if content == "garbage":
        bad.write_bytes(b"this is not a jpeg")
    else:
        noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
        Image.fromarray(noise).save(bad)
        bad.write_bytes(bad.read_bytes()[:600])
    with pytest.raises(DataError, match="cannot read image") as err:
        im.load_image_folder(folder, size=8)
    assert str(bad) in str(err.value) and "\n" not in str(err.value)


# --------------------------------------------------------------------------------------------- noise, batches


def test_dequantize():
    x = torch.zeros(200_000)
    y = im.dequantize(x, noise_std=0.03, generator=torch.Generator().manual_seed(0))
    assert (x == 0).all() and y is not x
    assert y.std().item() == pytest.approx(0.03, rel=0.01) and abs(y.mean().item()) < 1e-3
    assert torch.equal(y, im.dequantize(x, noise_std=0.03, generator=torch.Generator().manual_seed(0)))
    z = im.dequantize(x, noise_std=0.0)
    assert torch.equal(z, x) and z.data_ptr() != x.data_ptr()
    with pytest.raises(ValueError, match="noise_std"):
        im.dequantize(x, noise_std=-0.1)


def test_batch_sampler():
    images = torch.linspace(-1, 1, 10 * 3 * 2 * 2).reshape(10, 3, 2, 2)
    sample = im.batch_sampler(images)
    batch = sample(32, torch.Generator().manual_seed(1))
    assert batch.shape == (32, 3, 2, 2)
    assert all(any(torch.equal(b, x) for x in images) for b in batch)  # rows of the data, unchanged
    assert torch.equal(batch, sample(32, torch.Generator().manual_seed(1)))
    noisy = im.batch_sampler(images, noise_std=0.5)(32, torch.Generator().manual_seed(1))
    assert not torch.equal(noisy, batch) and (noisy - batch).abs().max() > 0.1
    with pytest.raises(ValueError, match="noise_std"):
        im.batch_sampler(images, noise_std=-1)
    with pytest.raises(ValueError, match="non-empty"):
        im.batch_sampler(images[:0])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_batch_sampler_on_generator_device():
    sample = im.batch_sampler(torch.zeros(5, 1, 2, 2), noise_std=0.1)
    generator = torch.Generator(device="cuda").manual_seed(0)
    assert sample(4, generator).device.type == "cuda"


# --------------------------------------------------------------------------------------------- by name


def test_image_dataset_dispatch(tmp_path, folder):
    _write_mnist(tmp_path, "test", num=3)
    mnist = im.image_dataset("mnist", tmp_path, split="test")
    assert mnist.name == "mnist" and mnist.shape == (1, 28, 28) and len(mnist) == 3 and mnist.labels.shape == (3,)
    flowers = im.image_dataset("folder", folder, size=6)
    assert flowers.shape == (3, 6, 6) and flowers.labels is None
    assert flowers.sampler(noise_std=0.03)(2, torch.Generator().manual_seed(0)).shape == (2, 3, 6, 6)
    _write_cifar(tmp_path, "bin", "test", num=2)
    assert im.image_dataset("cifar10", tmp_path, split="test").shape == (3, 32, 32)
    with pytest.raises(DataError, match="root"):
        im.image_dataset("cifar10")
    with pytest.raises(ValueError, match="digits, mnist, mnist5k, cifar10, folder"):
        im.image_dataset("imagenet", tmp_path)


def test_image_dataset_digits(digits):
    data = im.image_dataset("digits", size=8)
    assert torch.equal(data.images, digits[0]) and data.shape == (1, 8, 8)
