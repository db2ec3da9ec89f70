# Every routine command of shopstream. The CLI (`.venv/bin/shopstream`) does the work; these are shortcuts.
SHOPSTREAM := .venv/bin/shopstream
PY := .venv/bin/python

.PHONY: peers install up down status logs seed reset test lint typecheck unit bench perf-check kafka-topics lab lab-smoke dashboards compose-up compose-down compose-compare test-containers containers-engine jmeter

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
# The container test has its own target (below).
test: install lint typecheck
	@$(PY) -m pytest -q -m "not containers"

# The compose stack from locally built images, with podman or Docker (whichever runs containers):
# builds, starts in order, waits for health, prints the URLs. COMPOSE_ARGS="--port-offset -6000"
# publishes elsewhere; `make compose-down COMPOSE_ARGS=--volumes` deletes the data too.
COMPOSE_ARGS ?=
compose-up: install containers-engine
	@$(SHOPSTREAM) compose up $(COMPOSE_ARGS)

compose-down:
	@$(SHOPSTREAM) compose down $(COMPOSE_ARGS)

# The compose stack beside the local processes in one run: start time, memory, the same open-loop
# async orders (COMPOSE_ARGS="--rate 150 --seconds 20"); images must be built (make compose-up).
compose-compare: install containers-engine
	@flock /tmp/shopstream-bench.lock $(SHOPSTREAM) compose compare --project shopstream-cmp --port-offset -6000 --no-build $(COMPOSE_ARGS)

# podman (runc, debootstrap) from Debian when nothing here can run containers yet
containers-engine: install
	@scripts/bootstrap-containers.sh

# Builds every image, runs the compose stack and drives it end to end (tests/containers): ~3 min
# with the stand-in bases and layer cache warm, 6-7 min on a fresh machine (debootstrap, stand-ins,
# every layer), so not part of `make test`. Under the machine-wide lock: it burns CPU for minutes.
test-containers: install containers-engine
	@flock /tmp/shopstream-bench.lock $(PY) -m pytest -q -m containers tests/containers

bench: install
	@$(SHOPSTREAM) bench products

# The regression gate of the hot paths (~4 min, its own platform in data-perf/): CPU per order and
# per read on a fixed open-loop load against performance-tests/perf-baseline.json, failing beyond
# +25%. Run it before stopping after a change to a hot path. PERF_ARGS="--profile DIR" adds py-spy
# profiles of every pipeline process; PERF_ARGS="--update-baseline" records a new baseline.
PERF_ARGS ?=
perf-check: install
	@$(SHOPSTREAM) perf-check $(PERF_ARGS)

# The performance lab (PT-01..PT-05) on its own platform (data-lab/, ports +8000): ~15 min, then
# performance-tests/results/<run-id>/report.html. PROFILE=full: 60 s steps; PROFILE=plan: the seed's plan (hours);
# LAB_ARGS="--port-offset 9000" when another program holds one of the lab's ports.
PROFILE ?= quick
LAB_ARGS ?=
peers: install  ## the peers comparison (django-oscar and Medusa vs shopstream), docs/performance/peers.md
	scripts/peers/run.sh

lab: install
	@$(SHOPSTREAM) lab run all --profile $(PROFILE) $(LAB_ARGS)

lab-smoke: install
	@$(SHOPSTREAM) lab run all --profile smoke $(LAB_ARGS)

# Regenerate the Grafana dashboards (compose and Kubernetes) and refresh Kubernetes' copy of the
# Prometheus rules: kustomize reads nothing outside deploy/k8s, and tests/deploy fails on a stale copy.
dashboards: install
	@$(PY) infra/grafana/dashboards.py
	@cp infra/prometheus/rules/*.yml deploy/k8s/monitoring/rules/

# A JMeter test plan (performance-tests/jmeter/PT-0N.jmx) against a gateway, through the
# jmeter-maven-plugin (JMeter 5.6.3 from Maven Central, downloaded on the first run); results in
# performance-tests/jmeter/target/jmeter/results/$(PLAN).csv. Under the machine's benchmark lock.
PLAN ?= PT-01
GATEWAY_HOST ?= 127.0.0.1
GATEWAY_PORT ?= 8080
USERS ?= 10
DURATION ?= 60
MODE ?= async
jmeter:
	@cd performance-tests/jmeter && flock /tmp/shopstream-bench.lock mvn -B -q verify \
	  -Djmeter.plan=$(PLAN) -Djmeter.host=$(GATEWAY_HOST) -Djmeter.port=$(GATEWAY_PORT) \
	  -Djmeter.users=$(USERS) -Djmeter.duration=$(DURATION) -Djmeter.mode=$(MODE)
	@echo "results: performance-tests/jmeter/target/jmeter/results/$(PLAN).csv"
