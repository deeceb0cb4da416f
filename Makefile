# Every target here is a command the README shows. Each one provisions what it needs first
# (provision/provision.sh is idempotent and takes seconds once the machine is set up).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
COMPOSE := docker compose
# Where `make probe` writes its report.
OUT ?= reports/latest
PYTEST_ARGS ?=
# Two pytest-xdist workers: the suite mostly waits on containers and fixed-length loads. The stack tests
# share one stack on one worker, and each probe module runs on one worker (tests/conftest.py groups them).
PYTEST_WORKERS ?= -n 2 --dist loadgroup

.DEFAULT_GOAL := help
.PHONY: help provision provision-tests venv up down probe test lint bench clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

provision: ## Engine, Compose v2, images and .env for this machine
	bash provision/provision.sh

provision-tests: ## The same, plus what the tests need (headless Chromium)
	bash provision/provision.sh --tests

$(BIN)/stackprobe: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

venv: $(BIN)/stackprobe ## The Python environment in .venv

up: provision venv ## Start the bundled stack, wait for health, print its URL and applied limits
	$(COMPOSE) up --detach --build --wait
	$(BIN)/stackprobe status

down: ## Stop the bundled stack (its data volume stays; `make clean` removes it)
	$(COMPOSE) --profile tools --profile web down --remove-orphans

probe: provision venv ## The main job: probe the bundled stack under 128 MiB and print the report
	$(BIN)/stackprobe run --out $(OUT)

test: provision-tests venv ## Run the whole test suite (unit, integration, stack, probe)
	$(BIN)/pytest $(PYTEST_WORKERS) $(PYTEST_ARGS)

lint: venv ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: provision venv ## Benchmark the service under its limit (prints figures beside a baseline)
	$(BIN)/python bench/run.py

clean: ## Remove the bundled stack with its volume, and the reports
	$(COMPOSE) --profile tools --profile web down --volumes --remove-orphans
	rm -rf reports
