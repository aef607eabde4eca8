# Every target installs what it needs, so a fresh clone works with one command.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: venv debian-deps lint test unit soak demo bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[operator,test]'
	touch $(STAMP)

venv: $(STAMP)

# Debian's prometheus and prometheus-alertmanager, for the end-to-end tests and the demo.
debian-deps:
	@bash scripts/debian-deps.sh

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint debian-deps
	$(BIN)/pytest $(PYTEST_ARGS)

unit: $(STAMP)
	$(BIN)/pytest -m 'not e2e' $(PYTEST_ARGS)

# The long soak (issue 12): 10,000 random file operations over a few minutes; `make test` runs a short one.
soak: $(STAMP)
	SOAK_OPS=10000 SOAK_MAX_PAUSE_MS=30 $(BIN)/pytest tests/reloader/test_soak.py -s $(PYTEST_ARGS)

demo: $(STAMP) debian-deps
	$(BIN)/python examples/demo/demo.py

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build *.egg-info bench/results.json
