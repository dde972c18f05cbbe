"""The wheel works without the repository: built, installed into a folder of its own and run from elsewhere,
``anila --version`` prints the package version and ``anila demo`` trains the demo configs it ships."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_wheel_installs_and_runs_the_demo_outside_the_repository(tmp_path):
    dist = tmp_path / "dist"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(dist), str(REPO)],
                           capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    (wheel,) = dist.glob("anila-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {"anila/py.typed", "anila/configs/demo_rings_anila.toml", "anila/configs/demo_rings_langevin.toml"} <= set(
        names)

    site = tmp_path / "site"  # the wheel alone; its dependencies (torch, ...) come from this interpreter
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site),
                              str(wheel)], capture_output=True, text=True)
    assert install.returncode == 0, install.stderr
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "OMP_NUM_THREADS": "1"}

    def anila(*args):
        return subprocess.run([sys.executable, "-m", "anila", *args], cwd=work, env=env, capture_output=True,
                              text=True, timeout=600)

    located = subprocess.run([sys.executable, "-c", "import anila; print(anila.__file__)"], cwd=work, env=env,
                             capture_output=True, text=True)
    assert located.stdout.strip().startswith(str(site)), located.stdout + located.stderr
    version = anila("--version")
    assert version.returncode == 0 and version.stdout.startswith("anila 0."), version.stdout + version.stderr
    demo = anila("demo", "--quiet", "--out", "runs/demo", "--set", "train.iterations=2", "--set", "train.num_steps=2",
                 "--set", "train.batch_size=16", "--set", "eval.grid_resolution=16", "--set", "eval.num_samples=32")
    assert demo.returncode == 0, demo.stderr
    assert "final KL(true || learned)" in demo.stdout
    for run in ("demo_rings_anila", "demo_rings_langevin"):
        assert (work / "runs" / "demo" / run / "curves.png").is_file()
