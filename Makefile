# The two commands: `make serve` and `make test`. Both build .venv from pyproject.toml, at
# the versions in requirements.lock (the ones CI tested); `make lock` writes it again.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCK := requirements.lock

# The full run's line and branch coverage of transparency/, scanner/ and codegen/ (see
# [tool.coverage] in pyproject.toml) may not fall below this: the figure when it was set,
# rounded down (88.13% when set). Raise it when coverage rises. `make pytest COVERAGE=`
# runs without it.
COVERAGE_FLOOR := 88
COVERAGE := --cov --cov-report=term --cov-fail-under=$(COVERAGE_FLOOR)

.PHONY: serve test test-unit lint typecheck pytest deps lock zbar browser clean \
	cluster cluster-stop cluster-status cluster-test cluster-deps backup restore

serve: deps
	$(BIN)/transparency serve

test: deps browser cluster-deps lint typecheck pytest

# The unit tier alone: no database, no browser, no coverage floor (it covers less).
test-unit: deps
	$(BIN)/pytest -p no:cacheprovider tests/unit $(PYTEST_ARGS)

lint: deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: deps
	$(BIN)/mypy

# Every tier (testpaths): tests/unit, tests/integration, tests/e2e and tests/cluster (the
# failover tests start a cluster of their own: cluster-deps).
pytest: deps
	$(BIN)/pytest -p no:cacheprovider $(COVERAGE) $(PYTEST_ARGS)

deps: zbar $(STAMP)

# The lock constrains every package's version; pyproject.toml says which are needed.
$(STAMP): pyproject.toml $(LOCK)
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Python >= 3.11 is needed (found: $$($(PYTHON) --version))"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --constraint $(LOCK) -e '.[dev,embedded]'
	touch $(STAMP)

# Pins what pyproject.toml allows, keeping the lock's pins that still fit (to move every pin
# to the newest release: make lock LOCK_ARGS=--upgrade). pip-tools lives in a venv of its
# own, so that it never changes a version in .venv. The project itself (which dev names
# through its own extras) stays out of the lock, and no index or path is written into it.
LOCK_TOOLS := $(VENV)/pip-tools
lock:
	@test -x $(LOCK_TOOLS)/bin/pip-compile || \
		{ $(PYTHON) -m venv $(LOCK_TOOLS) && $(LOCK_TOOLS)/bin/pip install --quiet pip-tools; }
	CUSTOM_COMPILE_COMMAND="make lock" $(LOCK_TOOLS)/bin/pip-compile --quiet \
		--extra dev --extra embedded --strip-extras --unsafe-package transparency \
		--no-emit-index-url --no-emit-find-links --no-emit-trusted-host \
		$(LOCK_ARGS) --output-file $(LOCK) pyproject.toml

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
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .coverage

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

# A highly available cluster on this machine (deploy/cluster/cluster.py): etcd (3 members),
# Patroni (3 PostgreSQL 15 nodes, synchronous replication), HAProxy and two `serve`, on
# loopback ports from 7400; state in .cluster/ (or $TRANSPARENCY_CLUSTER_DIR).
CLUSTER := $(BIN)/python deploy/cluster/cluster.py
cluster: deps cluster-deps
	$(CLUSTER) start

cluster-stop:
	$(CLUSTER) stop

cluster-status:
	$(CLUSTER) status

# pgBackRest (deploy/README.md, "Backups"): `make backup` (incremental; TYPE=full or diff),
# `make restore TARGET='2026-12-04 09:30:00+00'` (a time with its zone) or TARGET=latest:
# the whole cluster back to that point. The repository is .cluster/backup/.
backup:
	$(CLUSTER) backup --type $(or $(TYPE),incr)
	$(CLUSTER) backups

restore:
	@test -n "$(TARGET)" || { echo "usage: make restore TARGET='2026-12-04 09:30:00+00' (or latest)"; exit 2; }
	$(CLUSTER) restore --target '$(TARGET)'

# Failover without loss: the leader killed mid-run, a replica lost, the leader cut off
# from etcd; a restore to a point in time (tests/cluster; `make pytest` runs them too).
cluster-test: deps cluster-deps
	$(BIN)/pytest -p no:cacheprovider -s tests/cluster $(PYTEST_ARGS)

# Debian's packages: the cluster runs nothing home-made.
# nginx is the edge deploy/nginx.conf configures, run as shipped by tests/e2e/test_edge.py.
CLUSTER_PACKAGES := postgresql-15 patroni etcd-server haproxy pgbackrest nginx
cluster-deps:
	@if command -v patroni >/dev/null 2>&1 && command -v etcd >/dev/null 2>&1 && \
	    command -v pgbackrest >/dev/null 2>&1 && \
	    { command -v haproxy >/dev/null 2>&1 || test -x /usr/sbin/haproxy; } && \
	    { command -v nginx >/dev/null 2>&1 || test -x /usr/sbin/nginx; } && \
	    test -x /usr/lib/postgresql/15/bin/postgres; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing $(CLUSTER_PACKAGES) (the cluster and its failover tests need them)"; \
		(apt-get install -y -qq $(CLUSTER_PACKAGES) >/dev/null 2>&1 || \
		 (apt-get update -qq >/dev/null && apt-get install -y -qq $(CLUSTER_PACKAGES) >/dev/null)) || \
		{ echo "could not install them: run 'sudo apt-get install $(CLUSTER_PACKAGES)'"; exit 1; }; \
	else \
		echo "the cluster needs Debian's $(CLUSTER_PACKAGES). Install them with:"; \
		echo "    sudo apt-get install $(CLUSTER_PACKAGES)"; \
		exit 1; \
	fi
