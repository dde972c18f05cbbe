"""The speed harness: timing and profiling helpers measure what they claim, and ``anila bench --quick`` runs
every code path of the full grid and writes its JSON."""

import json
import time

import pytest
import torch

from anila.bench.timing import Timing, median_ratio, profile_call, time_interleaved, time_per_call
from anila.cli import main
from anila.samplers import REGISTRY

CPU = torch.device("cpu")


def test_time_per_call_measures_a_known_sleep():
    timing = time_per_call(lambda: time.sleep(0.002), CPU, rounds=3, min_round_s=0.01, warmup=1)
    # A sleep lasts at least its argument; calibration fits a few calls into one round.
    assert timing.median_s >= 0.002 and timing.min_s <= timing.median_s <= timing.max_s
    assert len(timing.per_round_s) == 3 and 1 <= timing.calls_per_round <= 5


def test_interleaved_rounds_line_up_and_paired_ratio():
    timings = time_interleaved({"short": lambda: time.sleep(0.001), "long": lambda: time.sleep(0.004)}, CPU,
                               rounds=3, min_round_s=0.01, warmup=0)
    assert set(timings) == {"short", "long"}
    assert len(timings["short"].per_round_s) == len(timings["long"].per_round_s) == 3
    assert median_ratio(timings["long"], timings["short"]) > 1
    a = Timing.of([2.0, 4.0, 9.0], 1)
    b = Timing.of([1.0, 1.0, 3.0], 1)
    assert median_ratio(a, b) == 3.0  # ratios per round: 2, 4, 3


def test_profile_call_sees_an_allocation_and_its_peak():
    n = 1 << 20
    profile = profile_call(lambda: torch.ones(n).add_(1).sum())
    assert profile.allocations >= 1 and profile.operators >= 2
    assert profile.peak_bytes >= 4 * n  # one float32 tensor of n elements held at once


def test_bench_quick_runs_every_case_and_writes_json(tmp_path, capsys):
    out = tmp_path / "results" / "quick.json"
    threads = torch.get_num_threads()
    assert main(["bench", "--quick", "--out", str(out)]) == 0
    assert torch.get_num_threads() == threads
    printed = capsys.readouterr().out
    assert "| model | batch |" in printed and "AniLA step / Langevin step" in printed
    results = json.loads(out.read_text())
    assert results["machine"]["device"] == "cpu" and results["settings"]["options"] == []
    assert [c["model"] for c in results["cases"]] == ["mlp", "convnet"]
    for case in results["cases"]:
        rows = {row["case"]: row for row in case["rows"]}
        assert set(rows) == {"limit", *REGISTRY, "train_iteration", "loss_pass", "langevin_update", "anila_update"}
        assert rows["limit"]["ratio_to_limit"] == 1.0
        for row in rows.values():
            assert row["seconds"] > 0 and row["ratio_to_limit"] > 0
            assert row["profile"]["operators"] > 0 and row["peak_bytes"] >= 0
        # A chain step does at least the limit's work: its operators include the bare pass's and the update's.
        assert rows["anila"]["profile"]["operators"] > rows["limit"]["profile"]["operators"]
        assert rows["anila"]["profile"]["operators"] > rows["anila_update"]["profile"]["operators"]
    assert all(isinstance(t["met"], bool) for t in results["targets"])


@pytest.mark.parametrize(("args", "message"), [
    (["--options", "fast"], "unknown model or option fast"),
    (["--options", "cuda_graphs"], "needs a CUDA device"),
    (["--models", "vit"], "unknown model or option vit"),
    (["--out", "x.csv"], "--out must name a .json file"),
])
def test_bench_bad_input_is_one_line(args, message, capsys):
    if "cuda_graphs" in args and torch.cuda.is_available():
        pytest.skip("a CUDA device is present: cuda_graphs is valid with --device cuda")
    assert main(["bench", "--quick", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and err.startswith("anila: error:")
