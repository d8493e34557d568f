# Two commands: `make serve` (set up, then run the service with the embedded store and the
# demo pool) and `make test` (set up, then lint, type-check and run the whole test suite, which
# builds the documentation site strictly). `make docs` regenerates the reference pages and builds
# the site into site/.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP_RUN := $(VENV)/.installed-run
STAMP_DEV := $(VENV)/.installed-dev
CHROMIUM := /usr/bin/chromium

.PHONY: serve test lint setup docs clean browser

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP_RUN): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(STAMP_DEV): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev,analysis,semantic,docs]'
	touch $@ $(STAMP_RUN)

setup: $(STAMP_DEV)

serve: $(STAMP_RUN)
	$(BIN)/signalroute serve $(ARGS)

lint: $(STAMP_DEV)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The dashboard's browser test drives Debian's Chromium (never a downloaded browser): install
# it when it is missing and we are root with apt-get; otherwise say that the test will skip.
browser:
	@if [ -x $(CHROMIUM) ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian's chromium for the dashboard's browser test"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	else \
		echo "note: no $(CHROMIUM) and not root with apt-get: the dashboard's browser test" \
			"will be skipped (install Debian's 'chromium' package to run it)"; \
	fi

test: lint browser
	$(BIN)/pytest $(PYTEST_ARGS)

docs: $(STAMP_DEV)
	$(BIN)/python -m router.tools.docs_reference
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache site
