"""``[train] threads``: one torch thread for point data by default, torch's choice for images, or as set."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from anila.config import config_from_dict
from anila.errors import ConfigError
from anila.train.threads import apply_threads, run_threads


@pytest.fixture
def restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_default_is_one_thread_for_points_and_torch_choice_for_images(tmp_path, restore_threads):
    torch.set_num_threads(2)
    np.save(tmp_path / "p.npy", np.random.default_rng(0).normal(size=(20, 3)))
    for data in ({"name": "rings"}, {"name": "points", "path": str(tmp_path / "p.npy")}):
        assert run_threads(config_from_dict({"data": data})) == 1
    assert run_threads(config_from_dict({"data": {"name": "digits"}})) == 2
    assert run_threads(config_from_dict({"data": {"name": "digits"}, "train": {"threads": 3}})) == 3
    assert run_threads(config_from_dict({"train": {"threads": 2}})) == 2


def test_apply_sets_torch_and_a_run_uses_it(tmp_path, restore_threads):
    from anila.train.run import run_training

    torch.set_num_threads(2)
    assert apply_threads(config_from_dict({})) == 1 and torch.get_num_threads() == 1
    torch.set_num_threads(2)
    config = config_from_dict({"train": {"iterations": 1, "num_steps": 1, "batch_size": 8},
                               "eval": {"grid_resolution": 8, "num_samples": 8}})
    run_training(config, tmp_path / "run", progress=False)
    assert torch.get_num_threads() == 1


def test_negative_threads_are_refused():
    with pytest.raises(ConfigError, match="train.threads must be >= 0"):
        config_from_dict({"train": {"threads": -1}})
