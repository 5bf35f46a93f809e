# Quick start: `make demo` and `make test`. Both install into .venv when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test test-fast lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# The CPU wheel of torch lies on local disk; installing it first stops
	# transformer-lens from pulling a multi-GB CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: install
	$(BIN)/interp demo --run-dir runs/demo

lint: install
	$(BIN)/ruff check interp tests benchmarks

# Tests run in TEST_JOBS pytest-xdist workers, one torch thread each (tests/conftest.py);
# TEST_JOBS=0 runs them in the pytest process itself, without workers.
TEST_JOBS ?= 2

test: install lint
	$(BIN)/python -m pytest -q -n $(TEST_JOBS)

# everything but the tests marked slow (real presets, notebooks, worker processes, Ray)
test-fast: install lint
	$(BIN)/python -m pytest -q -n $(TEST_JOBS) -m "not slow"

clean:
	rm -rf $(VENV) runs .pytest_cache
