"""Smoke runs of the stand-alone scripts in benchmarks/ that the speed and study tests do not cover."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def test_digits_readability_tells_digits_from_noise(tmp_path):
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    digits = sklearn_datasets.load_digits().data[:200] / 16.0 * 2.0 - 1.0
    np.save(tmp_path / "digits.npy", digits.reshape(-1, 1, 8, 8))
    np.save(tmp_path / "zeros.npy", np.zeros((50, 1, 8, 8)))
    script = REPO / "benchmarks" / "digits_readability.py"
    result = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "digits.npy"), str(tmp_path / "zeros.npy")],
        capture_output=True, text=True, timeout=120, check=True,
    )
    lines = {line.split(":")[0]: line for line in result.stdout.splitlines()}
    fraction = {name: float(line.split(": ")[1].split()[0]) for name, line in lines.items() if ": " in line}
    # Training digits are read confidently far more often than uniform noise.
    assert fraction[str(tmp_path / "digits.npy")] > fraction["uniform noise"] + 0.3
    assert str(tmp_path / "zeros.npy") in fraction  # every file given is scored


def test_digits_readability_scores_noisy_references(tmp_path):
    pytest.importorskip("sklearn.datasets")
    np.save(tmp_path / "zeros.npy", np.zeros((50, 1, 8, 8)))
    script = REPO / "benchmarks" / "digits_readability.py"
    result = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "zeros.npy"), "--noisy-references", "0.1,3"],
        capture_output=True, text=True, timeout=120, check=True,
    )
    fraction = {line.split(": ")[0]: float(line.split(": ")[1].split()[0])
                for line in result.stdout.splitlines() if " read with " in line}
    clean, mild, heavy = (fraction[f"real digits (held out){tail}"]
                          for tail in ("", " + N(0, 0.1^2) noise", " + N(0, 3^2) noise"))
    # Noise of std 3 clipped to [-1, 1] is nearly uniform noise: far less readable than the clean digits.
    assert heavy < clean - 0.3 and mild <= clean + 0.05


def test_peers_skips_absent_libraries_cleanly(tmp_path, monkeypatch, capsys):
    import importlib.util as iu

    spec = iu.spec_from_file_location("peers_script", REPO / "benchmarks" / "peers.py")
    peers = iu.module_from_spec(spec)
    spec.loader.exec_module(peers)
    monkeypatch.setattr(peers, "available", lambda distribution: False)
    import torch

    threads = torch.get_num_threads()
    try:
        assert peers.main(["--budget", "0.1", "--seeds", "0", "--recipes", "langevin", "--out", str(tmp_path)]) == 0
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert "ebmkit is not installed" in out and "torchebm is not installed" in out
    table = (tmp_path / "peers.md").read_text()
    assert "| anila:langevin | 1 | 0 |" in table and "ebmkit" not in table


def test_paper_toy_scores_a_trained_rings_run(tmp_path):
    """benchmarks/paper_toy.py on a 20-iteration rings run: the table and the figure are written."""
    run = tmp_path / "run"
    config = tmp_path / "rings.toml"
    config.write_text('preset = "recommended"\n[data]\nname = "rings"\n'
                      '[train]\niterations = 20\ncheckpoint_every = 20\n'
                      '[eval]\nnum_samples = 50\ngrid_resolution = 16\n')
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "anila", "train", str(config), "--out", str(run), "--quiet"],
                   check=True, capture_output=True, env=env)
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / "paper_toy.py"), str(run), "--num", "200",
                             "--long-steps", "20", "--out", str(tmp_path / "out")],
                            capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert "| run |" in result.stdout or "| label |" in result.stdout
    assert (tmp_path / "out" / "paper_toy.png").stat().st_size > 1000
