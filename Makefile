# Two commands: `make run` (set up, build the example incident, start the gateway
# with embedded defaults) and `make test` (set up, lint, type-check, run the whole suite).
# Everything installs into .venv (`source .venv/bin/activate` puts `crewgate` on PATH);
# `make triage`, `make validate` and `make eval` run the common commands without it.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
EXAMPLE := examples/incident
LINT_PATHS := gateway agents tools tests examples bench

.PHONY: setup run triage validate eval test check bench example clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

setup: $(STAMP)

$(EXAMPLE)/expected.json: examples/generate_incident.py | $(STAMP)
	$(BIN)/python examples/generate_incident.py --out $(EXAMPLE) --force

example: $(EXAMPLE)/expected.json

run: setup example
	$(BIN)/crewgate serve

triage: setup example
	$(BIN)/crewgate run incident_triage \
		-i service=checkout -i logs=$(EXAMPLE)/logs -i repo=$(EXAMPLE)/repo \
		-i runbooks=$(EXAMPLE)/runbooks

# Check the shipped configs (or CONFIG=path/to/dir-or-file.yaml) without starting anything.
CONFIG ?= configs
validate: setup
	$(BIN)/crewgate validate $(CONFIG)

# Score the triage on the incident suite (examples/incidents/) with the configured models.
eval: setup
	$(BIN)/crewgate eval

# Lint, format and types (config in pyproject.toml); `make test` runs it before the suite.
check: setup
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/mypy

# Extra pytest arguments, e.g. `make test PYTEST_ARGS="tests/gateway -x"`.
PYTEST_ARGS ?=

test: setup check
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) $(EXAMPLE) var .pytest_cache

bench: setup
	$(BIN)/python -m bench.run
