# Aurora: two commands set up and run everything — `make run` and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SKFOLIO_VERSION := 1.12.2
export AURORA_DATA_DIR ?= data

.PHONY: run test install lint bench app clean-data

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): requirements.lock pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv>=0.5"
	$(BIN)/uv pip sync --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install --python $(BIN)/python --no-deps -e . "skfolio==$(SKFOLIO_VERSION)"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	@if [ ! -f "$(AURORA_DATA_DIR)/raw/prices.parquet" ]; then $(BIN)/aurora generate; fi
	$(BIN)/aurora run

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python bench/bench_generate.py

app: $(STAMP)
	$(BIN)/aurora app
