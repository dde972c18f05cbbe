"""Checkpoint integrity: a sidecar without its hashes, an edited sidecar, and a sidecar that does not fit its
tensors are one-line errors, never a silent load, a ``KeyError`` or a ``size mismatch`` traceback."""

import json
from pathlib import Path

import pytest
import torch

from anila.cli import main
from anila.config import config_from_dict
from anila.errors import DataError
from anila.train.checkpoint import load_checkpoint, save_checkpoint, sidecar_hash
from anila.train.trained import load_trained_energy

TINY = {"data": {"name": "rings"}, "model": {"width": 8, "depth": 1},
        "train": {"iterations": 1, "batch_size": 8, "num_steps": 1}}


@pytest.fixture
def checkpoint(tmp_path) -> Path:
    config = config_from_dict(TINY)
    energy = config.build_energy()
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, {"model": energy.state_dict()}, {"iteration": 1, "config": config.to_dict()})
    return path


def edit_sidecar(path: Path, change, *, rehash: bool) -> None:
    sidecar = path.with_suffix(".json")
    meta = json.loads(sidecar.read_text())
    change(meta)
    if rehash:
        meta["sidecar_sha256"] = sidecar_hash(meta)
    sidecar.write_text(json.dumps(meta))


def sample_error(path: Path, tmp_path: Path, capsys) -> str:
    capsys.readouterr()
    assert main(["sample", str(path), "--num", "2", "--out", str(tmp_path / "s.npy")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("anila: error: "), err
    assert not (tmp_path / "s.npy").exists()
    return err


def test_a_good_checkpoint_loads_and_carries_both_hashes(checkpoint, tmp_path, capsys):
    meta = json.loads(checkpoint.with_suffix(".json").read_text())
    assert meta["format_version"] == 3 and len(meta["sha256"]) == len(meta["sidecar_sha256"]) == 64
    assert main(["sample", str(checkpoint), "--num", "2", "--out", str(tmp_path / "s.npy")]) == 0


@pytest.mark.parametrize("key", ["sha256", "sidecar_sha256"])
def test_a_missing_hash_is_an_error(checkpoint, tmp_path, capsys, key):
    edit_sidecar(checkpoint, lambda meta: meta.pop(key), rehash=False)
    assert f"has no {key}: the checkpoint cannot be verified" in sample_error(checkpoint, tmp_path, capsys)


def test_nan_weights_behind_a_removed_hash_are_refused(checkpoint, tmp_path, capsys):
    groups, meta = load_checkpoint(checkpoint)
    nan = {name: torch.full_like(t, float("nan")) for name, t in groups["model"].items()}
    from safetensors.torch import save_file

    save_file({f"model.{k}": v for k, v in nan.items()}, str(checkpoint))
    edit_sidecar(checkpoint, lambda meta: meta.pop("sha256"), rehash=True)  # before: the checksum was off
    assert "has no sha256" in sample_error(checkpoint, tmp_path, capsys)


@pytest.mark.parametrize("change", [
    lambda meta: meta["config"]["sampler"].update(step_size=0.5),
    lambda meta: meta.update(iteration=99),
    lambda meta: meta["config"]["model"].update(width=16),
], ids=["sampler", "iteration", "width"])
def test_an_edited_sidecar_is_detected(checkpoint, tmp_path, capsys, change):
    edit_sidecar(checkpoint, change, rehash=False)
    assert "was altered (its SHA-256 does not match its content" in sample_error(checkpoint, tmp_path, capsys)


def test_a_sidecar_that_does_not_fit_its_tensors_is_one_line(checkpoint, tmp_path, capsys):
    edit_sidecar(checkpoint, lambda meta: meta["config"]["model"].update(width=16), rehash=True)
    err = sample_error(checkpoint, tmp_path, capsys)
    assert "its weights do not fit the model of its config (size mismatch for" in err
    edit_sidecar(checkpoint, lambda meta: meta.pop("config"), rehash=True)
    assert "has no config in its sidecar" in sample_error(checkpoint, tmp_path, capsys)
    edit_sidecar(checkpoint, lambda meta: meta.update(config={"data": {"name": "nowhere"}}), rehash=True)
    assert "its config is invalid (data.name must be one of" in sample_error(checkpoint, tmp_path, capsys)


def test_format_2_sidecars_still_load_with_their_tensor_hash(checkpoint):
    edit_sidecar(checkpoint, lambda meta: (meta.pop("sidecar_sha256"), meta.update(format_version=2)), rehash=False)
    config, energy = load_trained_energy(checkpoint)
    assert config.model["width"] == 8
    edit_sidecar(checkpoint, lambda meta: meta.update(format_version=1), rehash=False)
    with pytest.raises(DataError, match="format version 1 is not supported"):
        load_checkpoint(checkpoint)
