"""The divergence guard: a bad step is rejected before the update, the run rolls back, shrinks lr and sampler
step, re-seeds and retries; after max_retries it stops with exit code 3 and the reasons in events.jsonl."""

import json

import pytest
import torch

from anila.chains import ChainInit
from anila.cli import main
from anila.config import load_config
from anila.energies import MLPEnergy
from anila.errors import ConfigError, TrainingDiverged
from anila.samplers import AniLA
from anila.train import TrainSettings, make_train_state
from anila.train.guard import GuardSettings, GuardState, StepRejected, check_step, guarded_train
from anila.train.loop import train_step
from anila.train.resume import capture, restore

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
[train]
iterations = 6
batch_size = 16
num_steps = 3
log_every = 2
checkpoint_every = 2
[eval]
grid_resolution = 16
num_samples = 32
"""


def test_check_step_flags_each_kind_of_bad_step():
    finite = {"energy_pos": torch.tensor(1.0), "energy_neg": torch.tensor(-1.0)}
    one = torch.tensor(1.0)
    assert check_step(one, finite, one)
    assert not check_step(torch.tensor(float("nan")), finite, one)
    assert not check_step(one, finite, torch.tensor(float("inf")))
    assert not check_step(one, {**finite, "energy_neg": torch.tensor(float("-inf"))}, one)
    assert check_step(one, finite, one, max_energy_gap=2.0)
    assert not check_step(one, finite, one, max_energy_gap=1.5)  # |1 - (-1)| = 2 > 1.5


def test_a_transient_nan_is_rolled_back_and_retried_with_a_cooler_step():
    torch.manual_seed(0)
    energy = MLPEnergy(dim=2, width=8, depth=1)
    settings = TrainSettings(iterations=6, batch_size=16, num_steps=2, lr=1e-2, log_every=1, seed=3)
    chains = ChainInit()
    state = make_train_state(energy, settings, chains, (2,))
    saved = {}

    def checkpoint(s):
        saved["last"] = capture(s)

    checkpoint(state)
    poisoned = {"left": 1}

    def data(n, g):
        x = torch.randn(n, 2, generator=g)
        if state.iteration == 3 and poisoned["left"]:  # a NaN batch, once, at the 4th iteration
            poisoned["left"] -= 1
            x[0, 0] = float("nan")
        return x

    events, records = [], []
    guard = GuardState(AniLA(step_size=0.04, threshold=1.0))
    guarded_train(state, guard, chains, data, settings, GuardSettings(max_retries=2, shrink=0.5),
                  rollback=lambda s: restore(s, *saved["last"]), on_event=events.append, on_log=records.append,
                  on_checkpoint=checkpoint, progress=False)
    assert state.iteration == 6 and guard.retries == 1
    assert [e["event"] for e in events] == ["step_rejected"]
    assert events[0]["iteration"] == 4 and "the loss is nan" in events[0]["reason"]
    assert events[0]["rolled_back_to"] == 0 and events[0]["seed"] == 3 + 1_000_003  # checkpoint only at start
    assert state.optimizer.param_groups[0]["lr"] == pytest.approx(5e-3)
    assert guard.sampler.step_size == pytest.approx(0.02)
    assert all(torch.isfinite(p).all() for p in energy.parameters())
    assert [r["iteration"] for r in records] == [1, 2, 3, 1, 2, 3, 4, 5, 6]  # the retry starts from iteration 0


def test_energy_gap_bound_rejects_before_the_update_and_max_retries_zero_stops():
    torch.manual_seed(0)
    energy = MLPEnergy(dim=2, width=8, depth=1)
    settings = TrainSettings(iterations=2, batch_size=8, num_steps=1)
    state = make_train_state(energy, settings, ChainInit(), (2,))
    before = [p.detach().clone() for p in energy.parameters()]
    with pytest.raises(StepRejected, match="exceeds guard.max_energy_gap"):
        train_step(state, AniLA(), ChainInit(), torch.randn(8, 2) + 5, settings, max_energy_gap=1e-9)
    assert all(torch.equal(a, b) for a, b in zip(before, energy.parameters(), strict=True))
    assert all(p.grad is None for p in energy.parameters())  # the rejected step's gradient is dropped
    with pytest.raises(TrainingDiverged, match="stopped after 0 retries"):
        guarded_train(state, GuardState(AniLA()), ChainInit(), lambda n, g: torch.randn(n, 2, generator=g) + 5,
                      settings, GuardSettings(max_retries=0, max_energy_gap=1e-9), rollback=lambda s: None,
                      progress=False)


def test_cli_run_that_keeps_diverging_exits_3_after_max_retries(tmp_path, capsys):
    config = tmp_path / "tiny.toml"
    config.write_text(TINY)
    out = tmp_path / "run"
    code = main(["train", str(config), "--out", str(out), "--quiet", "--set", "train.lr=1e30"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 3 and "Traceback" not in "\n".join(err)
    assert err[-1].startswith("anila: error: training diverged at iteration") and "stopped after 3 retries" in err[-1]
    assert sum("rolled back to iteration 0" in line for line in err) == 3
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    assert [e["event"] for e in events] == ["step_rejected"] * 3 + ["diverged"]
    assert [e["lr"][1] for e in events[:3]] == pytest.approx([5e29, 2.5e29, 1.25e29])
    assert [e["step_size"][1] for e in events[:3]] == pytest.approx([0.025, 0.0125, 0.00625])


def test_guard_section_is_validated(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    assert load_config(path).guard == GuardSettings()
    assert load_config(path, ["guard.max_energy_gap=50"]).guard.max_energy_gap == 50.0
    with pytest.raises(ConfigError, match="guard.shrink must be in"):
        load_config(path, ["guard.shrink=1.5"])
    with pytest.raises(ConfigError, match="guard.retries: unknown key"):
        load_config(path, ["guard.retries=2"])
