"""The docstring examples of every module under ``src/anila`` run as doctests, so that they stay true.

An example that needs files or a long run is marked ``# doctest: +SKIP`` in its docstring."""

import doctest
import importlib
import pkgutil

import pytest

import anila

pytestmark = pytest.mark.usefixtures("one_thread")

MODULES = sorted(info.name for info in pkgutil.walk_packages(anila.__path__, "anila.")
                 if info.name not in ("anila.__main__",))
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
#: Modules whose examples are known to fail, with why; each is a bug to fix in that module's docstring.
KNOWN_FAILURES: dict[str, str] = {}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.xfail(reason=KNOWN_FAILURES[n], strict=True))
                                  if n in KNOWN_FAILURES else n for n in MODULES])
def test_docstring_examples(name):
    module = importlib.import_module(name)
    tests = doctest.DocTestFinder(exclude_empty=True).find(module, name)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    for test in tests:
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} doctest examples failed in {name} (above)"


def test_the_examples_are_found():
    found = sum(len(doctest.DocTestFinder().find(importlib.import_module(n), n)[0].examples) > 0
                for n in ("anila", "anila.energies.compose", "anila.train.acceleration"))
    assert found == 3


def test_the_concepts_page_code_runs():
    """The Python blocks of docs/concepts.md, run in order in one namespace."""
    import re
    from pathlib import Path

    page = (Path(__file__).resolve().parents[1] / "docs" / "concepts.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", page, re.S)
    assert len(blocks) >= 3
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "docs/concepts.md", "exec"), namespace)
    assert namespace["x"].shape == (100, 2)
