# Two commands matter: `make run` (try the relay) and `make test` (everything CI runs).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run test check lint pytest bench bench-dispatch clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

## run: create .venv, install, and serve on the embedded defaults (SQLite under ./var/)
run: $(STAMP)
	$(BIN)/relay serve --host $(HOST) --port $(PORT)

## test: lint, type-check, then the whole test suite with coverage
test: check pytest

check: $(STAMP)
	$(BIN)/ruff format --check relay tests bench
	$(BIN)/ruff check relay tests bench
	$(BIN)/mypy relay tests bench

pytest: $(STAMP)
	$(BIN)/coverage run -m pytest $(PYTEST_ARGS)
	$(BIN)/coverage report

## lint: apply formatting and safe fixes
lint: $(STAMP)
	$(BIN)/ruff format relay tests bench
	$(BIN)/ruff check --fix relay tests bench

## bench: the accept-path benchmark (prints its figures)
bench: $(STAMP)
	$(BIN)/python bench/accept.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .coverage htmlcov

## bench-dispatch: the delivery benchmark against bench/fake_mailgun.py (prints its figures)
bench-dispatch: $(STAMP)
	$(BIN)/python bench/dispatch.py
