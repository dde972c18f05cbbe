"""The layers stay apart: the subcommands load and sample a trained model without the training-run module, the
loop does not import the guard that wraps it, the image-data options are read in one place, and library errors
name their own arguments while the config names its keys."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from anila.config import section_errors
from anila.errors import ConfigError

SRC = Path(__file__).resolve().parents[1] / "src" / "anila"


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at the top or inside a function."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("command", ["evaluate", "ood", "explore", "compose"])
def test_subcommands_do_not_import_the_training_run(command):
    assert "anila.train.run" not in imported_modules(SRC / "commands" / f"{command}.py")


def test_loading_and_sampling_a_trained_model_leaves_the_run_module_unloaded():
    code = ("import sys, anila.cli, anila.commands.evaluate, anila.commands.ood, anila.commands.explore, "
            "anila.commands.compose, anila.train.trained; print('anila.train.run' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_the_loop_does_not_import_the_guard():
    assert "anila.train.guard" not in imported_modules(SRC / "train" / "loop.py")
    assert "anila.train.loop" not in imported_modules(SRC / "train" / "step_check.py")


def test_the_image_options_are_read_in_one_place():
    callers = [p.relative_to(SRC).as_posix() for p in SRC.rglob("*.py")
               if p.name != "images.py" and "image_dataset(" in p.read_text()]
    assert callers == []  # everyone else goes through build_dataset


def test_a_library_value_error_becomes_the_config_key():
    with pytest.raises(ConfigError, match=r"^train\.device = 'tpu0': unknown$"):
        with section_errors("train"):
            raise ValueError("device = 'tpu0': unknown")
    with pytest.raises(KeyError):  # only ValueError is translated
        with section_errors("train"):
            raise KeyError("x")
