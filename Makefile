# UUS: `make run` installs (if needed) and serves the embedded default; `make test` runs the whole suite.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export UUS_DATA_DIR ?= $(CURDIR)/var

.PHONY: help run install test test-sqlite test-postgres lint format bench lock clean

help:  ## list targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(BIN)/uus: requirements.lock server/pyproject.toml agent/pyproject.toml
	scripts/bootstrap
	@touch $@

install: $(BIN)/uus  ## create .venv and install server + agent

run: install  ## install if needed, migrate, create the first admin, serve on 127.0.0.1:8000
	$(BIN)/uus admin bootstrap
	exec $(BIN)/uus serve --bind 127.0.0.1:8000

test:  ## the whole suite: system packages, SQLite run, PostgreSQL run, browser tests
	scripts/test

lint: install  ## ruff lint + format check, mypy --strict and vermin (Python 3.8) on the agent
	scripts/lint

format:
	$(BIN)/ruff format server agent bench
	$(BIN)/ruff check --fix server agent bench

bench: install  ## run the benchmarks (needs ../shared/data or BENCH_DATA)
	$(BIN)/python bench/run_all.py

lock:  ## re-pin requirements.lock from requirements.in
	$(BIN)/pip install -r requirements.in && $(BIN)/pip freeze --exclude-editable | grep -v '^-e' > requirements.lock

clean:
	rm -rf $(VENV)
