"""The application subcommands end to end on tiny trained models: ``anila compose``, ``anila eval`` (and bad
input: exit 2, one line, no traceback)."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from anila.cli import main

TINY_TOY = """
[data]
name = "{name}"
[model]
width = 8
depth = 1
[sampler]
name = "langevin"
step_size = 0.05
[chains]
init = "noise"
scale = 2.0
[train]
iterations = 4
batch_size = 16
num_steps = 3
log_every = 2
checkpoint_every = 4
[eval]
grid_resolution = 64
num_samples = 16
"""


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models: threads only add contention on a loaded CI machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "anila", *args], capture_output=True, text=True, timeout=120)


def train_tiny(tmp_path, name, *extra):
    config = tmp_path / f"{name}.toml"
    config.write_text(TINY_TOY.format(name=name))
    out = tmp_path / f"run_{name}"
    assert main(["train", str(config), "--out", str(out), "--quiet", *extra]) == 0
    return out


@pytest.fixture(scope="module")
def toy_runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("toys")
    return train_tiny(tmp, "rings"), train_tiny(tmp, "8gaussians")


@pytest.mark.parametrize("op", ["and", "or", "not"])
def test_compose_writes_samples_grid_and_record(toy_runs, tmp_path, op):
    a, b = toy_runs
    out = tmp_path / op
    assert main(["compose", str(a), str(b), "--op", op, "--num", "12", "--steps", "5", "--sampler", "mala",
                 "--set", "sampler.step_size=0.01", "--out", str(out)]) == 0
    samples = np.load(out / "samples.npy", allow_pickle=False)
    assert samples.shape == (12, 2) and np.isfinite(samples).all()
    assert (out / "samples.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    record = json.loads((out / "compose.json").read_text())
    assert record["operation"] == op and record["sampler"] == {"name": "mala", "step_size": 0.01,
                                                               "noise_scale": 1.0}
    assert record["nonfinite_samples"] == 0


def test_compose_bad_input_exits_2_with_one_line(toy_runs, tmp_path, capsys):
    a, b = toy_runs
    cases = [
        (["compose", str(a), str(b), str(a), "--op", "not"], "'not' composes exactly two energies"),
        (["compose", str(a), str(b), "--op", "and", "--sampler", "gibbs"], "sampler.name: must be one of"),
        (["compose", str(a), str(b), "--op", "and", "--set", "train.lr=1"], "only sampler.KEY=VALUE"),
        (["compose", str(a), str(tmp_path / "missing"), "--op", "or"], "checkpoint not found"),
    ]
    for args, message in cases:
        assert main([*args, "--out", str(tmp_path / "bad")]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
    result = run_cli(*cases[0][0], "--out", str(tmp_path / "bad"))  # the real process: exit 2, no traceback
    assert result.returncode == 2 and result.stderr.startswith("anila: error: ") and "Traceback" not in result.stderr


def test_eval_loglik_agrees_with_the_grid_quadrature(toy_runs, tmp_path, capsys):
    out = tmp_path / "eval.json"
    assert main(["eval", str(toy_runs[0]), "--metrics", "loglik", "--num", "500", "--ais-chains", "128",
                 "--ais-temperatures", "100", "--quiet", "--out", str(out)]) == 0
    assert "loglik = " in capsys.readouterr().out
    result = json.loads(out.read_text())
    assert result["num_test"] == 500 * (1 - result["outside_fraction"]) and result["ais_ess"] > 20
    # two estimates of the same log Z of the (smooth, barely trained) model: AIS and a 64x64 midpoint grid
    assert abs(result["log_z"] - result["log_z_grid"]) < 5 * result["log_z_stderr"] + 0.02, result
    assert result["loglik"] < result["loglik_true"]  # 4 iterations of training: far from the data density


def test_eval_bad_input_exits_2(toy_runs, tmp_path, capsys):
    for args, message in [(["--metrics", "loglik,bleu"], "--metrics: unknown metric bleu"),
                          (["--num", "1"], "--num must be >= 2"),
                          (["--out", str(tmp_path / "x.txt")], "--out must name a .json file")]:
        assert main(["eval", str(toy_runs[0]), *args]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
