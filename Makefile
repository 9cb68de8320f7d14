# Two commands do all the set-up: `make lab` (start the lab and JupyterLab) and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
JUPYTER_ARGS ?=
CLASSROOM_ARGS ?=
PYTEST_ARGS ?=
# Parallel pytest workers for the local runtime's tests: each runs its own lab on its own ports and state directory.
# The compose runtime's tests run beside them as a third stream (see `test`), so three labs share the two cores.
TEST_WORKERS ?= 2
# The compose run's own published ports and free-port slice: the local run's first worker holds the familiar ones.
COMPOSE_TEST_ENV := LAB_JUPYTER_PORT=28888 LAB_CONSUL_PORT=28500 LAB_PROMETHEUS_PORT=29090 LAB_PORT_RANGE=26000-26999
PYTEST := $(BIN)/python -m pytest
ARTIFACTS := test-artifacts

CHP := .cache/chp/node_modules/.bin/configurable-http-proxy

.PHONY: setup chromium hub-proxy go-programs classroom lab lint test test-fast down protos clean compose-engine compose-images compose-configs

# What the lab needs and nothing more: no system packages, no sudo (the browser is only for `make test`).
setup: $(VENV)/.installed .cache/bin/.fetched

# Reinstalls only when pyproject.toml changes, so a second `make` downloads nothing.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

.cache/bin/.fetched: $(VENV)/.installed
	$(BIN)/discovery-lab fetch
	touch $@

# The browser test drives Debian's chromium through playwright (never `playwright install`, which downloads
# browsers). apt needs root, so this uses sudo when not root; it does nothing once /usr/bin/chromium exists.
# Only `make test` (and so CI's .ci/run) depends on it: `make lab` never asks for a password.
chromium:
	@if [ -x /usr/bin/chromium ]; then \
		echo "chromium: /usr/bin/chromium is installed"; \
	elif ! command -v apt-get >/dev/null; then \
		echo "chromium: no apt-get here; install Chromium at /usr/bin/chromium for tests/notebooks/test_browser.py (it skips without it)"; \
	else \
		sudo=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
		echo "chromium: installing Debian chromium for the browser test:"; \
		echo "  $${sudo:+$$sudo }apt-get update && $${sudo:+$$sudo }apt-get install -y --no-install-recommends chromium"; \
		$$sudo apt-get update && $$sudo apt-get install -y --no-install-recommends chromium; \
	fi

# The articles' Go programs (go/README.md) for lesson 15 and their tests: Go 1.19, grpc, protobuf and etcd's clientv3
# from Debian's archive through a private apt configuration into .cache/go (no system change, no module proxy), then
# both programs built offline. A system with those Debian packages installed is used as it is; once built, nothing.
go-programs: $(VENV)/.installed
	$(BIN)/python -m lab_services.runtime.go_programs

# JupyterHub's proxy (configurable-http-proxy, from npm: it is a Node program) for the classroom hub and its tests.
hub-proxy: $(CHP)
$(CHP):
	@command -v npm >/dev/null || { echo "hub-proxy: the classroom hub needs Node.js and npm (Debian: apt-get install nodejs npm)"; exit 2; }
	npm install --silent --no-audit --no-fund --prefix .cache/chp configurable-http-proxy@5.3.0

# A JupyterHub on this machine: every learner their own lab in a browser tab (classroom/README.md).
classroom: setup hub-proxy
	$(BIN)/discovery-lab classroom $(CLASSROOM_ARGS)

lab: setup
	$(BIN)/discovery-lab jupyter $(JUPYTER_ARGS)

# The formatter and linter in check mode (ruff, configured in pyproject.toml); `ruff format . && ruff check --fix .`
# fixes most of what they report.
lint: $(VENV)/.installed
	$(BIN)/ruff format --check --quiet .
	$(BIN)/ruff check --quiet .

# The whole suite: lint, then two pytest runs at once: the local runtime's tests in TEST_WORKERS workers, and the
# compose runtime's (marker `compose`: a Docker engine, one stack) beside them, its output kept in compose.log and shown
# when both are done. A run that fails or finds no test (exit 5) fails the target; both runs always go, and the report
# lists the slowest tests of both.
test: setup chromium hub-proxy go-programs
	@mkdir -p $(ARTIFACTS); rm -f $(ARTIFACTS)/junit*.xml; status=0; \
	{ $(BIN)/ruff format --check --quiet . && $(BIN)/ruff check --quiet .; } || status=$$?; \
	$(COMPOSE_TEST_ENV) $(PYTEST) -m compose --junitxml=$(ARTIFACTS)/junit-compose.xml $(PYTEST_ARGS) \
		> $(ARTIFACTS)/compose.log 2>&1 & compose=$$!; \
	$(PYTEST) -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder -m "not compose" --junitxml=$(ARTIFACTS)/junit-local.xml $(PYTEST_ARGS) \
		|| status=$$?; \
	wait $$compose || { rc=$$?; [ $$status -ne 0 ] || status=$$rc; }; \
	echo "== the compose runtime's run ($(ARTIFACTS)/compose.log) =="; cat $(ARTIFACTS)/compose.log; \
	$(BIN)/python tests/report.py $(ARTIFACTS)/junit-local.xml $(ARTIFACTS)/junit-compose.xml --out $(ARTIFACTS)/junit.xml; \
	exit $$status

# The inner loop: the tests that start no server, no notebook, no browser and no container (under two minutes).
test-fast: setup go-programs
	$(PYTEST) -n $(TEST_WORKERS) -m "not servers and not notebook and not browser and not compose" $(PYTEST_ARGS)

down:
	$(BIN)/discovery-lab down

# The compose runtime (compose/README.md). A Docker engine + compose v2 from Debian's packages, dockerd with no
# bridge and no iptables (root: it installs packages and starts dockerd; idempotent, ~1 s once done).
compose-engine:
	bash compose/engine.sh

# Consul, etcd, Prometheus and user-service images built from Debian's packages with `--network=none`, for
# machines with no container registry (CI); skips images that exist. Selected with LAB_COMPOSE_IMAGES=ci
# (the default picks them when the official images are absent).
compose-images: compose-engine
	bash compose/images.sh

# Rewrite compose/consul/server.json and compose/prometheus/prometheus.yml from the local runtime's generators.
compose-configs: $(VENV)/.installed
	$(BIN)/python -m lab_services.runtime.compose.configs

protos: $(VENV)/.installed
	$(BIN)/python -m lab_services.protogen

clean: down
	rm -rf $(VENV) .cache .lab
