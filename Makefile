# Two commands matter: `make run` (try the relay) and `make test` (everything CI runs).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-test
RUNSTAMP := $(VENV)/.installed-run
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run test check lint pytest bench bench-dispatch bench-deployment bench-webhooks clean messages tools npm

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

pytest: $(STAMP) tools npm
	$(BIN)/coverage run -m pytest $(PYTEST_ARGS)
	$(BIN)/coverage report

## tools: in CI (CI=true), install the Debian packages real-client tests drive when missing:
## chromium (browser tests), caddy (the reverse-proxy tests and `caddy validate`), promtool
## (prometheus: the alert rules), systemd-analyze (the unit), pg_dump/pg_restore
## (postgresql-client: `relay db backup` on PostgreSQL). Locally those tests skip with a
## message instead. Playwright's own browser download is never used.
DEBIAN_TOOLS := chromium:chromium caddy:caddy promtool:prometheus systemd-analyze:systemd \
	pg_dump:postgresql-client
tools:
	@if [ "$${CI:-}" = "true" ]; then \
	  missing=""; \
	  for pair in $(DEBIAN_TOOLS); do \
	    command -v "$${pair%%:*}" >/dev/null 2>&1 || missing="$$missing $${pair##*:}"; \
	  done; \
	  if [ -n "$$missing" ]; then \
	    echo "installing Debian's$$missing for the tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	  fi; \
	fi

## npm: the npm packages the browser tests drive (package.json, exact versions, lock file):
## `npm ci` when node_modules is missing or older than the lock file. Without npm the browser
## tests skip locally (CI fails).
npm:
	@if { [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; } \
	    && command -v npm >/dev/null 2>&1; then \
	  npm ci --no-audit --no-fund; \
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
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .coverage htmlcov node_modules

## bench-dispatch: the delivery benchmark against bench/fake_mailgun.py (prints its figures)
bench-dispatch: $(STAMP)
	$(BIN)/python bench/dispatch.py

## bench-deployment: `relay serve` with the dispatcher inside under a burst (needs wrk)
bench-deployment: $(STAMP)
	$(BIN)/python bench/deployment.py

## messages: refresh the gettext catalogues (relay/locale) from the code and templates; then
## translate the new entries (tests/test_i18n.py fails while one is missing)
messages: $(STAMP)
	$(BIN)/python tools/messages.py
