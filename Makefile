# The hub's two entry points: `make demo` and `make test`. Everything they need is
# installed from this repository's own files (pyproject.toml, scripts/).

PYTHON ?= $(shell command -v python3.11 || command -v python3.12 || command -v python3.13 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PORT   ?= 8050
PYTEST_ARGS ?= -n 4 --dist worksteal --durations=25

.PHONY: demo test lint typecheck unit system-deps venv clean bench

$(BIN)/python:
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python >= 3.11 needed, found " + sys.version' 
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

system-deps:
	bash scripts/install-system-deps.sh

## demo: set up, migrate, load the synthetic alliance and the public data, serve on 127.0.0.1:$(PORT)
demo: $(STAMP)
	$(BIN)/hub demo --port $(PORT)

## test: set up, then lint, type-check and run the whole suite on SQLite and PostgreSQL
test: system-deps $(STAMP) lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
