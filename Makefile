# Everything a fresh machine needs, from Python 3.11+ and make alone.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test check lint typecheck bench clean

# The package alone (what `make demo` needs), then the test, lint and type-check tools on top.
$(VENV)/.package: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(VENV)/.dev: $(VENV)/.package
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

## set up (the package only), then build a store of car-loan incidents and explain each one
demo: $(VENV)/.package
	$(BIN)/payledger demo

## set up, then run the whole test suite: beside a throwaway PostgreSQL server (stopped
## afterwards) and with headless Chromium for the report (installed when missing); neither is
## ever skipped
test: $(VENV)/.dev
	bash .ci/chromium.sh
	PAYLEDGER_REQUIRE_CHROMIUM=1 bash .ci/postgres.sh run -- $(BIN)/python -m pytest -q

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.dev
	$(BIN)/mypy

## lint + types + tests: what CI runs
check: lint typecheck test

## the benchmarks, each figure beside raw sqlite3 measured in the same run
bench: $(VENV)/.dev
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .pytest_cache .ruff_cache
