# Two commands do all the set-up: `make lab` (start the lab and JupyterLab) and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
JUPYTER_ARGS ?=
PYTEST_ARGS ?=

.PHONY: setup lab test down protos clean

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

lab: setup
	$(BIN)/discovery-lab jupyter $(JUPYTER_ARGS)

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

down:
	$(BIN)/discovery-lab down

protos: $(VENV)/.installed
	$(BIN)/python -m lab_services.protogen

clean: down
	rm -rf $(VENV) .cache .lab
