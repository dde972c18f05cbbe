# anila: the two set-up commands of the README.
#   make demo   trains the recommended recipe and AniLA on the rings toy and compares them (about 2 minutes of CPU on one thread, plus the install)
#   make test   runs the test suite
#   make docs   builds the documentation site into site/ (mkdocs build --strict)
#   make typecheck  runs mypy over all of src/anila (configured in pyproject.toml; the `typing` extra)
#   make gpu-check  exercises every CUDA path and writes benchmarks/results/gpu.json (says so and exits 0 without a GPU)
# Both create .venv and install into it unless a virtual environment is already active.

PYTHON ?= python3
ifdef VIRTUAL_ENV
  PY := python
else
  PY := .venv/bin/python
endif
# The CPU build of torch, pinned so that pip never pulls CUDA packages; pyproject accepts any torch >= 2.2.
TORCH_PIN ?= torch==2.13.0
STAMP := $(if $(VIRTUAL_ENV),$(VIRTUAL_ENV),.venv)/.anila-installed

.PHONY: demo test install lint docs typecheck clean gpu-check

$(PY):
	$(PYTHON) -m venv .venv

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_PIN)"
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(PY) -m anila demo configs/demo_rings_anila.toml configs/demo_rings_langevin.toml --out runs/demo --overwrite

test: install
	$(PY) -m pytest -q

gpu-check: install
	$(PY) benchmarks/gpu_check.py

lint: install
	$(PY) -m ruff check src tests examples

DOCS_STAMP := $(if $(VIRTUAL_ENV),$(VIRTUAL_ENV),.venv)/.anila-docs-installed
$(DOCS_STAMP): pyproject.toml | $(STAMP)
	$(PY) -m pip install --quiet -e ".[test,docs,typing]"
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --site-dir site

# mypy over all of src/anila, no errors allowed (see [tool.mypy] in pyproject.toml)
typecheck: $(DOCS_STAMP)
	$(PY) -m mypy

clean:
	rm -rf runs site dist .pytest_cache .mypy_cache
