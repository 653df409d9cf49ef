# Aurora: two commands set up and run everything — `make run` and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export AURORA_DATA_DIR ?= data

.PHONY: run test install lint bench bench-scenarios app browser

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# requirements.lock holds the dev and dask extras too, so the suite covers the Dask task runner.
# --compile-bytecode: the packages' .pyc files are written once, here. Without them a machine with
# PYTHONDONTWRITEBYTECODE=1 (this project's VMs) compiles every imported module again in every process:
# importing Great Expectations took 16 s instead of 6 s, in each pipeline run and each zoo worker.
$(STAMP): requirements.lock pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv>=0.5"
	$(BIN)/uv pip sync --compile-bytecode --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	@if [ ! -f "$(AURORA_DATA_DIR)/raw/prices.parquet" ]; then $(BIN)/aurora generate; fi
	$(BIN)/aurora run

# Headless Chromium for the app's screenshot test (Debian package; the test skips without it).
browser:
	@command -v chromium >/dev/null 2>&1 || { (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) \
		|| echo "chromium could not be installed: the app screenshot test will be skipped"; }

# Two pytest workers (pytest-xdist), one test file at a time each: a file's module fixtures (a pipeline
# run on a small market) are built once, and the many single-threaded tests fill the second core. Files go
# out in collection order, which tests/conftest.py starts with the longest (LONGEST_FIRST).
test: $(STAMP) browser
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python bench/bench_generate.py
	$(BIN)/python bench/bench_market_quality.py
	$(BIN)/python bench/bench_features.py

# The whole pipeline on every scenario and both real panels (about three hours on 2 cores): BENCHMARKS.md.
bench-scenarios: $(STAMP)
	$(BIN)/python bench/bench_scenarios.py --json data/scenarios/results.json --markdown data/scenarios/table.md

app: $(STAMP)
	$(BIN)/aurora app
