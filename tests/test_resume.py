"""Exact resume: a run killed with SIGKILL and resumed ends bit-identical to an uninterrupted one; a corrupt
newest checkpoint falls back to the previous good one; a mismatching config is refused, naming the keys."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from anila.cli import main
from anila.config import load_config
from anila.errors import ConfigError
from anila.train.checkpoint import list_checkpoints, load_checkpoint
from anila.train.run import run_training

REPO = Path(__file__).resolve().parents[1]
TOY = """
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
buffer_size = 64
[train]
iterations = {iterations}
batch_size = 16
num_steps = 3
log_every = 5
checkpoint_every = {every}
keep_checkpoints = 3
ema_decay = 0.9
[eval]
grid_resolution = 16
num_samples = 32
"""


def write_config(tmp_path: Path, iterations: int, every: int) -> Path:
    path = tmp_path / "toy.toml"
    path.write_text(TOY.format(iterations=iterations, every=every))
    return path


def assert_same_checkpoint(a: Path, b: Path) -> None:
    (groups_a, meta_a), (groups_b, meta_b) = load_checkpoint(a), load_checkpoint(b)
    assert meta_a["iteration"] == meta_b["iteration"]
    assert groups_a.keys() == groups_b.keys() and {"model", "optimizer", "ema", "buffer", "rng"} <= groups_a.keys()
    for group in groups_a:
        assert groups_a[group].keys() == groups_b[group].keys(), group
        for name in groups_a[group]:
            assert torch.equal(groups_a[group][name], groups_b[group][name]), f"{group}.{name} differs"
    assert meta_a["optimizer"] == meta_b["optimizer"] and meta_a["rng"] == meta_b["rng"]


def metrics_without_time(run: Path) -> list[dict]:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "wall_time"} for r in records]


def newest_iteration(run: Path) -> int:
    found = list_checkpoints(run / "checkpoints")
    return int(found[-1].stem.split("_")[1]) if found else -1


@pytest.mark.slow
def test_run_killed_with_sigkill_and_resumed_is_bit_identical(tmp_path):
    iterations = 80
    config = write_config(tmp_path, iterations, every=1)
    reference = tmp_path / "reference"
    run_training(load_config(config), reference, progress=False)

    run = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    rng = random.Random(0)
    kills = 0
    for attempt in range(3):
        args = ["--resume", str(run)] if attempt else ["--out", str(run)]
        proc = subprocess.Popen([sys.executable, "-m", "anila", "train", str(config), "--quiet", *args], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        target = newest_iteration(run) + rng.randint(2, 12)
        deadline = time.monotonic() + 60
        while newest_iteration(run) < target and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(rng.uniform(0.0, 0.02))  # land anywhere: mid-step, mid-write, mid-rename
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.communicate(timeout=120)
    run_training(load_config(config), run, progress=False, resume=True)  # the last resume, in this process
    assert kills == 3  # every kill landed before the end of training
    assert_same_checkpoint(reference / "checkpoints" / f"iter_{iterations:07d}.safetensors",
                           run / "checkpoints" / f"iter_{iterations:07d}.safetensors")
    assert metrics_without_time(run) == metrics_without_time(reference)
    assert len(list_checkpoints(run / "checkpoints")) == 3  # keep_checkpoints
    assert not list((run / "checkpoints").glob(".*"))  # no temporary file of a killed write left


def test_corrupt_newest_checkpoint_falls_back_to_the_previous_one(tmp_path, capsys):
    config = load_config(write_config(tmp_path, iterations=8, every=2))
    reference, run = tmp_path / "reference", tmp_path / "run"
    run_training(config, reference, progress=False)
    short = load_config(write_config(tmp_path, iterations=6, every=2))
    run_training(short, run, progress=False)
    newest = list_checkpoints(run / "checkpoints")[-1]
    assert newest.name == "iter_0000006.safetensors"
    newest.write_bytes(newest.read_bytes()[:-7])  # truncated on disk

    run_training(config, run, progress=False, resume=True)  # train.iterations may grow on resume
    err = capsys.readouterr().err
    assert "iter_0000006.safetensors is truncated or corrupt" in err and "iter_0000004.safetensors" in err
    events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    assert [e["event"] for e in events] == ["warning", "resumed"] and events[1]["iteration"] == 4
    assert (run / "checkpoints" / "iter_0000006.safetensors.corrupt").is_file()  # moved aside, never reused
    assert_same_checkpoint(reference / "checkpoints" / "iter_0000008.safetensors",
                           run / "checkpoints" / "iter_0000008.safetensors")
    assert metrics_without_time(run) == metrics_without_time(reference)


def test_resume_with_a_mismatching_config_names_every_differing_key(tmp_path, capsys):
    path = write_config(tmp_path, iterations=2, every=1)
    run = tmp_path / "run"
    assert main(["train", str(path), "--out", str(run), "--quiet"]) == 0
    capsys.readouterr()
    code = main(["train", str(path), "--resume", str(run), "--quiet", "--set", "train.lr=0.5",
                 "--set", "sampler.threshold=2.0", "--set", "train.iterations=3"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "train.lr" in err and "sampler.threshold" in err and "train.iterations" not in err
    with pytest.raises(ConfigError, match="chains.init"):
        run_training(load_config(path, ["chains.init=noise"]), run, progress=False, resume=True)


def test_resume_of_a_missing_folder_or_with_another_out_is_refused(tmp_path, capsys):
    path = write_config(tmp_path, iterations=2, every=1)
    assert main(["train", str(path), "--resume", str(tmp_path / "nowhere"), "--quiet"]) == 2
    assert "no such run folder" in capsys.readouterr().err
    assert main(["train", str(path), "--resume", str(tmp_path), "--out", str(tmp_path / "x"), "--quiet"]) == 2
    assert "drop --out" in capsys.readouterr().err


def test_no_module_loads_pickle_or_calls_torch_load():
    # data/images.py reads CIFAR-10's python batches with a restricted unpickler (numpy arrays only; its tests
    # check that a crafted batch is refused); nothing else may unpickle.
    for source in (REPO / "src" / "anila").rglob("*.py"):
        if source.relative_to(REPO).as_posix() == "src/anila/data/images.py":
            continue
        text = source.read_text()
        for forbidden in ("torch.load(", "pickle.load", "import pickle", "np.load("):
            if forbidden == "np.load(" and "allow_pickle=False" in text:
                continue
            assert forbidden not in text, f"{source.relative_to(REPO)} uses {forbidden}"
