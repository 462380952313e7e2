# fleetscaler developer commands. Every target creates the virtualenv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: venv lint test test-fast bench demo clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

lint: venv
	$(BIN)/ruff check src tests scripts bench
	$(BIN)/mypy

test: lint
	$(BIN)/pytest -q

test-fast: venv
	$(BIN)/pytest -q -x tests/unit

bench: venv
	$(BIN)/python bench/router_bench.py

demo: venv
	$(BIN)/python -m fleetscaler.local.demo

clean:
	rm -rf $(VENV) build dist out .pytest_cache .mypy_cache .ruff_cache .hypothesis

.PHONY: bench-scaling
bench-scaling: venv
	$(BIN)/python bench/scaling_bench.py
