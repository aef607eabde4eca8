# Every target installs what it needs, so a fresh clone works with one command.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: venv debian-deps lint test unit demo bench clean

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

demo: $(STAMP) debian-deps
	$(BIN)/python examples/demo/demo.py

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build *.egg-info bench/results.json
