"""The package surface: version from metadata, ``__all__`` of every subpackage, the lazy top level, a fast CLI
start, ``anila --version`` and ``anila plot``."""

import importlib
import json
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

import anila
from anila.cli import main

SUBPACKAGES = ["anila", "anila.chains", "anila.data", "anila.energies", "anila.metrics", "anila.objectives",
               "anila.samplers", "anila.train", "anila.bench"]


def test_version_comes_from_the_package_metadata():
    assert anila.__version__ == version("anila")


@pytest.mark.parametrize("name", SUBPACKAGES)
def test_every_name_in_all_resolves(name):
    module = importlib.import_module(name)
    missing = [n for n in module.__all__ if getattr(module, n, None) is None]
    assert not missing, f"{name}.__all__ lists names it does not define: {missing}"
    assert set(module.__all__) <= set(dir(module))


def test_metrics_and_train_export_the_evaluation_and_run_names():
    assert {"ais_log_partition", "log_likelihood", "fid", "kid", "ood_scores", "auroc"} <= set(anila.metrics.__all__)
    assert {"run_training", "GuardSettings", "guarded_train", "plot_curves"} <= set(anila.train.__all__)


def test_help_and_a_mistyped_subcommand_do_not_import_torch():
    code = ("import sys\nfrom anila.cli import main\n"
            "for argv in (['--help'], ['trian'], ['--version']):\n"
            "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_version_flag(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"anila {version('anila')}"


def _fake_run(folder: Path, offset: float, accept: bool) -> Path:
    folder.mkdir(parents=True)
    key = "accept_rate" if accept else "clip_fraction"
    lines = [json.dumps({"iteration": i, "loss": offset - i / 100, "energy_gap": 0.1 * offset, "grad_norm": 1.0 + i,
                         key: 0.5, "wall_time": float(i)}) for i in range(10, 60, 10)]
    (folder / "metrics.jsonl").write_text("\n".join(lines) + "\n{\"iteration\": 6")  # a truncated last line
    (folder / "summary.json").write_text(json.dumps({"kl_true_model": 0.3 + offset}))
    return folder


def test_plot_overlays_runs(tmp_path, capsys):
    a, b = _fake_run(tmp_path / "a", 0.0, False), _fake_run(tmp_path / "b", 1.0, True)
    assert main(["plot", str(a), str(b), "--out", str(tmp_path / "both.png"), "--label", "A", "--label", "B"]) == 0
    assert (tmp_path / "both.png").stat().st_size > 1000
    assert "2 run(s)" in capsys.readouterr().out
    records = anila.train.read_metrics(a)
    assert len(records) == 5 and records[-1]["iteration"] == 50


def test_plot_refuses_a_folder_without_metrics(tmp_path, capsys):
    assert main(["plot", str(tmp_path), "--out", str(tmp_path / "x.png")]) == 2
    assert "metrics.jsonl not found" in capsys.readouterr().err


def test_readme_makefile_and_demo_configs_give_one_demo_time():
    repo = Path(__file__).resolve().parents[1]
    assert "the two runs take about 2 minutes of CPU" in (repo / "README.md").read_text()
    assert "about 2 minutes of CPU on one thread" in (repo / "Makefile").read_text()
    for name in ("demo_rings_anila.toml", "demo_rings_langevin.toml"):
        assert "about 2 minutes of CPU for the two" in (repo / "configs" / name).read_text()
