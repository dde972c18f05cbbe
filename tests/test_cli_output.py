"""What the command line writes besides the run folder's tensors: progress redirected to a file (plain periodic
lines with the loss, the energy gap and the acceptance or clip fraction), ``summary.json`` that names what it
measures, and ``anila sample --figure``."""

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from anila.train.figures import plot_drawn_samples
from anila.train.progress import training_progress
from anila.train.summary import better, summary_record

PNG = b"\x89PNG\r\n\x1a\n"
TINY = """
[data]
name = "rings"
[model]
width = 8
depth = 1
[sampler]
name = "{sampler}"
step_size = 0.05
[chains]
init = "noise"
scale = 2.0
[train]
iterations = 40
batch_size = 16
num_steps = 3
log_every = 10
checkpoint_every = 0
[eval]
grid_resolution = 16
num_samples = 32
"""


def run_cli(*args, stderr_file=None):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "anila", *args], stdout=subprocess.PIPE, text=True, timeout=180,
                          stderr=stderr_file if stderr_file is not None else subprocess.PIPE, env=env)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two tiny runs trained by ``anila train`` with stderr redirected to a file: AniLA and MALA."""
    root = tmp_path_factory.mktemp("runs")
    out = {}
    for sampler in ("anila", "mala"):
        config = root / f"{sampler}.toml"
        config.write_text(TINY.format(sampler=sampler))
        log = root / f"{sampler}.log"
        with log.open("w") as f:
            result = run_cli("train", str(config), "--out", str(root / sampler), stderr_file=f)
        assert result.returncode == 0, log.read_text()
        out[sampler] = (root / sampler, log.read_text())
    return out


@pytest.mark.parametrize("sampler,rate", [("anila", "clip_fraction="), ("mala", "accept_rate=")])
def test_progress_to_a_file_is_one_plain_line_per_log_step(runs, sampler, rate):
    _, log = runs[sampler]
    assert "\r" not in log  # no bar redraws
    lines = [line for line in log.splitlines() if line.startswith("train ")]
    assert len(lines) == 4 == len(log.strip().splitlines())  # 40 iterations, log_every = 10, nothing else
    assert [line.split()[1] for line in lines] == ["10/40", "20/40", "30/40", "40/40"]
    for line in lines:
        assert "loss=" in line and "energy_gap=" in line and rate in line


def test_progress_on_a_terminal_is_a_bar_with_the_metrics():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    stream = Terminal()
    progress = training_progress(10, stream=stream)
    progress.update(10)
    progress.show({"iteration": 10, "loss": 0.5, "energy_gap": 0.25, "accept_rate": 0.6})
    progress.close()
    text = stream.getvalue()
    assert "\r" in text and "10/10" in text and "loss=0.5" in text and "accept_rate=0.6" in text

    silent = Terminal()
    progress = training_progress(10, stream=silent, enabled=False)
    progress.update(10)
    progress.show({"loss": 0.5})
    progress.close()
    assert silent.getvalue() == ""


def test_summary_names_the_run_and_which_direction_is_better():
    record = summary_record({"kl_true_model": 0.25, "floor_mmd": 0.01, "energy_samples": -3.0, "new": 1.0},
                            run="r", data="rings", sampler="mala", objective="cd", iteration=40)
    assert (record["run"], record["sampler"], record["iteration"]) == ("r", "mala", 40)
    assert record["metrics"]["kl_true_model"] == 0.25
    assert record["better"] == {"kl_true_model": "lower", "floor_mmd": "neither", "energy_samples": "neither",
                                "new": "unknown"}
    assert better("sliced_w2") == "lower"


def test_sample_writes_a_figure_on_request(runs, tmp_path):
    run, _ = runs["anila"]
    npy, figure = tmp_path / "s.npy", tmp_path / "s.png"
    result = run_cli("sample", str(run), "--num", "200", "--out", str(npy), "--figure", str(figure))
    assert result.returncode == 0, result.stderr
    assert np.load(npy).shape == (200, 2)
    assert figure.read_bytes()[:8] == PNG and f"wrote {figure}" in result.stdout
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically: no temporary left behind

    result = run_cli("sample", str(run), "--num", "10", "--out", str(tmp_path / "t.npy"), "--figure", "t.txt")
    assert result.returncode == 2 and "--figure must end in .png" in result.stderr
    assert not (tmp_path / "t.npy").exists()  # refused before any sampling


@pytest.mark.parametrize("shape", [(50, 1), (50, 2), (50, 5), (6, 1, 8, 8)])
def test_the_sample_figure_suits_the_shape(shape, tmp_path):
    samples = torch.rand(shape) * 2 - 1
    path = plot_drawn_samples(samples, tmp_path / "f.png", "title", bound=2.0 if shape == (50, 2) else None)
    assert Path(path).read_bytes()[:8] == PNG


def test_summary_json_of_a_run(runs):
    run, _ = runs["mala"]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["run"] == "mala" and summary["sampler"] == "mala" and summary["data"] == "rings"
    assert summary["iteration"] == 40 and summary["objective"] == "cd"
    assert summary["metrics"]["kl_true_model"] > 0 and summary["better"]["kl_true_model"] == "lower"
    assert set(summary["better"]) == set(summary["metrics"])
