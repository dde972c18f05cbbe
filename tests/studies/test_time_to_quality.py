"""The time-to-quality harness: every preset trains for a CPU budget and is scored by grid KL."""

from __future__ import annotations

import csv
import dataclasses
import math

import pytest
import torch

import anila.presets as presets
from anila.cli import main
from anila.studies import time_to_quality as ttq

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = ttq.TimeToQualitySettings(datasets=("rings",), seeds=(0,), budget_s=0.3, grid_resolution=16)


def test_budget_is_process_cpu_time_and_more_budget_means_more_iterations():
    _, _, short = ttq.train_for_budget("langevin", "rings", 0, 0.2)
    _, state, long = ttq.train_for_budget("langevin", "rings", 0, 0.8)
    for row, budget in ((short, 0.2), (long, 0.8)):
        assert not row["diverged"] and row["cpu_s"] >= budget
        assert row["cpu_s"] < budget + 4 * row["cpu_s"] / row["iterations"] + 0.2  # overshoot: about one iteration
    assert long["iterations"] > 2 * short["iterations"] and state.iteration == long["iterations"]


def test_every_preset_is_run_and_scored(tmp_path):
    rows = ttq.run(tmp_path, settings=TINY, log=lambda _: None)
    assert {r["recipe"] for r in rows} == set(presets.preset_names())
    for row in rows:
        assert row["iterations"] >= 1 and 0 < row["kl_true_model"] < math.inf and 0 < row["tv"] <= 1
    with open(tmp_path / "time_to_quality.csv") as f:
        assert len(list(csv.DictReader(f))) == len(rows)
    table = (tmp_path / "time_to_quality.md").read_text()
    assert "0.3 s of process CPU time per run on one torch thread" in table
    assert all(f"| {name} | rings | 1 | 0 |" in table for name in presets.preset_names())
    assert (tmp_path / "time_to_quality_rings.png").is_file()


def test_a_new_preset_file_joins_the_benchmark(tmp_path, monkeypatch):
    folder = tmp_path / "presets"
    folder.mkdir()
    (folder / "tiny_mala.toml").write_text('[model]\nwidth = 8\ndepth = 2\n[sampler]\nname = "mala"\n'
                                           'step_size = 0.01\n[train]\nnum_steps = 2\nbatch_size = 16\n')
    monkeypatch.setattr(presets, "_files", lambda: folder)
    rows = ttq.run(tmp_path / "out", settings=TINY, log=lambda _: None)
    assert [r["recipe"] for r in rows] == ["tiny_mala"]


def test_a_config_file_is_a_recipe_with_its_data_replaced(tmp_path):
    path = tmp_path / "tiny_ssm.toml"
    path.write_text('[data]\nname = "points"\npath = "nowhere.npy"\n[model]\nwidth = 8\ndepth = 2\n'
                    'activation = "silu"\n[objective]\nname = "ssm"\n[train]\nbatch_size = 16\n')
    config = ttq.recipe_config(str(path), "pinwheel", seed=4)
    assert config.data.name == "pinwheel" and config.train.seed == 4 and config.to_dict()["objective"]["name"] == "ssm"
    rows = ttq.run(tmp_path / "out", settings=dataclasses.replace(TINY, recipes=(str(path),)), log=lambda _: None)
    assert [r["recipe"] for r in rows] == [str(path)] and "kl_true_model" in rows[0]


def test_summary_is_mean_sd_and_worst_seed():
    rows = [dict(recipe="r", dataset="d", seed=s, diverged=False, iterations=10, kl_true_model=kl)
            for s, kl in enumerate((0.1, 0.2, 0.3))]
    rows.append(dict(recipe="r", dataset="d", seed=3, diverged=True, iterations=2))
    (summary,) = ttq.summarise(rows)
    assert summary["kl_true_model"] == "0.200 ± 0.100" and summary["worst_seed"] == 0.3
    assert summary["diverged"] == 1 and summary["seeds"] == 4


def test_cli_quick_and_toys_without_density(tmp_path):
    torch.set_num_threads(2)  # the study trains on one thread and restores the count it found
    assert main(["compare", "time_to_quality", "--quick", "--set", "budget_s=0.2", "--set", 'datasets=["rings"]',
                 "--set", 'recipes=["langevin"]', "--out", str(tmp_path)]) == 0
    assert (tmp_path / "time_to_quality.md").is_file() and torch.get_num_threads() == 2
    torch.set_num_threads(1)
    with pytest.raises(ValueError, match="moons.*no known density"):
        ttq.run(tmp_path, settings=ttq.TimeToQualitySettings(datasets=("moons",)))
