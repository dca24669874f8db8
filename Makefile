# `make run` and `make test` set everything up first; `make setup` is safe to repeat.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.setup-stamp
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: setup run test lint bench postgres

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

run: setup
	$(BIN)/threadline serve --host $(HOST) --port $(PORT)

lint: setup
	$(BIN)/ruff check threadline tests bench
	$(BIN)/ruff format --check threadline tests bench
	$(BIN)/mypy threadline

# The tests use the machine's PostgreSQL (127.0.0.1:5432, trust auth); start it if it is down.
postgres:
	@pg_isready -q -h 127.0.0.1 -p 5432 || pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql | head -1) main start
	@pg_isready -q -h 127.0.0.1 -p 5432 -t 30

test: lint postgres
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python -m bench.run
