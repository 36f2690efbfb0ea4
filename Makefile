# One place for every task; the README's two commands are `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint typecheck pytest bench bench-fetch clean screenshot

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)  ## install, then serve on http://127.0.0.1:8080 with auth off and demo data
	CDS_AUTH=off $(BIN)/spine-cds serve --demo

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
