# One place for every task; the README's two commands are `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Two install stamps: `make run` needs the runtime only; the test tools come with `make test`.
RUNTIME_STAMP := $(VENV)/.installed-runtime
STAMP := $(VENV)/.installed-dev
# pip keeps no cache in the home directory: a first run writes nothing outside the project.
PIP := $(BIN)/python -m pip --no-cache-dir --disable-pip-version-check

.PHONY: install run sandbox test lint typecheck pytest bench bench-fetch clean screenshot

$(RUNTIME_STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet -c constraints.txt -e .
	touch $(RUNTIME_STAMP)

$(STAMP): $(RUNTIME_STAMP)
	$(PIP) install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Demo metrics samples stay inside the project (instance/ is ignored by git).
run: $(RUNTIME_STAMP)  ## install the runtime, then serve on http://127.0.0.1:8080 with auth off and demo data
	CDS_AUTH=off PROMETHEUS_MULTIPROC_DIR=instance/prometheus $(BIN)/spine-cds serve --demo

sandbox: $(RUNTIME_STAMP)  ## a local FHIR server with the fixtures (dates rebased to today) + the service (needs Node.js)
	$(BIN)/python tests/support/sandbox.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest

test: lint typecheck pytest  ## install, then lint, type-check and run every test

bench: $(STAMP)  ## every benchmark; writes benchmarks/RESULTS.md (installs wrk when root and missing)
	command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get install -y -q wrk >/dev/null; } || true
	$(BIN)/python benchmarks/bench.py

bench-fetch: $(STAMP)  ## hook latency with no prefetch against a FHIR server answering after 100 ms (needs Node.js)
	$(BIN)/python benchmarks/bench_fetch.py

screenshot: $(STAMP)  ## the README's card picture, from the real preview page in headless Chromium
	$(BIN)/python tests/support/screenshot.py docs/img/preview-card.png

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
