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

## The web chat's demo page is served at /chat/demo, unless HUB_APP_CONNECTORS says otherwise.
run: export HUB_APP_CONNECTORS ?= ["webchat"]
run: export HUB_WEBCHAT_DEMO_SITE ?= true
## Links the demo prints, and the signatures `corridor twilio simulate` makes, name the port served.
run: export HUB_APP_PUBLIC_BASE_URL ?= http://127.0.0.1:$(PORT)
## Serve Corridor with demo data on the embedded default (SQLite) at http://127.0.0.1:5000;
## `make run SEARCH=opensearch` serves it on a search engine on loopback instead (osmem-server,
## an in-memory OpenSearch-compatible engine from the test requirements), with facets and deep paging.
SEARCH ?=
SEARCH_PORT ?= 9201
PORT ?= 5000
ifeq ($(SEARCH),opensearch)
run: $(VENV)/.dev
	@# The engine keeps its index in memory: it is started beside Corridor, stops with it
	@# (--parent-pid), and the index is rebuilt from the database every time.
	OSMEM=$$($(BIN)/python -c 'import osmem_server; print(osmem_server.resolve_binary())') && \
	  { $$OSMEM --addr 127.0.0.1:$(SEARCH_PORT) --no-ja --no-stdin-watch --parent-pid $$$$ >/dev/null & } && \
	  export HUB_SEARCH_BACKEND=opensearch HUB_SEARCH_URL=http://127.0.0.1:$(SEARCH_PORT) HUB_SEARCH_REPLICAS=0 && \
	  $(BIN)/python -c 'import socket, sys, time; any(socket.socket().connect_ex(("127.0.0.1", $(SEARCH_PORT))) == 0 or time.sleep(0.05) for _ in range(200)) or sys.exit("the search engine did not start on port $(SEARCH_PORT)")' && \
	  $(BIN)/corridor demo --if-empty && \
	  $(BIN)/corridor search rebuild && \
	  $(BIN)/corridor run --port $(PORT)
else ifeq ($(SEARCH),)
run: $(VENV)/.runtime
	$(BIN)/corridor demo --if-empty
	$(BIN)/corridor run --port $(PORT)
else
run:
	@echo "SEARCH=$(SEARCH): choose SEARCH=opensearch (an engine on loopback), or leave it out (SQLite FTS5)" >&2; exit 2
endif

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
