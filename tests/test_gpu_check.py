"""``make gpu-check``: without CUDA it says that it needs a GPU and exits 0; with CUDA (simulated here: every
subprocess faked) it runs each listed check and writes every result to ``gpu.json``."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "gpu_check.py"


@pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU the script runs the real checks (minutes)")
def test_gpu_check_without_cuda_exits_0_saying_it_needs_a_gpu():
    done = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.startswith("gpu-check: needs a CUDA GPU"), done.stdout + done.stderr
    assert "gpu-check: install\n\t$(PY) benchmarks/gpu_check.py" in (REPO / "Makefile").read_text()


def test_gpu_check_runs_every_check_and_records_failures(tmp_path, monkeypatch, capsys):
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    gpu_check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_check)
    commands = []

    def fake_run(command, **kwargs):
        commands.append(" ".join(command))
        failing = "train.compile=true" in commands[-1]
        return subprocess.CompletedProcess(command, 1 if failing else 0, "out\n", "boom\n" if failing else "")

    monkeypatch.setattr(gpu_check.subprocess, "run", fake_run)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index: "fake GPU")
    monkeypatch.setattr(gpu_check, "RESULTS", tmp_path / "gpu.json")
    monkeypatch.setattr(gpu_check, "REPO", REPO)
    assert gpu_check.main() == 1  # one check failed
    results = json.loads((tmp_path / "gpu.json").read_text())
    assert results["failed"] == ["train_compile"] and "boom" in results["train_compile"]["output"]
    expected = {"no_sync", "train_plain", "fused_adam", "train_cuda_graphs", "train_compile", "train_bf16",
                "train_channels_last", "train_images_bf16_channels_last", "cuda_resume", "nccl", "bench"}
    assert expected <= results.keys() and results["device"] == "fake GPU"
    assert any("set_sync" in c or "test_no_sync.py" in c for c in commands)
    assert any("bench --device cuda --models convnet,resnet --batches 64,128" in c for c in commands)
