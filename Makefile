# The two commands a new user needs (see README.md): `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint bench clean

# Runtime dependencies; re-installed when requirements.txt changes.
$(VENV)/.runtime: requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

# Test and lint tools on top.
$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

## Serve Corridor with demo data on the embedded default (SQLite) at http://127.0.0.1:5000
## (and the web chat's demo page at /chat/demo, unless HUB_APP_CONNECTORS says otherwise)
run: export HUB_APP_CONNECTORS ?= ["webchat"]
run: export HUB_WEBCHAT_DEMO_SITE ?= true
run: $(VENV)/.runtime
	$(BIN)/corridor demo --if-empty
	$(BIN)/corridor run

## Lint, type-check and run the whole test suite
test: $(VENV)/.dev lint
	$(BIN)/python -m pytest

lint: $(VENV)/.dev
	$(BIN)/ruff check hub connectors tests migrations wsgi.py
	$(BIN)/ruff format --check hub connectors tests migrations wsgi.py
	$(BIN)/mypy

## Benchmarks: print figures against baselines measured in the same run
bench: $(VENV)/.dev
	$(BIN)/python -m tests.bench

clean:
	rm -rf $(VENV) instance .pytest_cache .mypy_cache .ruff_cache
