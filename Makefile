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

LOGGER ?= wandb
# extra trainer settings added after conf/trainer/default.yaml, e.g. TRAINER=conf/trainer/gpu-bf16.yaml
TRAINER ?=
BASE = --config conf/trainer/default.yaml $(if $(TRAINER),--config $(TRAINER)) --config conf/logger/$(LOGGER).yaml
HPE_CONFIG ?= conf/experiment/stapformer-s_synthmet-27f_cpu-hpe.yaml
EEE_CONFIG ?= conf/experiment/stapformer-s_synthmet-27f_cpu-eee.yaml
UNIFIED_CONFIG ?= conf/experiment/stapformer-s_synthmet-27f_cpu-unified.yaml
POSE2MET := $(VENV)/bin/pose2met

.DEFAULT_GOAL := help
.PHONY: help install test test-fast lint format bench train-hpe train-eee train-eee-unified train data-synthmet ablations ablations-quick

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
	$(VENV)/bin/ruff check src tests bench data_prep tools
	$(VENV)/bin/ruff format --check src tests bench data_prep tools

format: $(STAMP) ## apply ruff fixes and formatting
	$(VENV)/bin/ruff check --fix src tests bench data_prep tools
	$(VENV)/bin/ruff format src tests bench data_prep tools

train-hpe: $(STAMP) ## train 2D->3D on SynthMet (CPU-sized, ~10 min), then test; CONFIG=/ARGS= add more
	$(POSE2MET) fit $(BASE) --config conf/model/hpe.yaml --config conf/data/synthmet.yaml --config $(HPE_CONFIG) $(if $(CONFIG),--config $(CONFIG)) $(ARGS)

train-eee: $(STAMP) ## train 2D->kcal (standard setting) on SynthMet, then test
	$(POSE2MET) fit $(BASE) --config conf/model/eee.yaml --config conf/data/synthmet.yaml --config $(EEE_CONFIG) $(if $(CONFIG),--config $(CONFIG)) $(ARGS)

train-eee-unified: $(STAMP) ## unified 2D->3D->kcal schedule (HPE stage, then joint stage) on SynthMet, then test
	$(POSE2MET) fit $(BASE) --config conf/model/eee-unified.yaml --config conf/data/synthmet.yaml --config $(UNIFIED_CONFIG) $(if $(CONFIG),--config $(CONFIG)) $(ARGS)

train: $(STAMP) ## any recipe: make train CONFIG=conf/experiment/X.yaml ARGS="--trainer.max_epochs 3"
	@test -n "$(CONFIG)" || { echo "make train: give a recipe, e.g. make train CONFIG=conf/experiment/stapformer-s_synthmet-27f_cpu-eee-3d.yaml" >&2; exit 2; }
	$(POSE2MET) fit $(BASE) --config $(CONFIG) $(ARGS)

data-synthmet: $(STAMP) ## generate SynthMet (PRESET=default SEED=0) into data/
	$(PY) data_prep/synthmet.py --preset $(or $(PRESET),default) --seed $(or $(SEED),0) --output data/synthmet-$(or $(PRESET),default)-seed$(or $(SEED),0).h5

bench: $(STAMP) ## run the benchmarks (model, metrics, data loader, SynthMet) and print figures
	$(PY) bench/inference.py --quick
	$(PY) bench/metrics.py
	$(PY) bench/dataloader.py
	$(PY) bench/synthmet.py

ablations: $(STAMP) ## paper Tables 3-8 on SynthMet, 3 seeds (~2 h on 2 CPU cores, resumes); results/*.md; TABLES=t4,t7
	$(PY) -m pose2met.ablations --full $(if $(TABLES),--tables $(TABLES))

ablations-quick: $(STAMP) ## every ablation table, 1 seed, 32-step runs (~18 min, a smoke check); results/quick/*.md
	$(PY) -m pose2met.ablations --quick $(if $(TABLES),--tables $(TABLES))
