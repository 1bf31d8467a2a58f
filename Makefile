# symptrack: `make run` to try it, `make test` to check it. See README.md.

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
# Test processes; the suite is sized for 2 cores.
JOBS ?= auto

.PHONY: install run run-alerts listen test lint format migrate demo clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -c 'import sys; assert sys.version_info[:2] == (3, 11), "symptrack needs Python 3.11"'
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)

## Install, migrate, load the demo data (once: a second run keeps it), serve on $(HOST):$(PORT).
run: install
	$(BIN)/symptrack migrate
	$(BIN)/symptrack demo
	$(BIN)/symptrack serve --host $(HOST) --port $(PORT)

## Try alerts locally (README "Try an alert locally"): `make run-alerts` is `make run` with the demo
## organization's urgent flags sent to http://127.0.0.1:$(LISTEN_PORT)/, where `make listen` (another
## terminal) verifies and prints them. An http URL on loopback is refused unless these two are set:
## here, for these targets only. Never set them in production.
LISTEN_PORT ?= 8787
LOCAL_WEBHOOKS := SYMPTRACK_WEBHOOK_ALLOW_HTTP=true SYMPTRACK_WEBHOOK_ALLOW_PRIVATE_NETWORKS=true

run-alerts: install
	$(BIN)/symptrack migrate
	$(LOCAL_WEBHOOKS) $(BIN)/symptrack demo --webhook-url http://127.0.0.1:$(LISTEN_PORT)/
	$(LOCAL_WEBHOOKS) $(BIN)/symptrack serve --host $(HOST) --port $(PORT)

## The receiver for `make run-alerts` (after it has started): the endpoint's secret comes from the database.
listen: install
	$(BIN)/symptrack listen --port $(LISTEN_PORT) --demo

## Every test; database tests on SQLite, and on PostgreSQL too (required when CI=true). worksteal: an
## idle process takes queued tests from a busy one, so a few slow tests don't leave a core idle at the end.
test: install
	$(BIN)/python -m pytest -n $(JOBS) --dist worksteal $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

migrate: install
	$(BIN)/symptrack migrate

demo: install
	$(BIN)/symptrack demo

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache

## Benchmarks against the local PostgreSQL, one table at the end (BENCHMARKS.md); sizes from BENCH_*.
BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[dev,bench]"
	@touch $(BENCH_STAMP)

.PHONY: bench
bench: $(BENCH_STAMP)
	@command -v wrk >/dev/null || { test "$$(id -u)" = 0 && apt-get update -qq && apt-get install -y -qq wrk; } \
		|| { echo "make bench needs wrk: apt-get install wrk" >&2; exit 1; }
	$(BIN)/python -m bench.run

## The alert burden (issue 23): a seeded cohort replayed day by day through the recorder and the
## time-rules job on a scratch PostgreSQL database (BENCH_POSTGRES_URL), flags counted; a few minutes.
## Sizes from BURDEN_ARGS, e.g. BURDEN_ARGS="--patients 100 --days 14 --variant a". See bench/README.md.
.PHONY: burden
burden: install
	$(BIN)/python -m bench.burden $(BURDEN_ARGS)
