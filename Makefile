# lanegate: `make run` starts the gateway on this machine, `make test` checks everything.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# The first Python 3.13 that really runs (pyenv's shim answers even when 3.13 is not selected).
PY313 := $(shell for p in python3.13 $$(ls -d $$HOME/.pyenv/versions/3.13*/bin/python3.13 2>/dev/null | sort -rV); do \
  "$$p" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' >/dev/null 2>&1 && { command -v "$$p"; break; }; done)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: help run test lint types docs-check broker tools clean bench test-faults ferretdb postgres

help:
	@echo "make run    - the whole gateway on this machine with a demo tenant (Ctrl-C stops it)"
	@echo "make test   - lint, types and the whole test suite (sets up what it needs)"
	@echo "make test-faults - the long fault run (LANEGATE_FAULT_SEED=<seed> replays one)"
	@echo "make docs-check - every relative link and shown command in README.md and docs/ works"

$(STAMP): pyproject.toml constraints.txt
	@if [ -z "$(PY313)" ]; then \
	  echo "error: Python 3.13 not found. Install it (e.g. 'pyenv install 3.13') or put python3.13 on PATH." >&2; \
	  exit 1; fi
	@[ -x $(PY) ] || $(PY313) -m venv $(VENV)
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $@

# The local RabbitMQ: started when installed and stopped, installed from Debian when missing (root only).
# A broker already listening on 5672 (a CI service container) is used as it is. Ready means it
# answers the AMQP protocol header with its first frame: a node that is wedged still answers a
# ping and accepts TCP, and a suite on it would wait at every connection.
AMQP_ANSWERS := (exec 3<>/dev/tcp/127.0.0.1/5672 && printf 'AMQP\0\0\t\1' >&3 && \
  [ "$$(timeout 10 head -c 1 <&3 | od -An -tx1)" = " 01" ]) 2>/dev/null
AMQP_SILENT := echo "error: RabbitMQ on 127.0.0.1:5672 takes connections but does not answer AMQP within 10 s: restart it (rabbitmqctl stop, then make broker)" >&2; exit 1
broker:
	@if (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; then \
	  if $(AMQP_ANSWERS); then exit 0; fi; $(AMQP_SILENT); fi; \
	if ! command -v rabbitmq-server >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing rabbitmq-server ..."; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server >/dev/null; \
	  else \
	    echo "error: RabbitMQ is not installed. Install it (Debian: sudo apt-get install rabbitmq-server) or set LANEGATE_AMQP_URL." >&2; \
	    exit 1; fi; fi; \
	rabbitmq-diagnostics -q ping >/dev/null 2>&1 || rabbitmq-server -detached; \
	for i in $$(seq 1 60); do rabbitmq-diagnostics -q ping >/dev/null 2>&1 && break; sleep 1; done; \
	for i in $$(seq 1 30); do (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null && break; sleep 1; done; \
	if $(AMQP_ANSWERS); then exit 0; fi; \
	echo "error: RabbitMQ did not start within 90 s" >&2; exit 1

# Debian packages the suite uses: promtool (prometheus) checks the alert rules, and
# Chromium with its driver runs the console's browser tests.
DEB_TOOLS := promtool:prometheus chromium:chromium chromedriver:chromium-driver
tools:
	@missing=""; for pair in $(DEB_TOOLS); do \
	  command -v "$${pair%%:*}" >/dev/null 2>&1 || missing="$$missing $${pair#*:}"; done; \
	[ -z "$$missing" ] && exit 0; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing$$missing ..."; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	else \
	  echo "error: missing Debian packages:$$missing (sudo apt-get install --no-install-recommends$$missing)." >&2; \
	  exit 1; fi

# FerretDB v1.24.2, built once from tools/ferretdb (a module of our own around FerretDB's
# embeddable package: `go install .../cmd/ferretdb@v1.24.2` builds a binary that panics at
# start, "Invalid build/version/version.txt") and reused until its sources change.
FERRETDB := .tools/ferretdb
$(FERRETDB): tools/ferretdb/main.go tools/ferretdb/go.mod tools/ferretdb/go.sum
	@command -v go >/dev/null 2>&1 || { echo "error: Go is not installed (https://go.dev/dl/); it builds FerretDB." >&2; exit 1; }
	cd tools/ferretdb && go build -o ../../$(FERRETDB) .
ferretdb: $(FERRETDB)

# PostgreSQL 15 for FerretDB: a cluster of our own (Debian's cluster tools, run as the
# postgres user, since PostgreSQL refuses root) on its own port, with a login role the tests
# use to create a database per run. Installed from Debian when missing (root only).
PG_VERSION := 15
PG_CLUSTER := lanegate
PG_PORT := 54315
# Each FerretDB may open up to 600 connections (devtools.stack.FERRETDB_POOL), and a test
# session runs a few FerretDBs at once.
PG_MAX_CONNECTIONS := 2500
# Every database made from template1 mirrors FerretDB's indexes with GIN ones it can use
# (tools/postgres/index-mirror.sql says why); applied again whenever the file changes.
INDEX_MIRROR := tools/postgres/index-mirror.sql
postgres:
	@if ! [ -x /usr/lib/postgresql/$(PG_VERSION)/bin/postgres ] || ! command -v pg_ctlcluster >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing postgresql-$(PG_VERSION) ..."; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-$(PG_VERSION) >/dev/null; \
	  else \
	    echo "error: PostgreSQL $(PG_VERSION) is not installed (sudo apt-get install postgresql-$(PG_VERSION)), or set LANEGATE_TEST_STORE=mongoeco or LANEGATE_TEST_STORE_URI." >&2; \
	    exit 1; fi; fi; \
	if [ "$$(id -u)" != 0 ]; then \
	  pg_isready -q -h 127.0.0.1 -p $(PG_PORT) && exit 0; \
	  echo "error: start the PostgreSQL cluster as root once: sudo make postgres" >&2; exit 1; fi; \
	pg_lsclusters -h $(PG_VERSION) $(PG_CLUSTER) >/dev/null 2>&1 || \
	  pg_createcluster $(PG_VERSION) $(PG_CLUSTER) -p $(PG_PORT) >/dev/null; \
	if [ "$$(pg_conftool -s $(PG_VERSION) $(PG_CLUSTER) show max_connections 2>/dev/null)" != $(PG_MAX_CONNECTIONS) ]; then \
	  pg_conftool $(PG_VERSION) $(PG_CLUSTER) set max_connections $(PG_MAX_CONNECTIONS); \
	  pg_lsclusters -h $(PG_VERSION) $(PG_CLUSTER) | grep -q online && pg_ctlcluster $(PG_VERSION) $(PG_CLUSTER) restart; fi; \
	pg_lsclusters -h $(PG_VERSION) $(PG_CLUSTER) | grep -q online || pg_ctlcluster $(PG_VERSION) $(PG_CLUSTER) start; \
	for i in $$(seq 1 30); do pg_isready -q -h 127.0.0.1 -p $(PG_PORT) && break; sleep 1; done; \
	runuser -u postgres -- psql -q -p $(PG_PORT) -tAc "SELECT 1 FROM pg_roles WHERE rolname = 'lanegate'" | grep -q 1 || \
	  runuser -u postgres -- psql -q -p $(PG_PORT) -c "CREATE ROLE lanegate LOGIN CREATEDB PASSWORD 'lanegate'" || exit 1; \
	sum=$$(md5sum < $(INDEX_MIRROR) | cut -c1-32); \
	[ "$$(runuser -u postgres -- psql -q -p $(PG_PORT) -d template1 -tAc "SELECT obj_description(oid, 'pg_event_trigger') FROM pg_event_trigger WHERE evtname = 'lanegate_index_mirror'")" = "$$sum" ] || \
	  runuser -u postgres -- psql -q -1 -v ON_ERROR_STOP=1 -v sum="$$sum" -p $(PG_PORT) -d template1 -f - < $(INDEX_MIRROR)

run: $(STAMP) broker
	$(PY) -m devtools.demo

lint: $(STAMP)
	$(VENV)/bin/ruff check libs services tests bench devtools
	$(VENV)/bin/ruff format --check libs services tests bench devtools

types: $(STAMP)
	$(VENV)/bin/mypy libs services tests bench devtools

# The Node receiver the README shows is checked against real deliveries when Node is here.
NODE_TOOLS := node_modules/standardwebhooks/package.json
$(NODE_TOOLS):
	@if command -v npm >/dev/null 2>&1; then \
	  npm install --silent --no-save --no-package-lock --no-audit --no-fund standardwebhooks@1.3.0; \
	else echo "note: no npm here: the README's Node receiver test will be skipped"; fi

# Every relative link (file and #anchor) and every shell command shown in README.md and docs/.
docs-check: $(STAMP)
	$(PY) -m devtools.docs_check

# The suite's store: mongoeco unless LANEGATE_TEST_STORE (mongoeco, ferretdb, ferretdb-sqlite,
# uri) or LANEGATE_TEST_STORE_URI (any MongoDB) says otherwise. FerretDB v1's updates are not
# atomic (README, Configuration), so the suite's guarantees cannot hold on it; the store
# conformance module runs on FerretDB too, wherever the store is not at a URI.
TEST_STORE := $(or $(LANEGATE_TEST_STORE),$(if $(LANEGATE_TEST_STORE_URI),uri,mongoeco))
TEST_STORE_NEEDS := $(if $(filter uri,$(TEST_STORE)),,ferretdb postgres)

test: $(STAMP) broker tools $(TEST_STORE_NEEDS) $(NODE_TOOLS) lint types docs-check
	LANEGATE_TEST_STORE=$(TEST_STORE) $(PY) -m pytest

# The long scripted fault run on a RabbitMQ node of its own (the shared broker is never stopped).
test-faults: $(STAMP) broker
	LANEGATE_FAULTS_LONG=1 $(PY) -m pytest tests/faults -m faults_long -s

# What a benchmark's store engine needs built and started.
store_needs = $(if $(filter ferretdb%,$(1)),ferretdb postgres)

# Every benchmark but those below, on the store the suite would use (docs/benchmarks.md).
bench: $(STAMP) broker $(call store_needs,$(TEST_STORE))
	LANEGATE_TEST_STORE=$(TEST_STORE) $(PY) -m bench

# The history benchmark: a million messages in FerretDB on PostgreSQL (the embedded store is
# far too slow for them), so not part of `make bench` (docs/benchmarks.md).
.PHONY: bench-history bench-pipeline
bench-history: $(STAMP) broker ferretdb postgres
	LANEGATE_TEST_STORE=ferretdb $(PY) -m bench.history

# 10,000 messages through all five services, on FerretDB on PostgreSQL unless
# LANEGATE_TEST_STORE says otherwise; half an hour or more, so not part of `make bench`.
PIPELINE_STORE := $(or $(LANEGATE_TEST_STORE),ferretdb)
bench-pipeline: $(STAMP) broker $(call store_needs,$(PIPELINE_STORE))
	LANEGATE_TEST_STORE=$(PIPELINE_STORE) $(PY) -m bench.pipeline

clean:
	rm -rf $(VENV) var .tools node_modules .mypy_cache .ruff_cache .pytest_cache
