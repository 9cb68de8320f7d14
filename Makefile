# Two commands do all the set-up: `make lab` (start the lab and JupyterLab) and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
JUPYTER_ARGS ?=
PYTEST_ARGS ?=

.PHONY: setup chromium lab test down protos clean

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
		echo "chromium: no apt-get here; install Chromium at /usr/bin/chromium for tests/test_browser.py (it skips without it)"; \
	else \
		sudo=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
		echo "chromium: installing Debian chromium for the browser test:"; \
		echo "  $${sudo:+$$sudo }apt-get update && $${sudo:+$$sudo }apt-get install -y --no-install-recommends chromium"; \
		$$sudo apt-get update && $$sudo apt-get install -y --no-install-recommends chromium; \
	fi

lab: setup
	$(BIN)/discovery-lab jupyter $(JUPYTER_ARGS)

test: setup chromium
	$(BIN)/python -m pytest $(PYTEST_ARGS)

down:
	$(BIN)/discovery-lab down

protos: $(VENV)/.installed
	$(BIN)/python -m lab_services.protogen

clean: down
	rm -rf $(VENV) .cache .lab
