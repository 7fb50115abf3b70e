# Quickstart: `make demo` and `make test` bootstrap .venv from pyproject.toml on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

PYAUTOLENS_PYTHON ?= python3.12
PYAUTOLENS := .venv-pyautolens

.PHONY: demo test test-fast bench bench-pyautolens clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/lensfleet demo --out demo_output

test: $(STAMP)
	$(BIN)/python -m pytest

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

bench: $(STAMP)
	$(BIN)/python benchmarks/likelihood.py

# PyAutoLens beside lensfleet (benchmarks/likelihood.py --pyautolens): its own venv, Python 3.12
$(PYAUTOLENS)/.installed:
	test -x $(PYAUTOLENS)/bin/python || $(PYAUTOLENS_PYTHON) -m venv $(PYAUTOLENS)
	$(PYAUTOLENS)/bin/python -m pip install -q --upgrade pip
	$(PYAUTOLENS)/bin/python -m pip install -q "autolens==2026.10.26.1" jax
	touch $@

bench-pyautolens: $(STAMP) $(PYAUTOLENS)/.installed
	$(BIN)/python benchmarks/likelihood.py --pyautolens $(PYAUTOLENS)/bin/python

clean:
	rm -rf $(VENV) $(PYAUTOLENS) demo_output .pytest_cache
