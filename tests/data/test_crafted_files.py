"""Crafted files cannot exhaust memory: CIFAR-10 pickles are bounded by the batch shape before any array is
allocated, MNIST headers are checked before the data are read, image-folder bombs and absurd aspect ratios are
refused from the header; sizes in configs and on the command line have upper bounds."""

import gzip
import pickle
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from anila.config import config_from_dict
from anila.data.images import CIFAR_FILE_LIMIT, load_cifar10, load_image_folder, load_mnist
from anila.errors import ConfigError, DataError

RECONSTRUCT = np.empty(1, dtype=np.uint8).__reduce__()[0]


class Call:
    """Pickles as ``function(*args)``: a crafted batch names only allow-listed numpy globals."""

    def __init__(self, function, *args):
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


def write_python_batches(root: Path, batch) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    data = pickle.dumps(batch, protocol=2)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (folder / name).write_bytes(data)
    return root


@pytest.mark.parametrize("array", [
    Call(np.ndarray, (1_000_000, 3072), np.dtype("uint8")),  # the 193-byte pickle of the report
    Call(RECONSTRUCT, np.ndarray, (1_000_000, 3072), b"B"),
    Call(np.ndarray, (10_000, 3072), np.dtype("float64")),  # the right shape, 8 bytes an element
], ids=["ndarray", "reconstruct", "itemsize"])
def test_a_pickle_asking_for_a_huge_array_is_refused_before_allocating(tmp_path, array):
    root = write_python_batches(tmp_path, {b"data": array, b"labels": [0]})
    assert len((root / "cifar-10-batches-py" / "test_batch").read_bytes()) < 300
    with pytest.raises(DataError, match=r"asks for an array of shape \((1000000|10000), 3072\).*refused before"):
        load_cifar10(root, split="test")


def test_many_arrays_share_one_batch_budget(tmp_path):
    arrays = [Call(np.ndarray, (10_000, 3072), np.dtype("uint8")) for _ in range(5)]  # 5 x 30.7 MB from a tiny file
    root = write_python_batches(tmp_path, {b"data": arrays[0], b"labels": [0], b"more": arrays[1:]})
    with pytest.raises(DataError, match="more than a CIFAR-10 batch holds"):
        load_cifar10(root, split="test")


def test_a_genuine_python_batch_still_loads(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, (12, 3072), dtype=np.uint8)
    labels = [int(v) for v in rng.integers(0, 10, 12)]
    root = write_python_batches(tmp_path, {b"data": data, b"labels": labels, b"batch_label": b"test"})
    images, got = load_cifar10(root, split="test")
    assert images.shape == (12, 3, 32, 32) and type(images).__name__ == "Tensor" and got.tolist() == labels


def test_an_oversized_cifar_file_is_refused_unread(tmp_path):
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        with (folder / name).open("wb") as f:
            f.truncate(CIFAR_FILE_LIMIT + 3073)  # sparse: no disk used, never read
    with pytest.raises(DataError, match="more than the .* a genuine file of its kind has"):
        load_cifar10(tmp_path, split="test")


def idx_images(count: int, data: bytes = b"") -> bytes:
    return struct.pack(">IIII", 0x0803, count, 28, 28) + data


def write_mnist(root: Path, images: bytes, labels: bytes) -> Path:
    root.mkdir(exist_ok=True)
    (root / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(images))
    (root / "t10k-labels-idx1-ubyte").write_bytes(labels)
    return root


def test_an_mnist_header_announcing_millions_of_images_is_refused_first(tmp_path):
    labels = struct.pack(">II", 0x0801, 1) + b"\0"
    root = write_mnist(tmp_path / "a", idx_images(4_000_000, bytes(1000)), labels)
    with pytest.raises(DataError, match="announces 4000000 items, more than the 100000"):
        load_mnist(root, split="test")


def test_an_mnist_gz_longer_or_shorter_than_its_header_is_refused_reading_only_what_it_announces(tmp_path):
    labels = struct.pack(">II", 0x0801, 2) + b"\0\1"
    bomb = idx_images(2, bytes(20 * 2**20))  # 20 MB of zeros, a few kB gzipped, behind a 2-image header
    root = write_mnist(tmp_path / "bomb", bomb, labels)
    assert (root / "t10k-images-idx3-ubyte.gz").stat().st_size < 100_000
    with pytest.raises(DataError, match="longer than its header says"):
        load_mnist(root, split="test")
    root = write_mnist(tmp_path / "short", idx_images(2, bytes(784)), labels)
    with pytest.raises(DataError, match="is truncated: its header's shape .* needs 1568 bytes"):
        load_mnist(root, split="test")
    root = write_mnist(tmp_path / "good", idx_images(2, bytes(1568)), labels)
    images, got = load_mnist(root, split="test")
    assert images.shape == (2, 1, 28, 28) and got.tolist() == [0, 1]


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header announces ``width x height`` grey pixels (its data are a few bytes)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


@pytest.mark.parametrize("width,height,message", [
    (13000, 13000, "is a decompression bomb .*; images up to 50000000 pixels are read"),  # PIL's warning, an error
    (8000, 8000, "8000x8000 = 64000000 pixels, more than the 50000000"),  # under PIL's limit, over ours
    (150_000_000, 1, "pixels"),
    (100_000, 2, "its sides differ by more than 20:1"),
])
def test_image_bombs_and_absurd_aspect_ratios_are_refused_from_the_header(tmp_path, width, height, message):
    (tmp_path / "bomb.png").write_bytes(png_header_only(width, height))
    with pytest.raises(DataError, match=message):
        load_image_folder(tmp_path, size=8)


@pytest.mark.parametrize("section,key,value,message", [
    ("train", "batch_size", 10**9, "train.batch_size must be <= 1000000"),
    ("train", "num_steps", 2**63 - 1, "train.num_steps must be <= 100000"),
    ("eval", "grid_resolution", 100_000, "eval.grid_resolution must be in [2, 4096]"),
    ("eval", "num_samples", 10**9, "eval.num_samples must be in [1, 1000000]"),
])
def test_sizes_have_upper_bounds_checked_before_the_run(section, key, value, message):
    with pytest.raises(ConfigError) as info:
        config_from_dict({"data": {"name": "rings"}, section: {key: value}})
    assert message in str(info.value)


def test_chain_states_larger_than_memory_are_refused_before_allocation(tmp_path):
    from anila.train.run import check_memory, run_training, state_bytes

    config = config_from_dict({"data": {"name": "rings"}, "chains": {"init": "replay", "buffer_size": 10**12}})
    assert state_bytes(config) > 8 * 10**12
    with pytest.raises(ConfigError, match="the chain states alone need .* GiB, more than this machine's"):
        check_memory(config)
    with pytest.raises(ConfigError, match="chain states alone"):
        run_training(config, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_sample_num_has_an_upper_bound(tmp_path, capsys):
    from anila.cli import main

    config = config_from_dict({"data": {"name": "rings"}, "model": {"width": 4, "depth": 1}})
    from anila.train.checkpoint import save_checkpoint

    energy = config.build_energy()
    path = save_checkpoint(tmp_path / "c.safetensors", {"model": energy.state_dict()},
                           {"iteration": 0, "config": config.to_dict()})
    assert main(["sample", str(path), "--num", str(10**9), "--out", str(tmp_path / "s.npy")]) == 2
    assert "--num must be in [1, 10000000], got 1000000000" in capsys.readouterr().err
    assert main(["sample", str(path), "--num", "0", "--out", str(tmp_path / "s.npy")]) == 2
    assert not (tmp_path / "s.npy").exists()
