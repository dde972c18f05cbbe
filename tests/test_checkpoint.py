"""Checkpoints: safetensors + JSON, written atomically, corrupt or foreign files refused with a clear error."""

import json
import pickle

import pytest
import torch

from anila.errors import DataError
from anila.train.checkpoint import load_checkpoint, resolve_checkpoint, save_checkpoint


def test_round_trip_and_run_folder_resolution(tmp_path):
    tensors = {"model": {"w": torch.randn(3, 2), "b": torch.zeros(2)}, "buffer": {"chains": torch.ones(4, 2)}}
    for it in (10, 20):
        save_checkpoint(tmp_path / "checkpoints" / f"iter_{it:07d}.safetensors", tensors, {"iteration": it})
    groups, meta = load_checkpoint(tmp_path)
    assert meta["iteration"] == 20 and meta["format"] == "anila-checkpoint"
    assert torch.equal(groups["model"]["w"], tensors["model"]["w"])
    assert torch.equal(groups["buffer"]["chains"], tensors["buffer"]["chains"])
    assert not list((tmp_path / "checkpoints").glob(".*"))  # no temporary files left behind


def test_corrupt_tensor_file_is_refused(tmp_path):
    path = save_checkpoint(tmp_path / "c.safetensors", {"model": {"w": torch.randn(100)}}, {})
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(DataError, match="unreadable or corrupt"):
        load_checkpoint(path)


def test_pickle_file_is_never_loaded(tmp_path):
    class Boom:
        def __reduce__(self):
            return (exec, ("raise SystemExit('pickle was executed')",))

    path = tmp_path / "evil.safetensors"
    path.write_bytes(pickle.dumps(Boom()))
    path.with_suffix(".json").write_text(json.dumps({"format": "anila-checkpoint"}))
    with pytest.raises(DataError):
        load_checkpoint(path)


def test_missing_or_foreign_sidecar(tmp_path):
    path = save_checkpoint(tmp_path / "c.safetensors", {"model": {"w": torch.randn(2)}}, {})
    path.with_suffix(".json").write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        load_checkpoint(path)
    path.with_suffix(".json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(DataError, match="not an anila checkpoint"):
        load_checkpoint(path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no checkpoint"):
        resolve_checkpoint(tmp_path / "empty")
