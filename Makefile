# Every target bootstraps .venv (and the AWS CLI v2) on its own: `make serve` and
# `make test` work on a fresh machine.
SHELL := /bin/bash
VENV := .venv/bin
export NO_MKDOCS_2_WARNING := 1
export RUNBOOK_AWS_CLI ?= /usr/bin/aws

.PHONY: serve build test check verify lint clean

serve:
	@scripts/bootstrap.sh
	$(VENV)/mkdocs serve --strict -a 127.0.0.1:8000

build:
	@scripts/bootstrap.sh
	$(VENV)/mkdocs build --strict --site-dir site

check:
	@scripts/bootstrap.sh
	$(VENV)/runbook check

verify:
	@scripts/bootstrap.sh
	$(VENV)/runbook verify

lint:
	@scripts/bootstrap.sh --test
	$(VENV)/ruff check runbook macros tests scripts
	$(VENV)/mypy

test:
	@scripts/bootstrap.sh --test
	$(VENV)/ruff check runbook macros tests scripts
	$(VENV)/mypy
	$(VENV)/python -m pytest

clean:
	rm -rf site .venv .pytest_cache .mypy_cache
