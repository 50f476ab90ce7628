# Every target bootstraps .venv (and the AWS CLI v2) on its own: `make serve` and
# `make test` work on a fresh machine.
SHELL := /bin/bash
VENV := .venv/bin
export NO_MKDOCS_2_WARNING := 1
export RUNBOOK_AWS_CLI ?= /usr/bin/aws

.PHONY: serve build test check verify lint publish clean

serve:
	@scripts/bootstrap.sh
	$(VENV)/mkdocs serve --strict --dirty -a 127.0.0.1:8000

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

# Publish the runbook to ENV's bucket: the gate first (against moto), the site built from its
# report, then the two commands of the data's publishing section; refused on any failure.
publish:
	@test -n "$(ENV)" || { echo "make publish ENV=<environment>"; exit 2; }
	@scripts/bootstrap.sh
	$(VENV)/runbook check
	mkdir -p test-output
	$(VENV)/runbook verify --report test-output/report.json
	RUNBOOK_REPORT=test-output/report.json $(VENV)/mkdocs build --strict --site-dir site
	$(VENV)/runbook publish --env $(ENV) --site site --report test-output/report.json

clean:
	rm -rf site .venv .pytest_cache .mypy_cache
