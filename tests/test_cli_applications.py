"""The application subcommands end to end on tiny trained models: ``anila compose``, ``anila eval``, ``anila ood``
(and bad input: exit 2, one line, no traceback)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from anila.cli import main

REPO = Path(__file__).resolve().parents[1]

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

pytestmark = pytest.mark.usefixtures("one_thread")


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


def test_compose_or_normalised_by_ais(toy_runs, tmp_path):
    a, b = toy_runs
    out = tmp_path / "or_normalised"
    assert main(["compose", str(a), str(b), "--op", "or", "--normalise", "--num", "8", "--steps", "3",
                 "--out", str(out)]) == 0
    record = json.loads((out / "compose.json").read_text())
    assert len(record["log_partitions"]) == 2 and all(np.isfinite(record["log_partitions"]))
    assert all(0 < s < 0.5 for s in record["log_partition_stderrs"])


def test_compose_bad_input_exits_2_with_one_line(toy_runs, tmp_path, capsys):
    a, b = toy_runs
    cases = [
        (["compose", str(a), str(b), str(a), "--op", "not"], "'not' composes exactly two energies"),
        (["compose", str(a), str(b), "--op", "and", "--sampler", "gibbs"], "sampler.name: must be one of"),
        (["compose", str(a), str(b), "--op", "and", "--set", "train.lr=1"], "only sampler.KEY=VALUE"),
        (["compose", str(a), str(b), "--op", "and", "--normalise"], "--normalise applies to --op or only"),
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


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """A ConvNet trained for 40 iterations on the digits without the 9s (about 10 s on one core)."""
    out = tmp_path_factory.mktemp("digits") / "run"
    config = REPO / "configs" / "digits_langevin.toml"
    sets = ["model.n_f=8", "train.iterations=40", "train.batch_size=32", "train.num_steps=10", "train.lr=1e-4",
            "train.ema_decay=0", "train.checkpoint_every=0", "data.holdout_class=9", "train.seed=0"]
    assert main(["train", str(config), "--out", str(out), "--quiet", *[a for s in sets for a in ("--set", s)]]) == 0
    return out


def test_ood_digits_against_noise_and_the_held_out_class(digits_run, tmp_path, capsys):
    out = tmp_path / "ood.json"
    assert main(["ood", str(digits_run), "--out", "digits:class=9,uniform,gaussian:std=0.5", "--num", "300",
                 "--json", str(out)]) == 0
    assert "| uniform |" in capsys.readouterr().out
    record = json.loads(out.read_text())
    assert record["in"] == "digits:holdout=9"
    results = record["results"]
    # 40 iterations already put noise at high energy: AUROC 0.945-0.991 over training seeds 0..4
    assert results["uniform"]["auroc_energy"] > 0.9 and results["gaussian:std=0.5"]["auroc_energy"] > 0.9
    held_out = results["digits:class=9"]
    assert held_out["num_out"] == 180 and held_out["num_in"] == 300  # the digits hold 180 nines
    assert 0 <= held_out["auroc_energy"] <= 1 and 0 <= held_out["auroc_grad_norm"] <= 1


def test_ood_bad_data_sets_exit_2(digits_run, capsys):
    for spec, message in [("imagenet", "unknown data set 'imagenet'"), ("digits:colour=3", "bad option 'colour=3'"),
                          ("digits:class=12", "digits has no class 12"), ("rings", "the model takes (1, 8, 8)"),
                          ("uniform:low=2:high=1", "needs low < high")]:
        assert main(["ood", str(digits_run), "--out", spec, "--num", "10"]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err


def test_holdout_class_is_validated():
    from anila.config import config_from_dict
    from anila.errors import ConfigError

    with pytest.raises(ConfigError, match="data.holdout_class applies to digits, mnist, mnist5k, cifar10"):
        config_from_dict({"data": {"name": "rings", "holdout_class": 1}})


def test_eval_fid_kid_on_digits(digits_run, tmp_path, capsys):
    out = tmp_path / "eval.json"
    assert main(["eval", str(digits_run), "--metrics", "fid,kid", "--num", "200", "--quiet", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["num_samples"] == result["num_data"] == 200 and result["feature_dim"] == 64
    assert result["classifier_accuracy"] > 0.85
    assert result["fid"] > 0 and result["fid_data"] > 0 and result["kid_stderr"] > 0
    assert main(["eval", str(digits_run), "--metrics", "fid", "--num", "10"]) == 2
    assert "--num must be >= 20" in capsys.readouterr().err


def test_eval_steps_sets_the_fid_samples_chain_length(digits_run, tmp_path, capsys, monkeypatch):
    import anila.train.trained as trained

    seen = []
    draw = trained.draw_samples

    def recording_draw(energy, num, settings, **kwargs):
        seen.append(settings.num_steps)
        return draw(energy, num, settings, **kwargs)

    monkeypatch.setattr(trained, "draw_samples", recording_draw)
    assert main(["eval", str(digits_run), "--metrics", "fid", "--num", "20", "--steps", "3", "--quiet"]) == 0
    assert seen and set(seen) == {3}
    seen.clear()
    assert main(["eval", str(digits_run), "--metrics", "fid", "--num", "20", "--quiet"]) == 0
    assert set(seen) == {trained.load_trained_energy(digits_run)[0].train.num_steps}  # default: the training K
    assert main(["eval", str(digits_run), "--metrics", "fid", "--steps", "0"]) == 2
    assert "--steps must be >= 1" in capsys.readouterr().err


def test_eval_fid_refuses_toys(toy_runs, capsys):
    assert main(["eval", str(toy_runs[0]), "--metrics", "fid"]) == 2
    assert "fid and kid apply to image models" in capsys.readouterr().err


def test_low_temperature_sampler_is_gradient_descent_at_zero():
    from anila.commands.explore import low_temperature_sampler, snapshot_steps
    from anila.energies import Gaussian
    from anila.errors import DataError
    from anila.samplers import (
        HMC,
        MALA,
        AniLA,
        AniLAGamma,
        Identity,
        LowTemperature,
        MetropolisAniLA,
        ParallelTempering,
        sample_chains,
    )

    cold = low_temperature_sampler(MALA(step_size=0.2, noise_scale=1.0), 0.0)
    assert cold == LowTemperature(rule=Identity(), step_size=0.2, noise_scale=0.0)
    warm = low_temperature_sampler(MetropolisAniLA(step_size=0.2, threshold=0.5), 0.25)
    assert warm == LowTemperature(rule=AniLAGamma(threshold=0.5), step_size=0.2, noise_scale=0.5)
    # the same chain as unadjusted AniLA at that noise: the proposal without its correction
    x0 = torch.randn(20, 2, generator=torch.Generator().manual_seed(1))
    target0 = Gaussian.isotropic(2)
    torch.testing.assert_close(
        sample_chains(warm, target0, x0, 5, generator=torch.Generator().manual_seed(2)),
        sample_chains(AniLA(step_size=0.2, threshold=0.5, noise_scale=0.5), target0, x0, 5,
                      generator=torch.Generator().manual_seed(2)), atol=0, rtol=0)
    target = Gaussian(torch.tensor([1.0, -2.0]), torch.tensor([[1.0, 0.3], [0.3, 0.5]]))
    x = sample_chains(cold, target, 3 * torch.randn(50, 2, generator=torch.Generator().manual_seed(0)), 400)
    torch.testing.assert_close(x, target.mean.expand_as(x), atol=1e-4, rtol=0)  # every chain at the mode
    # other samplers: plain Langevin at their Langevin-equivalent step (HMC: ε²)
    assert low_temperature_sampler(HMC(step_size=0.3), 0.0) == LowTemperature(step_size=0.3**2, noise_scale=0.0)
    assert low_temperature_sampler(ParallelTempering(step_size=0.05), 1.0) == LowTemperature(step_size=0.05,
                                                                                           noise_scale=1.0)
    with pytest.raises(DataError, match="temperature"):
        low_temperature_sampler(MALA(), -1.0)
    assert snapshot_steps(1000, 5) == [0, 1, 10, 100, 1000]


@pytest.mark.parametrize("which", ["toy", "digits"])
def test_explore_writes_long_run_trace_and_low_temperature(which, toy_runs, digits_run, tmp_path, capsys):
    run = toy_runs[0] if which == "toy" else digits_run
    out = tmp_path / "explore"
    assert main(["explore", str(run), "--out", str(out), "--num", "6", "--steps", "20", "--snapshots", "4",
                 "--descent-steps", "10", "--quiet"]) == 0
    assert "low-temperature steps" in capsys.readouterr().out
    shape = (2,) if which == "toy" else (1, 8, 8)
    steps = json.loads((out / "long_run_steps.json").read_text())
    assert steps[0] == 0 and steps[-1] == 20 and len(steps) <= 4
    assert np.load(out / "long_run.npy").shape == (len(steps), 6, *shape)
    assert np.load(out / "low_temperature.npy").shape == (6, *shape)
    rows = (out / "energy_trace.csv").read_text().splitlines()
    assert rows[0] == "step,mean_energy,q10_energy,q90_energy" and rows[-1].startswith("20,")
    record = json.loads((out / "explore.json").read_text())
    assert record["low_temperature_sampler"]["noise_scale"] == 0.0 and record["nonfinite_long_run"] == 0
    for figure in ("long_run.png", "low_temperature.png", "energy_trace.png"):
        assert (out / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("command", ["compose", "eval", "ood", "explore"])
def test_help_for_the_application_commands(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0 and f"usage: anila {command}" in capsys.readouterr().out


def test_eval_and_ood_use_the_density_of_a_noise_conditional_model(tmp_path, capsys):
    # multilevel DSM learns E(x, sigma): loglik and OOD score its density at the smallest noise level
    out = tmp_path / "dsm"
    sets = ["train.iterations=3", "train.batch_size=16", "train.checkpoint_every=0", "eval.grid_resolution=16",
            "eval.num_samples=8", "model.width=8"]
    assert main(["train", str(REPO / "configs" / "rings_multilevel_dsm.toml"), "--out", str(out), "--quiet",
                 *[a for s in sets for a in ("--set", s)]]) == 0
    assert main(["eval", str(out), "--num", "100", "--ais-chains", "16", "--ais-temperatures", "10", "--quiet",
                 "--out", str(tmp_path / "e.json")]) == 0
    assert np.isfinite(json.loads((tmp_path / "e.json").read_text())["log_z"])
    assert main(["ood", str(out), "--out", "uniform", "--num", "50"]) == 0
    assert "| uniform |" in capsys.readouterr().out
