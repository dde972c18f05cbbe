"""Named recipes (``preset = "..."``): shipped as one TOML file each, merged under the config's own keys."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import anila.presets as presets
from anila.config import config_from_dict, load_config
from anila.errors import ConfigError

CONFIGS = Path(__file__).parents[1] / "configs"


def test_shipped_presets_resolve_for_toys_and_point_files(tmp_path):
    assert {"langevin", "anila", "hmc_short_run"} <= set(presets.preset_names())
    np.save(tmp_path / "p.npy", np.random.default_rng(0).normal(size=(50, 6)))
    for name in presets.preset_names():
        assert "data" not in presets.load_preset(name)
        for data in ({"name": "rings"}, {"name": "points", "path": str(tmp_path / "p.npy")}):
            config = config_from_dict({"preset": name, "data": data})
            assert config.build_energy().dim == config.data.event_shape[0]


@pytest.mark.parametrize(("demo", "name"), [("langevin", "recommended"), ("anila", "anila_replay")])
def test_the_demo_configs_are_their_presets_on_rings(demo, name):
    """make demo trains the recommended recipe and the AniLA recipe as shipped, only for its own iterations."""
    config = load_config(CONFIGS / f"demo_rings_{demo}.toml").to_dict()
    preset = config_from_dict({"preset": name, "data": {"name": "rings"},
                               "train": {"iterations": config["train"]["iterations"]}}).to_dict()
    assert config == preset


def test_recommended_and_anila_replay_differ_only_in_the_sampler():
    recommended = config_from_dict({"preset": "recommended", "data": {"name": "rings"}})
    anila = config_from_dict({"preset": "anila_replay", "data": {"name": "rings"}})
    assert type(recommended.sampler).__name__ == "Langevin" and type(anila.sampler).__name__ == "AniLA"
    assert recommended.chains == anila.chains and recommended.chains.init == "replay"
    assert recommended.train == anila.train and recommended.train.num_steps == 10
    assert recommended.model == anila.model and recommended.model["activation"] == "silu"


def test_hmc_short_run_is_ten_transitions_of_five_leapfrog_steps():
    config = config_from_dict({"preset": "hmc_short_run", "data": {"name": "rings"}})
    langevin = config_from_dict({"preset": "langevin", "data": {"name": "rings"}})
    assert type(config.sampler).__name__ == "HMC" and config.sampler.num_leapfrog_steps == 5
    assert config.sampler.step_size == pytest.approx(0.02 ** 0.5) and config.train.num_steps == 10
    assert config.train == type(config.train)(**{**langevin.train.__dict__, "num_steps": 10})


def test_the_config_wins_and_another_sampler_replaces_the_section():
    config = config_from_dict({"preset": "anila", "data": {"name": "rings"}, "train": {"lr": 3e-4},
                               "sampler": {"step_size": 0.05}})
    assert config.train.lr == 3e-4 and config.train.num_steps == 50
    assert config.sampler.step_size == 0.05 and config.sampler.threshold == 1.0
    mala = config_from_dict({"preset": "anila", "sampler": {"name": "mala", "step_size": 0.01}})
    assert type(mala.sampler).__name__ == "MALA" and mala.sampler.step_size == 0.01
    raw = {"preset": "langevin", "train": {"lr": 1.0}}
    presets.merge_preset(raw)
    assert raw == {"preset": "langevin", "train": {"lr": 1.0}}  # the input is not modified


def test_unknown_and_malformed_presets_raise_one_line(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="preset: unknown preset 'fast'; choose one of .*langevin"):
        config_from_dict({"preset": "fast"})
    (tmp_path / "bad.toml").write_text('[data]\nname = "rings"\n')
    monkeypatch.setattr(presets, "_files", lambda: tmp_path)
    with pytest.raises(ConfigError, match="holds no \\[data\\] section"):
        config_from_dict({"preset": "bad"})


def test_a_new_preset_is_one_file(tmp_path, monkeypatch):
    (tmp_path / "mala_small.toml").write_text('[sampler]\nname = "mala"\nstep_size = 0.01\n[train]\nnum_steps = 7\n')
    monkeypatch.setattr(presets, "_files", lambda: tmp_path)
    assert presets.preset_names() == ("mala_small",)
    config = config_from_dict({"preset": "mala_small", "data": {"name": "8gaussians"}})
    assert type(config.sampler).__name__ == "MALA" and config.train.num_steps == 7


def test_a_three_line_config_file_names_a_preset(tmp_path):
    """``preset = "..."`` at the top of a config file is the preset, not an unknown section."""
    from anila.config import load_config

    path = tmp_path / "mine.toml"
    path.write_text('preset = "recommended"\n[data]\nname = "rings"\n')
    config = load_config(path)
    assert config.chains.init == "replay" and config.train.lr == presets.load_preset("recommended")["train"]["lr"]
    path.write_text('preset = "nope"\n[data]\nname = "rings"\n')
    with pytest.raises(ConfigError, match="preset: unknown preset 'nope'"):
        load_config(path)
