"""Nothing is lost on a re-run: a non-empty run folder is refused (``--overwrite`` clears it safely), a run folder
is locked, output files are written atomically, SIGINT / SIGTERM leave a checkpoint of the current iteration
and the exact resume command, and ``anila train --resume RUN_DIR`` needs no config."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from anila.cli import main
from anila.config import load_config
from anila.errors import RunFolderBusy
from anila.train.checkpoint import list_checkpoints, load_checkpoint
from anila.train.lock import RunLock
from anila.train.run import run_training

REPO = Path(__file__).resolve().parents[1]
TINY = """
[data]
name = "rings"
[model]
width = 8
depth = 1
[sampler]
name = "anila"
step_size = 0.05
threshold = 1.0
[chains]
init = "replay"
scale = 2.0
buffer_size = 32
[train]
iterations = {iterations}
batch_size = 16
num_steps = 2
log_every = 1
checkpoint_every = {every}
[eval]
grid_resolution = 8
num_samples = 16
"""
ENV = {**os.environ, "PYTHONPATH": str(REPO / "src")}


def write_config(tmp_path: Path, iterations: int = 3, every: int = 0) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY.format(iterations=iterations, every=every))
    return path


def assert_same_checkpoint(a: Path, b: Path) -> None:
    (groups_a, meta_a), (groups_b, meta_b) = load_checkpoint(a), load_checkpoint(b)
    assert meta_a["iteration"] == meta_b["iteration"] and groups_a.keys() == groups_b.keys()
    for group in groups_a:
        for name in groups_a[group]:
            assert torch.equal(groups_a[group][name], groups_b[group][name]), f"{group}.{name} differs"


def test_a_second_run_into_the_same_folder_is_refused_and_overwrite_replaces_it(tmp_path, capsys):
    config, run = write_config(tmp_path), tmp_path / "run"
    assert main(["train", str(config), "--out", str(run), "--quiet"]) == 0
    metrics = (run / "metrics.jsonl").read_bytes()
    checkpoints = [p.name for p in list_checkpoints(run / "checkpoints")]

    capsys.readouterr()
    assert main(["train", str(config), "--out", str(run), "--quiet"]) == 2
    line = capsys.readouterr().err
    assert line.count("\n") == 1 and line.startswith(f"anila: error: run folder {run} is not empty")
    assert f"--resume {run}" in line and "--overwrite" in line
    assert (run / "metrics.jsonl").read_bytes() == metrics  # the first run is untouched
    assert [p.name for p in list_checkpoints(run / "checkpoints")] == checkpoints

    capsys.readouterr()
    assert main(["train", str(config), "--out", str(run), "--quiet", "--overwrite", "--set",
                 "train.iterations=2"]) == 0
    assert [p.name for p in list_checkpoints(run / "checkpoints")] == ["iter_0000000.safetensors",
                                                                       "iter_0000002.safetensors"]
    assert [json.loads(r)["iteration"] for r in (run / "metrics.jsonl").read_text().splitlines()] == [1, 2]
    assert not (run / ".lock").exists()  # released at the end


def test_overwrite_never_deletes_files_a_run_does_not_write(tmp_path, capsys):
    config, run = write_config(tmp_path, iterations=1), tmp_path / "run"
    assert main(["train", str(config), "--out", str(run), "--quiet"]) == 0
    (run / "my_notes.txt").write_text("keep me")
    capsys.readouterr()
    assert main(["train", str(config), "--out", str(run), "--quiet", "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert "my_notes.txt" in err and "nothing was deleted" in err
    assert (run / "my_notes.txt").read_text() == "keep me" and (run / "config.toml").is_file()
    assert main(["train", str(config), "--out", str(tmp_path), "--quiet", "--overwrite"]) == 2  # the config is here
    assert (tmp_path / "tiny.toml").is_file()


def test_two_trainings_into_one_folder_at_once_one_is_refused(tmp_path, capsys):
    config, run = write_config(tmp_path, iterations=100000), tmp_path / "run"
    first = subprocess.Popen([sys.executable, "-m", "anila", "train", str(config), "--out", str(run), "--quiet"],
                             env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_iteration(run, 1, first)
        for args in (["train", str(config), "--out", str(run), "--overwrite"], ["train", "--resume", str(run)]):
            assert main([*args, "--quiet"]) == 2
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and f"run folder {run} is in use by process {first.pid}" in err
        with pytest.raises(RunFolderBusy, match=f"in use by process {first.pid}"):
            RunLock(run).acquire()
    finally:
        first.kill()
        first.communicate()
    # the killed run left its lock file: stale, reported, taken over
    assert json.loads((run / ".lock").read_text())["pid"] == first.pid
    assert main(["train", "--resume", str(run), "--quiet", "--set", "train.iterations=2"]) == 0
    assert f"stale lock in {run}: process {first.pid} died" in capsys.readouterr().err
    assert not (run / ".lock").exists()


def test_the_lock_is_exclusive_within_one_process_too(tmp_path):
    with RunLock(tmp_path) as held:
        with pytest.raises(RunFolderBusy, match=f"in use by process {os.getpid()}"):
            RunLock(tmp_path).acquire()
        assert json.loads(held.path.read_text())["pid"] == os.getpid()
    with RunLock(tmp_path):  # released: it can be taken again
        pass


def wait_for_iteration(run: Path, iteration: int, proc) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and proc.poll() is None:
        lines = (run / "metrics.jsonl").read_text().splitlines() if (run / "metrics.jsonl").is_file() else []
        if len(lines) >= iteration:
            return
        time.sleep(0.02)
    raise AssertionError(f"the run did not reach iteration {iteration}: {proc.poll()}")


def interrupt(args, run: Path, sig: int, after: int) -> tuple[int, str]:
    proc = subprocess.Popen([sys.executable, "-m", "anila", "train", *args, "--quiet"], env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_for_iteration(run, after, proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err


def test_sigint_and_sigterm_checkpoint_the_current_iteration_and_resume_needs_no_config(tmp_path):
    # checkpoint_every far beyond the run: before this fix the resume restarted from iteration 0
    config, run = write_config(tmp_path, iterations=100000, every=1000), tmp_path / "run"
    code, err = interrupt([str(config), "--out", str(run)], run, signal.SIGINT, after=3)
    assert code == 130 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    stopped = int(err.split("at iteration ")[1].split(" ")[0])
    assert stopped >= 3 and err.startswith("anila: SIGINT: stopped at iteration")
    assert err.strip().endswith(f"resume with: anila train --resume {run}")
    assert list_checkpoints(run / "checkpoints")[-1].name == f"iter_{stopped:07d}.safetensors"

    code, err = interrupt(["--resume", str(run)], run, signal.SIGTERM, after=stopped + 2)  # no config, no --set
    assert code == 143 and len(err.strip().splitlines()) == 1 and "anila: SIGTERM: stopped at iteration" in err, err
    again = int(err.split("at iteration ")[1].split(" ")[0])
    assert again > stopped and list_checkpoints(run / "checkpoints")[-1].name == f"iter_{again:07d}.safetensors"
    events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    assert [(e["event"], e["iteration"]) for e in events] == [("interrupted", stopped), ("resumed", stopped),
                                                             ("interrupted", again)]

    end = again + 2
    run_training(load_config(run / "config.toml", [f"train.iterations={end}"]), run, progress=False, resume=True)
    reference = tmp_path / "reference"
    run_training(load_config(config, [f"train.iterations={end}"]), reference, progress=False)
    name = f"iter_{end:07d}.safetensors"
    assert_same_checkpoint(reference / "checkpoints" / name, run / "checkpoints" / name)


def test_resume_from_the_initial_checkpoint_says_so(tmp_path, capsys):
    config, run = write_config(tmp_path, iterations=4, every=2), tmp_path / "run"
    assert main(["train", str(config), "--out", str(run), "--quiet"]) == 0
    for path in list_checkpoints(run / "checkpoints")[1:]:  # as if killed before the first periodic checkpoint
        path.with_suffix(".json").unlink()
        path.unlink()
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--quiet"]) == 0
    assert f"resuming {run} from iteration 0: its only checkpoint is the initial one" in capsys.readouterr().err


def test_train_without_config_or_resume_and_resume_without_config_toml(tmp_path, capsys):
    assert main(["train"]) == 2
    assert "train needs a config file" in capsys.readouterr().err
    (tmp_path / "run").mkdir()
    assert main(["train", "--resume", str(tmp_path / "run")]) == 2
    assert "config.toml is missing" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path / "run"), "--overwrite", str(write_config(tmp_path))]) == 2
    assert "pass one of them" in capsys.readouterr().err


def test_sample_writes_atomically_and_a_failure_keeps_the_previous_file(tmp_path, monkeypatch, capsys):
    import anila.train.trained as run_module

    config, run = write_config(tmp_path, iterations=1), tmp_path / "run"
    assert main(["train", str(config), "--out", str(run), "--quiet"]) == 0
    npy = tmp_path / "samples.npy"
    assert main(["sample", str(run), "--num", "25", "--out", str(npy)]) == 0
    good = np.load(npy, allow_pickle=False)
    assert good.shape == (25, 2) and good.dtype == np.float32

    def failing(*args, **kwargs):  # the disk fills after the first batch
        yield torch.zeros(1, 2)
        raise OSError(28, "No space left on device", str(npy))

    monkeypatch.setattr(run_module, "iter_samples", failing)
    capsys.readouterr()
    assert main(["sample", str(run), "--num", "25", "--out", str(npy)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"anila: error: {npy}: No space left on device (free some space)"
    assert np.array_equal(np.load(npy, allow_pickle=False), good)  # the previous samples are intact
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left


def test_sample_writes_batch_by_batch(tmp_path, monkeypatch, capsys):
    import anila.train.trained as run_module
    from anila.io import NpyWriter

    config, run = write_config(tmp_path, iterations=1), tmp_path / "run"
    assert main(["train", str(config), "--out", str(run), "--quiet"]) == 0
    sizes, write = [], NpyWriter.write
    monkeypatch.setattr(NpyWriter, "write", lambda self, batch: (sizes.append(len(batch)), write(self, batch)))
    monkeypatch.setattr(run_module, "SAMPLE_BATCH_VALUES", 6)  # batches of 3 two-dimensional points
    assert main(["sample", str(run), "--num", "7", "--out", str(tmp_path / "s.npy")]) == 0
    assert sizes == [3, 3, 1]
    samples = np.load(tmp_path / "s.npy", allow_pickle=False)
    assert samples.shape == (7, 2) and np.isfinite(samples).all()
