# Every routine command of shopstream. The CLI (`.venv/bin/shopstream`) does the work; these are shortcuts.
SHOPSTREAM := .venv/bin/shopstream
PY := .venv/bin/python

.PHONY: install up down status logs seed reset test lint typecheck unit bench perf-check kafka-topics lab lab-smoke dashboards

install:
	@scripts/bootstrap.sh

up: install
	@$(SHOPSTREAM) up

down:
	@$(SHOPSTREAM) down

status:
	@$(SHOPSTREAM) status

logs:
	@$(SHOPSTREAM) logs

seed: install
	@$(SHOPSTREAM) seed

reset:
	@$(SHOPSTREAM) reset

lint: install
	@.venv/bin/ruff check .
	@.venv/bin/lint-imports

typecheck: install
	@.venv/bin/mypy

unit: install
	@$(PY) -m pytest -m "not integration and not ha" -q

# The whole suite: lint, types, unit and integration tests against real PostgreSQL, Kafka and nginx.
test: install lint typecheck
	@$(PY) -m pytest -q

bench: install
	@$(SHOPSTREAM) bench products

# The regression gate of the hot paths (~4 min, its own platform in data-perf/): CPU per order and
# per read on a fixed open-loop load against performance-tests/perf-baseline.json, failing beyond
# +25%. Run it before stopping after a change to a hot path. PERF_ARGS="--profile DIR" adds py-spy
# profiles of every pipeline process; PERF_ARGS="--update-baseline" records a new baseline.
PERF_ARGS ?=
perf-check: install
	@$(SHOPSTREAM) perf-check $(PERF_ARGS)

# The performance lab (PT-01..PT-05) on its own platform (data-lab/, ports +30000): ~15 min, then
# performance-tests/results/<run-id>/report.html. PROFILE=full for the test plan's durations;
# LAB_ARGS="--port-offset 33000" when another program holds one of the lab's ports.
PROFILE ?= quick
LAB_ARGS ?=
lab: install
	@$(SHOPSTREAM) lab run all --profile $(PROFILE) $(LAB_ARGS)

lab-smoke: install
	@$(SHOPSTREAM) lab run all --profile smoke $(LAB_ARGS)

# Regenerate the Grafana dashboards (compose and Kubernetes) and refresh Kubernetes' copy of the
# Prometheus rules: kustomize reads nothing outside deploy/k8s, and tests/deploy fails on a stale copy.
dashboards: install
	@$(PY) infra/grafana/dashboards.py
	@cp infra/prometheus/rules/*.yml deploy/k8s/monitoring/rules/
