# Every target installs what it needs, so a fresh clone works with one command.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: venv debian-deps lint test unit soak chaos-long demo bench clean

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

# The long operator chaos and relabel fuzzing (issue 12): `make test` runs short ones.
chaos-long: $(STAMP) debian-deps
	CHAOS_OPS=10000 $(BIN)/pytest tests/config_operator/test_chaos.py $(PYTEST_ARGS)
	RELABEL_FUZZ_EXAMPLES=40 RELABEL_FUZZ_RANDOM=1 $(BIN)/pytest tests/e2e/test_relabel_fuzz.py $(PYTEST_ARGS)

demo: $(STAMP) debian-deps
	$(BIN)/python examples/demo/demo.py

# The sidecar as the image installs it: a non-editable wheel with the base dependencies only (an
# editable install adds an import hook that costs ~20 ms of CPU at every start: 2 s under 10m).
BENCH_VENV := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed
$(BENCH_STAMP): pyproject.toml $(wildcard reloader/*.py) $(STAMP)
	rm -rf $(BENCH_VENV)
	$(PYTHON) -m venv --without-pip $(BENCH_VENV)
	$(BIN)/python -m pip wheel --quiet --no-deps --wheel-dir $(BENCH_VENV)/dist .
	$(BIN)/python -m pip --python $(BENCH_VENV)/bin/python install --quiet $(BENCH_VENV)/dist/*.whl
	touch $@

# Needs root for the cgroup rows (10m CPU / 50Mi, as prometheus-operator runs the reloader); SKIP otherwise.
bench: $(STAMP) $(BENCH_STAMP)
	BENCH_RELOADER=$(BENCH_VENV)/bin/config-reloader $(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(BENCH_VENV) .mypy_cache .ruff_cache .pytest_cache build *.egg-info bench/results.json
