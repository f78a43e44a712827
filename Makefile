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

.PHONY: setup run triage validate eval test check bench example clean deploy-tools deploy-configmap ui-vendor

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

# docker-compose 1.29.2, which tests/test_deploy_files.py runs on deploy/compose.yaml, in a venv
# of its own: its pins (jsonschema<4, PyYAML<6) clash with ours. PyYAML 5.4.1 has no wheel for
# Python 3.11+ and builds from source only with Cython<3 and an older setuptools.
DEPLOY_VENV  := $(VENV)/deploy-tools
DEPLOY_STAMP := $(DEPLOY_VENV)/.installed-$(shell cksum deploy/tools-requirements.txt | cut -d' ' -f1)

$(DEPLOY_STAMP): deploy/tools-requirements.txt | $(STAMP)
	rm -rf $(DEPLOY_VENV)
	$(PYTHON) -m venv $(DEPLOY_VENV)
	$(DEPLOY_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(DEPLOY_VENV)/bin/python -m pip install --quiet "cython<3" "setuptools<70" wheel
	$(DEPLOY_VENV)/bin/python -m pip install --quiet --no-build-isolation -r deploy/tools-requirements.txt
	touch $@

deploy-tools: $(DEPLOY_STAMP)

setup: $(STAMP)

# Rewrite deploy/k8s/configs-configmap.yaml after changing configs/ (the suite checks they agree).
deploy-configmap: setup
	$(BIN)/python deploy/k8s/configs_configmap.py

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

test: setup deploy-tools check
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) $(EXAMPLE) var .pytest_cache

bench: setup
	$(BIN)/python -m bench.run

# The dashboard's two browser libraries, copied as published (nothing is built) from the versions
# pinned in gateway/ui/vendor/package-lock.json: `npm ci` checks each package's integrity hash.
# Only needed after changing those versions; the copies are committed, so running the gateway
# needs no Node.js.
UI_VENDOR := gateway/ui/static/vendor
ui-vendor:
	rm -rf $(VENV)/ui-vendor && mkdir -p $(VENV)/ui-vendor
	cp gateway/ui/vendor/package.json gateway/ui/vendor/package-lock.json $(VENV)/ui-vendor/
	cd $(VENV)/ui-vendor && npm ci --ignore-scripts --no-audit --no-fund
	sed '/sourceMappingURL=/d' $(VENV)/ui-vendor/node_modules/marked/lib/marked.umd.js > $(UI_VENDOR)/marked.umd.js
	sed '/sourceMappingURL=/d' $(VENV)/ui-vendor/node_modules/dompurify/dist/purify.min.js > $(UI_VENDOR)/purify.min.js
	cp $(VENV)/ui-vendor/node_modules/marked/LICENSE $(UI_VENDOR)/marked.LICENSE.txt
	cp $(VENV)/ui-vendor/node_modules/dompurify/LICENSE $(UI_VENDOR)/dompurify.LICENSE.txt
