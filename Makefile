# Everything a fresh machine needs, from Python 3.11+ and make alone.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test check lint typecheck bench clean

$(BIN)/payledger: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

## set up, then build a store of car-loan incidents and explain each one
demo: $(BIN)/payledger
	$(BIN)/payledger demo

## set up, then run the whole test suite
test: $(BIN)/payledger
	$(BIN)/python -m pytest -q

lint: $(BIN)/payledger
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(BIN)/payledger
	$(BIN)/mypy

## lint + types + tests: what CI runs
check: lint typecheck test

## the report's browser tests need headless Chromium: installed when missing, never skipped
test: export PAYLEDGER_REQUIRE_CHROMIUM = 1
test: chromium
.PHONY: chromium
chromium:
	bash .ci/chromium.sh

## the benchmarks, each figure beside raw sqlite3 measured in the same run
bench: $(BIN)/payledger
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .pytest_cache .ruff_cache
