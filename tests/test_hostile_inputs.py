"""Hostile inputs and faults that used to give a traceback or a silent wrong result: each is now one line and a
non-zero exit (or a clear ``ValueError`` from Python); the guard counts consecutive failures; files get the
process umask."""

import errno
import json
import os
from pathlib import Path

import pytest
import torch

from anila.chains import ChainInit
from anila.cli import main
from anila.energies import MLPEnergy
from anila.energies.conv import ConvNetEnergy
from anila.errors import TrainingDiverged
from anila.io import atomic_write_bytes
from anila.samplers import AniLA
from anila.train import TrainSettings, make_train_state
from anila.train.guard import GuardSettings, GuardState, guarded_train
from anila.train.resume import capture, restore

TINY = """
[data]
name = "rings"
[model]
width = 8
depth = 1
[train]
iterations = 4
batch_size = 8
num_steps = 1
log_every = 1
checkpoint_every = 2
[eval]
grid_resolution = 8
num_samples = 8
"""


@pytest.fixture
def config(tmp_path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    return path


def one_line(capsys, code, *args) -> str:
    capsys.readouterr()
    assert main(list(args)) == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("anila: error: ") and "Traceback" not in err, err
    return err.strip()


def test_an_output_path_that_is_a_file_is_one_line(config, tmp_path, capsys):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file")
    err = one_line(capsys, 2, "train", str(config), "--out", str(blocker), "--quiet")
    assert str(blocker) in err and "File exists" in err
    err = one_line(capsys, 2, "train", str(config), "--out", str(blocker / "run"), "--quiet")
    assert str(blocker / "run") in err and "Not a directory" in err
    assert main(["train", str(config), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    err = one_line(capsys, 2, "sample", str(tmp_path / "run"), "--num", "2", "--out", str(blocker / "s.npy"))
    assert "File exists" in err and str(blocker) in err


def test_a_disk_that_fills_during_a_run_exits_1_naming_the_last_good_checkpoint(config, tmp_path, capsys,
                                                                                 monkeypatch):
    import anila.train.run as run_module

    save = run_module.save_checkpoint

    def full_disk(path, groups, meta):
        if meta["iteration"] >= 4:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return save(path, groups, meta)

    monkeypatch.setattr(run_module, "save_checkpoint", full_disk)
    run = tmp_path / "run"
    err = one_line(capsys, 1, "train", str(config), "--out", str(run), "--quiet")
    assert f"cannot write {run}/checkpoints/iter_0000004.safetensors at iteration 4 (No space left on device)" in err
    assert f"the last good checkpoint is {run}/checkpoints/iter_0000002.safetensors" in err
    assert err.endswith(f"resume with: anila train --resume {run}")


@pytest.mark.parametrize("override,message", [
    ("sampler.step_size=1e308", "sampler.step_size: 1e+308 overflows float32"),
    ("sampler.threshold=1e308", "sampler.threshold: 1e+308 overflows float32"),
    ("train.lr=1e308", "train.lr: 1e+308 overflows float32"),
    ("sampler.step_size=true", "sampler.step_size: expected float, got True"),
    ("train.batch_size=true", "train.batch_size: expected int, got True"),
])
def test_numbers_that_overflow_float32_and_booleans_are_refused(config, capsys, override, message):
    assert message in one_line(capsys, 2, "train", str(config), "--set", override, "--quiet")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a machine without CUDA")
def test_a_cuda_device_without_cuda_is_one_line(config, tmp_path, capsys):
    err = one_line(capsys, 2, "train", str(config), "--set", "train.device=cuda", "--out", str(tmp_path / "r"))
    assert "train.device = 'cuda': " in err and 'use "cpu" or "auto"' in err


def test_a_config_that_is_a_folder_or_empty_is_refused(tmp_path, capsys):
    assert "is a folder; pass a TOML file" in one_line(capsys, 2, "train", str(tmp_path), "--quiet")
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    err = one_line(capsys, 2, "train", str(empty), "--out", str(tmp_path / "run"), "--quiet")
    assert "has no [data] section" in err and not (tmp_path / "run").exists()
    assert main(["train", str(empty), "--set", 'data.name="rings"', "--set", "train.iterations=1", "--set",
                 "train.num_steps=1", "--set", "eval.grid_resolution=8", "--out", str(tmp_path / "run"),
                 "--quiet"]) == 0  # naming the data with --set is enough


def test_an_infinite_ais_step_size_is_one_line(config, tmp_path, capsys):
    assert main(["train", str(config), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    err = one_line(capsys, 2, "eval", str(tmp_path / "run"), "--ais-step-size", "inf", "--quiet")
    assert "--ais-step-size must be a finite number > 0, got inf" in err


@pytest.mark.parametrize("dtype", [torch.int64, torch.float64])
def test_a_state_of_another_dtype_is_a_clear_value_error(dtype):
    conv = ConvNetEnergy(in_channels=1, n_f=2, image_size=8)
    for energy, shape in ((MLPEnergy(dim=2, width=4, depth=1), (3, 2)), (conv, (3, 1, 8, 8))):
        with pytest.raises(ValueError, match=f"has torch.float32 weights but got a {dtype} input; cast the input"):
            energy(torch.zeros(shape, dtype=dtype))
    assert MLPEnergy(dim=2, width=4, depth=1).double()(torch.zeros(3, 2, dtype=torch.float64)).dtype == torch.float64


def spiky_run(reset_after: int, spikes=(3, 8)):
    """6 + 4 iterations with a NaN batch once at each of ``spikes``; a checkpoint after every iteration."""
    torch.manual_seed(0)
    energy = MLPEnergy(dim=2, width=8, depth=1)
    settings = TrainSettings(iterations=10, batch_size=8, num_steps=1, lr=1e-3, log_every=1, checkpoint_every=1)
    state = make_train_state(energy, settings, ChainInit(), (2,))
    saved = {"last": capture(state)}
    left = set(spikes)

    def data(n, g):
        x = torch.randn(n, 2, generator=g)
        if state.iteration + 1 in left:
            left.discard(state.iteration + 1)
            x[0, 0] = float("nan")
        return x

    events = []
    guard = GuardState(AniLA(step_size=0.04, threshold=1.0))
    guarded_train(state, guard, ChainInit(), data, settings, GuardSettings(max_retries=1, reset_after=reset_after),
                  rollback=lambda s: restore(s, *saved["last"]), on_event=events.append,
                  on_checkpoint=lambda s: saved.update(last=capture(s)), progress=False)
    return state, guard, events


def test_guard_retries_count_consecutive_failures_and_reset_after_good_iterations():
    state, guard, events = spiky_run(reset_after=3)  # spikes 5 good iterations apart: each is a first retry
    assert state.iteration == 10 and [e["event"] for e in events] == ["step_rejected", "retries_reset",
                                                                      "step_rejected"]
    assert events[1]["good_iterations"] == 5 and guard.retries == 1
    with pytest.raises(TrainingDiverged, match="stopped after 1 retries in a row"):
        spiky_run(reset_after=0)  # 0: counted over the whole run, as before: the second spike stops it
    with pytest.raises(TrainingDiverged):
        spiky_run(reset_after=6)  # the stretch between the spikes is too short


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_files_get_the_process_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        atomic_write_bytes(tmp_path / "a.bin", b"x")
        from anila.train.checkpoint import save_checkpoint

        path = save_checkpoint(tmp_path / "c.safetensors", {"model": {"w": torch.ones(1)}}, {})
    finally:
        os.umask(old)
    for file in (tmp_path / "a.bin", path, path.with_suffix(".json")):
        assert file.stat().st_mode & 0o777 == mode, (file, oct(file.stat().st_mode))


def test_a_run_folders_files_get_the_umask(config, tmp_path):
    old = os.umask(0o022)
    try:
        assert main(["train", str(config), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    finally:
        os.umask(old)
    files = [p for p in (tmp_path / "run").rglob("*") if p.is_file()]
    assert files and {p.stat().st_mode & 0o777 for p in files} == {0o644}
    assert json.loads((tmp_path / "run" / "summary.json").read_text())
