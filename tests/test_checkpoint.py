"""Checkpoints: safetensors + JSON, written atomically, corrupt or foreign files refused with a clear error."""

import hashlib
import json
import pickle

import pytest
import torch

from anila.errors import DataError
from anila.train.checkpoint import (
    list_checkpoints,
    load_checkpoint,
    load_latest_checkpoint,
    prune_checkpoints,
    resolve_checkpoint,
    save_checkpoint,
    sidecar_hash,
)


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
    with pytest.raises(DataError, match="truncated or corrupt"):
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


def test_checksum_catches_a_same_size_alteration_and_the_folder_falls_back(tmp_path):
    folder = tmp_path / "checkpoints"
    for it in (1, 2):
        save_checkpoint(folder / f"iter_{it:07d}.safetensors", {"model": {"w": torch.full((64,), float(it))}},
                        {"iteration": it})
    newest = folder / "iter_0000002.safetensors"
    data = bytearray(newest.read_bytes())
    data[-1] ^= 0xFF  # one flipped bit in a tensor value: still parses, only the checksum sees it
    newest.write_bytes(bytes(data))
    with pytest.raises(DataError, match="SHA-256"):
        load_checkpoint(newest)
    messages = []
    groups, meta, path = load_latest_checkpoint(tmp_path, report=messages.append)
    assert meta["iteration"] == 1 and path.name == "iter_0000001.safetensors"
    assert len(messages) == 1 and "iter_0000002" in messages[0] and "using the previous one" in messages[0]
    (folder / "iter_0000001.safetensors").write_bytes(b"")
    with pytest.raises(DataError, match="no readable checkpoint"):
        load_latest_checkpoint(tmp_path, report=messages.append)


def test_a_crafted_pickle_in_a_run_folder_is_skipped_never_executed(tmp_path):
    class Boom:
        def __reduce__(self):
            return (exec, ("raise SystemExit('pickle was executed')",))

    folder = tmp_path / "checkpoints"
    save_checkpoint(folder / "iter_0000001.safetensors", {"model": {"w": torch.ones(2)}}, {"iteration": 1})
    evil = folder / "iter_0000002.safetensors"
    evil.write_bytes(pickle.dumps(Boom()))
    sidecar = {"format": "anila-checkpoint", "format_version": 3,
               "sha256": hashlib.sha256(evil.read_bytes()).hexdigest()}
    sidecar["sidecar_sha256"] = sidecar_hash(sidecar)  # valid hashes: the bytes reach the parser, which refuses them
    evil.with_suffix(".json").write_text(json.dumps(sidecar))
    messages = []
    _, meta, _ = load_latest_checkpoint(tmp_path, report=messages.append)
    assert meta["iteration"] == 1 and "unreadable or corrupt" in messages[0]


def test_prune_keeps_the_newest_k(tmp_path):
    for it in range(5):
        save_checkpoint(tmp_path / f"iter_{it:07d}.safetensors", {"model": {"w": torch.ones(1)}}, {})
    removed = prune_checkpoints(tmp_path, 2)
    assert [p.name for p in removed] == [f"iter_{it:07d}.safetensors" for it in range(3)]
    assert [p.name for p in list_checkpoints(tmp_path)] == ["iter_0000003.safetensors", "iter_0000004.safetensors"]
    assert len(list(tmp_path.glob("*.json"))) == 2
    assert prune_checkpoints(tmp_path, 0) == []  # 0 keeps all
