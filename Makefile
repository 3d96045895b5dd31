# Pose2Met — `make help` lists the targets.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
# A GPU user installs their CUDA build of torch into $(VENV) first; it is kept if present.
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
CONFIG ?=
ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install test test-fast lint format bench

help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-20s\033[0m %s\n", $$1, $$2}'

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP) ## create .venv and install the project (torch first, then the rest)

test: $(STAMP) ## run the whole test suite (slow tests included)
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP) ## run the tests not marked slow
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

lint: $(STAMP) ## ruff check + format check
	$(VENV)/bin/ruff check src tests bench data_prep
	$(VENV)/bin/ruff format --check src tests bench data_prep

format: $(STAMP) ## apply ruff fixes and formatting
	$(VENV)/bin/ruff check --fix src tests bench data_prep
	$(VENV)/bin/ruff format src tests bench data_prep
