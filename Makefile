# Two commands matter: `make run` (try the relay) and `make test` (everything CI runs).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-test
RUNSTAMP := $(VENV)/.installed-run
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run test check lint pytest bench bench-dispatch bench-webhooks clean browser

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUNSTAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $(RUNSTAMP)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP) $(RUNSTAMP)

## run: create .venv, install, and serve on the embedded defaults (SQLite under ./var/)
run: $(RUNSTAMP)
	$(BIN)/relay serve --host $(HOST) --port $(PORT)

## test: lint, type-check, then the whole test suite with coverage
test: check pytest

check: $(STAMP)
	$(BIN)/ruff format --check relay tests bench
	$(BIN)/ruff check relay tests bench
	$(BIN)/mypy relay tests bench

pytest: $(STAMP) browser
	$(BIN)/coverage run -m pytest $(PYTEST_ARGS)
	$(BIN)/coverage report

## browser: in CI (CI=true), install Debian's chromium for the browser tests when missing, and
## the npm packages they drive (the ALTCHA widget) when tests/browser/node_modules is missing.
## Locally the browser test skips with a message instead. Playwright's own download is never used.
browser:
	@if [ "$${CI:-}" = "true" ] && ! command -v chromium >/dev/null 2>&1; then \
	  echo "installing Debian's chromium for tests/test_admin_browser.py"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; \
	fi
	@# the real ALTCHA widget (npm, pinned in tests/browser/package-lock.json; never committed)
	@if [ ! -d tests/browser/node_modules ] && command -v npm >/dev/null 2>&1; then \
	  echo "installing tests/browser's npm packages (npm ci)"; \
	  cd tests/browser && npm ci --no-audit --no-fund --loglevel=error; \
	fi

## lint: apply formatting and safe fixes
lint: $(STAMP)
	$(BIN)/ruff format relay tests bench
	$(BIN)/ruff check --fix relay tests bench

## bench: the accept-path benchmark (prints its figures)
bench: $(STAMP)
	$(BIN)/python bench/accept.py

## bench-webhooks: how fast POST /webhooks/mailgun answers on a real relay serve
bench-webhooks: $(STAMP)
	$(BIN)/python bench/webhooks.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .coverage htmlcov

## bench-dispatch: the delivery benchmark against bench/fake_mailgun.py (prints its figures)
bench-dispatch: $(STAMP)
	$(BIN)/python bench/dispatch.py
