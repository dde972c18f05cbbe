"""MCMC-free objectives through the config and training loop: each one trains, NCE's log Z is checkpointed and
reloaded, and invalid objective settings are one-line config errors."""

import json

import pytest
import torch

from anila.cli import main
from anila.config import config_from_dict
from anila.errors import ConfigError
from anila.objectives import OBJECTIVES
from anila.train.trained import load_trained_energy

TINY = {"data": {"name": "8gaussians"}, "model": {"width": 16, "depth": 2, "activation": "silu"},
        "train": {"iterations": 4, "batch_size": 32, "num_steps": 2, "log_every": 2},
        "eval": {"grid_resolution": 16, "num_samples": 16}}


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_every_objective_trains_through_the_run(name, tmp_path):
    from anila.train.run import run_training

    raw = {**TINY, "objective": {"name": name} | ({"fit_samples": 500} if name == "nce" else {})}
    if name == "cooperative":
        raw["chains"] = {"init": "generator"}
    if name == "multilevel_dsm":
        raw["model"] = {"name": "noise_conditional_mlp", "width": 16, "depth": 2}
        raw["objective"] |= {"steps_per_level": 2}
    if name == "drl":
        raw["model"] = {"name": "noise_conditional_mlp", "width": 16, "depth": 2}
        raw["objective"] |= {"num_levels": 2, "num_steps": 2}
    if name == "jem":  # labelled 8gaussians: the component is the class
        raw["model"] = {**TINY["model"], "num_classes": 8}
    config = config_from_dict(raw)
    summary = run_training(config, tmp_path, progress=False)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == 2 and all(torch.isfinite(torch.tensor(r["loss"])) for r in records)
    assert summary.metrics["kl_true_model"] > 0
    if name == "nce":
        assert "log_z" in records[-1]


def test_multilevel_dsm_samples_with_annealed_langevin_from_a_checkpoint(tmp_path):
    from anila.train.run import run_training

    raw = {**TINY, "model": {"name": "noise_conditional_mlp", "width": 16, "depth": 2},
           "objective": {"name": "multilevel_dsm", "steps_per_level": 3}}
    run_training(config_from_dict(raw), tmp_path, progress=False)
    assert main(["sample", str(tmp_path), "--num", "7", "--out", str(tmp_path / "s.npy")]) == 0
    import numpy as np

    assert np.load(tmp_path / "s.npy").shape == (7, 2)


def test_nce_log_z_is_checkpointed_and_reloaded(tmp_path):
    from anila.train.checkpoint import load_checkpoint
    from anila.train.run import run_training

    config = config_from_dict({**TINY, "objective": {"name": "nce", "fit_samples": 500}})
    run_training(config, tmp_path, progress=False)
    groups, meta = load_checkpoint(tmp_path)  # log Z: an auxiliary module with its own Adam
    assert groups["aux"]["log_z.log_z"].item() != 0.0 and "log_z.0.exp_avg" in groups["aux_optimizer"]
    assert meta["aux_optimizer"]["log_z"]["param_groups"][0]["lr"] == config.train.lr
    _, energy = load_trained_energy(tmp_path)  # the energy alone, as for every objective
    assert energy.state_dict().keys() == config.build_energy().state_dict().keys()
    assert main(["sample", str(tmp_path), "--num", "5", "--out", str(tmp_path / "s.npy")]) == 0


@pytest.mark.parametrize("objective,message", [
    ({"name": "ssm", "projection": "uniform"}, "objective.projection must be one of"),
    ({"name": "dsm", "sigma": 0.0}, "objective.sigma must be > 0"),
    ({"name": "dsm", "sigmas": [1.0]}, "objective.sigmas: unknown key; valid keys: name, sigma"),
    ({"name": "vae"}, "objective.name: must be one of cd, improved_cd, sm, dsm"),
    ({"name": "multilevel_dsm"}, "multilevel_dsm and model.name = noise_conditional_mlp go together"),
    ({"name": "multilevel_dsm", "sigma_min": 2.0}, "objective.sigma_min must be in (0, sigma_max)"),
])
def test_bad_objective_settings(objective, message):
    with pytest.raises(ConfigError) as info:
        config_from_dict({**TINY, "objective": objective})
    assert message in str(info.value)


def test_improved_cd_trains_with_kl_term_bank_augmentation_and_ema(tmp_path):
    from anila.train.checkpoint import load_checkpoint
    from anila.train.run import run_training

    raw = {"data": {"name": "digits"}, "model": {"name": "convnet", "n_f": 4},
           "objective": {"name": "improved_cd", "augment": True, "bank_size": 8},
           "sampler": {"name": "langevin", "step_size": 1.0, "noise_scale": 0.01, "clamp": [-1.0, 1.0]},
           "chains": {"init": "replay", "noise": "uniform", "buffer_size": 32},
           "train": {"iterations": 3, "batch_size": 8, "num_steps": 2, "log_every": 1, "ema_decay": 0.9,
                     "grad_clip": 1.0},
           "eval": {"num_samples": 4}}
    run_training(config_from_dict(raw), tmp_path, progress=False)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert {"kl_energy", "entropy", "param_grad_norm"} <= set(records[-1])
    assert records[0]["entropy"] == 0.0 and records[-1]["entropy"] != 0.0  # the bank fills after one step
    groups, _ = load_checkpoint(tmp_path)
    assert {"model", "ema", "buffer", "objective"} <= set(groups) and "bank.samples" in groups["objective"]
    assert not torch.equal(groups["ema"]["net.0.weight"], groups["model"]["net.0.weight"])


@pytest.mark.parametrize("change,message", [
    ({"train": {"num_steps": 0}}, "improved_cd backpropagates through the last sampler step"),
    ({"chains": {"init": "noise"}}, "objective.augment: augmentation transitions apply to image chains"),
])
def test_improved_cd_config_errors(change, message):
    raw = {"data": {"name": "digits"}, "objective": {"name": "improved_cd", "augment": True},
           "chains": {"init": "replay"}} | change
    with pytest.raises(ConfigError) as info:
        config_from_dict(raw)
    assert message in str(info.value)


def test_multilevel_dsm_trains_and_samples_the_noise_conditional_convnet_on_images(tmp_path):
    import numpy as np

    from anila.train.run import run_training

    raw = {"data": {"name": "digits", "image_size": 8}, "model": {"name": "noise_conditional_convnet", "n_f": 4},
           "objective": {"name": "multilevel_dsm", "steps_per_level": 2},
           "train": {"iterations": 2, "batch_size": 8, "log_every": 1}, "eval": {"num_samples": 4}}
    run_training(config_from_dict(raw), tmp_path, progress=False)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == 2 and all(np.isfinite(r["loss"]) for r in records)
    assert main(["sample", str(tmp_path), "--num", "3", "--out", str(tmp_path / "s.npy")]) == 0
    assert np.load(tmp_path / "s.npy").shape == (3, 1, 8, 8)
