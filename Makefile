# The two commands: `make serve` and `make test`. Both build .venv from pyproject.toml.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: serve test lint typecheck pytest deps zbar browser clean

serve: deps
	$(BIN)/transparency serve

test: deps browser lint typecheck pytest

lint: deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: deps
	$(BIN)/mypy

pytest: deps
	$(BIN)/pytest -p no:cacheprovider $(PYTEST_ARGS)

deps: zbar $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Python >= 3.11 is needed (found: $$($(PYTHON) --version))"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# pyzbar loads the system library libzbar0 at run time; pip cannot install it.
zbar:
	@if ldconfig -p 2>/dev/null | grep -q 'libzbar\.so\.0'; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing libzbar0 (needed by pyzbar)"; \
		(apt-get install -y -qq libzbar0 >/dev/null 2>&1 || \
		 (apt-get update -qq >/dev/null && apt-get install -y -qq libzbar0 >/dev/null)) || \
		{ echo "could not install libzbar0: run 'sudo apt-get install libzbar0'"; exit 1; }; \
	else \
		echo "pyzbar needs the system library libzbar0. Install it with:"; \
		echo "    sudo apt-get install libzbar0"; \
		exit 1; \
	fi

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

# The customer page is tested in a real headless Chromium (Debian's, driven by Playwright).
browser:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing chromium (the customer page's browser test needs it)"; \
		(apt-get install -y -qq chromium fonts-dejavu-core >/dev/null 2>&1 || \
		 (apt-get update -qq >/dev/null && apt-get install -y -qq chromium fonts-dejavu-core >/dev/null)) || \
		{ echo "could not install chromium: run 'sudo apt-get install chromium fonts-dejavu-core'"; exit 1; }; \
	else \
		echo "the browser test needs Chromium. Install it with:"; \
		echo "    sudo apt-get install chromium fonts-dejavu-core"; \
		exit 1; \
	fi
