# pulumi-django. Quick start: `make demo`, then `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
VENV := .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv
UV_VERSION := 0.13.9
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: test demo install packages bytecode system-deps lint typecheck unit unit-tests \
	rehearsal-tests lock docs up down clean

## test: install everything (Debian packages too), lint, type-check, run the whole suite
# The bytecode, lint and the type check need nothing but the packages: they run at once, mypy
# on one core beside compileall on both (benchmarks/bench_suite.py times it).
test: system-deps
	$(MAKE) --no-print-directory packages
	$(MAKE) --no-print-directory -j3 --output-sync=target bytecode lint typecheck
	$(MAKE) --no-print-directory unit

## demo: the offline plans of the dev and local stacks, then a release rehearsal on real servers
demo: system-deps install
	$(BIN)/pulumi-django plan --stack dev
	$(BIN)/pulumi-django plan --stack local
	$(BIN)/pulumi-django rehearse --to v2

system-deps:
	scripts/install-system-deps.sh

$(UV):
	python3 -m venv $(VENV)
	$(BIN)/pip install -q "uv==$(UV_VERSION)"

## install: the virtualenv in .venv from the lock, this project in strict editable mode, bytecode
install: packages
	$(MAKE) --no-print-directory bytecode

packages: $(UV)
	$(UV) pip install --python $(BIN)/python -q -r requirements.lock
	$(UV) pip install --python $(BIN)/python -q --no-deps -e . -e runtime \
		--config-settings-package pulumi-django:editable_mode=strict

# Bytecode once, up front, where it pays: every test subprocess and CLI call then starts fast,
# also where PYTHONDONTWRITEBYTECODE is set (scripts/compile_bytecode.py says what is left out).
# This project is imported from its strict editable tree under build/ (links to src/, whose
# bytecode Python keeps beside the links), the runtime kit from runtime/src.
bytecode:
	$(BIN)/python scripts/compile_bytecode.py $(VENV)/lib build/__editable__.pulumi_django-* \
		runtime/src examples

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck:
	$(BIN)/mypy

# The whole suite, in two pytest runs side by side: everything else spread over the cores, and
# the release rehearsals two at a time. A rehearsal keeps about one core busy (real servers
# answering its load) and spends most of its time on the load itself, so beside the unit tests
# it fills what they leave idle: on a fresh clone of 7e7da45 both together took 251.3 s
# (benchmarks/bench_suite.py), where by themselves, that session, the unit tests took 172.7 s
# and the rehearsals 105.8 s; every rehearsal still ends with zero failed requests. Make shows
# each run's output when it ends, and reports a failure once both have ended. pulumi-django's
# caches (app runs, template clusters, bytecode) are the checkout's own, under build/, shared by
# both runs and never the user's.
unit:
	$(MAKE) --no-print-directory -j2 --output-sync=target unit-tests rehearsal-tests

unit-tests rehearsal-tests: export PULUMI_DJANGO_CACHE_DIR := $(CURDIR)/build/test-cache
unit-tests:
	$(BIN)/pytest -n 3 -p no:cacheprovider --hypothesis-profile=ci --ignore=tests/test_rehearse.py \
		--ignore=tests/test_rehearse_workers.py
rehearsal-tests:
	$(BIN)/pytest -n 2 -p no:cacheprovider --hypothesis-profile=ci tests/test_rehearse.py \
		tests/test_rehearse_workers.py

## lock: re-pin every dependency (no download addresses are recorded)
lock: $(UV)
	$(UV) pip compile pyproject.toml --extra dev --python-version 3.11 --quiet --no-header \
		--no-emit-index-url --output-file requirements.lock
	! grep -nE 'https?://|index-url|find-links' requirements.lock

## docs: regenerate the config reference table in README.md
docs: install
	$(BIN)/python scripts/update_readme_reference.py

up: install
	scripts/pulumi-local.sh up

down: install
	scripts/pulumi-local.sh destroy

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .pytest_cache .ruff_cache
