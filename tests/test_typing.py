"""The type checker covers all of ``src/anila`` and CI runs it: no package is excluded, the ``typing`` extra
installs mypy, ``.ci/run`` runs ``make typecheck``, and (when mypy is installed) it finds no error."""

import importlib.util
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_mypy_covers_all_of_src_and_runs_in_ci():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    config = project["tool"]["mypy"]
    assert config["files"] == ["src/anila"] and not config.get("exclude")
    assert any(req.startswith("mypy") for req in project["project"]["optional-dependencies"]["typing"])
    steps = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]
    assert "make typecheck" in steps


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("mypy") is None,
                    reason="mypy is not installed: pip install -e '.[typing]'")
def test_mypy_finds_no_error():
    result = subprocess.run([sys.executable, "-m", "mypy"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:]
    assert result.stdout.startswith("Success: no issues found")
