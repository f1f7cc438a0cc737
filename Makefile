# mailwarden: `make run` starts the milter on its embedded defaults, `make test` runs every test.
# Both install what they need on a fresh Debian machine (run as root, as CI does).

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
APT_RUN := libmilter-dev gcc python3-dev
APT_TEST := $(APT_RUN) postfix postfix-pcre opendkim opendkim-tools miltertest opendmarc postgresql
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck unit bench deps-run deps-test venv system-user clean

# Started as root, serve drops its workers to [milter] user, "mailwarden" by default.
run: deps-run venv system-user
	$(BIN)/mailwarden serve

test: deps-test venv system-user lint typecheck
	$(BIN)/pytest -q tests

lint: venv
	$(BIN)/ruff check milter tests bench

typecheck: venv
	$(BIN)/mypy

# Everything but Postfix and root: runs as any user, in seconds.
unit: venv
	$(BIN)/pytest -q tests --ignore=tests/e2e -m "not postfix and not root"

bench: deps-test venv system-user
	$(BIN)/pip install -q -e '.[test,bench]'
	$(BIN)/python bench/run.py

system-user:
	@id -u mailwarden >/dev/null 2>&1 || useradd --system --no-create-home --home-dir /nonexistent \
		--shell /usr/sbin/nologin mailwarden

deps-run:
	@./.ci/apt-install $(APT_RUN)

deps-test:
	@./.ci/apt-install $(APT_TEST)

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

clean:
	rm -rf $(VENV) build milter/*.egg-info .pytest_cache .mypy_cache .ruff_cache
