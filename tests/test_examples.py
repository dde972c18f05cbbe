"""Every script in ``examples/`` runs end to end at tiny sizes (``--tiny``) and writes its output."""

import runpy
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SCRIPTS = sorted(p.name for p in EXAMPLES.glob("[a-z]*.py"))

pytestmark = pytest.mark.usefixtures("one_thread")


def test_the_gallery_is_complete():
    assert len(SCRIPTS) >= 8
    docs = (EXAMPLES.parent / "docs" / "examples.md").read_text()
    assert [s for s in SCRIPTS if f"examples/{s}" not in docs] == [], "every example has a section in the docs"


@pytest.mark.parametrize("script", SCRIPTS)
def test_example_runs_at_tiny_size(script, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", [script, "--tiny", "--out", str(tmp_path)])
    monkeypatch.syspath_prepend(str(EXAMPLES))
    runpy.run_path(str(EXAMPLES / script), run_name="__main__")
    written = [p for p in tmp_path.rglob("*") if p.suffix in (".png", ".txt")]
    assert written, f"{script} wrote no figure or result into --out"
    assert capsys.readouterr().out.strip()
