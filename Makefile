# veloz-gateway. `make run` and `make test` work on a fresh machine with only Python 3.11.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install sysdeps run test lint format typecheck unit bench openapi lock clean

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	@touch $(STAMP)

install: $(STAMP)

# Chromium, PostgreSQL and Redis for the tests that drive them for real (apt-get when missing).
sysdeps:
	@scripts/ensure-system-packages

run: install
	$(BIN)/python -m app

test: install sysdeps lint typecheck
	$(BIN)/python -m pytest

unit: install
	$(BIN)/python -m pytest tests/unit

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: install
	$(BIN)/mypy

bench: install
	$(BIN)/python -m tests.benchmark.bench

openapi: install
	$(BIN)/python -m app.openapi_export openapi/openapi.json

lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet -e '.[dev]'
	{ echo '# Exact versions for reproducible installs (`make install`). Lower bounds live in pyproject.toml.'; \
	  echo '# Regenerate: make lock'; .lock-venv/bin/pip freeze --exclude-editable | grep -v '^-e'; } > requirements.lock
	rm -rf .lock-venv

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache clients/typescript/node_modules
