# freno: the two commands a newcomer needs are `make run` and `make test`.
# Both install what they need: Debian packages, a virtualenv, our packages.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# iproute2: `ss`, which a test reads a listening socket's backlog with.
# chromium, chromium-driver: the status page's browser tests (playwright drives
# /usr/bin/chromium headless; it never downloads a browser).
DEBS := mariadb-server haproxy memcached iproute2 chromium chromium-driver
BENCH_DEBS := wrk hey
# trial -j N cannot be used: its workers run from twisted/trial/_dist/, whose own
# `test` package shadows ours.
TRIAL_ARGS ?=
export PYTHONPATH := $(CURDIR)

.PHONY: run test unit integration lint deps debs venv bench clean

debs:
	@missing=""; for p in $(DEBS) $(EXTRA_DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

$(VENV)/.installed: setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

venv: $(VENV)/.installed

deps: debs venv

run: deps
	$(PY) -m freno.sandbox.cluster

# The whole suite: the linter, then every test (unit and integration).
test: deps lint
	$(PY) -m twisted.trial $(TRIAL_ARGS) test

# In-memory tests only: no processes, sockets or ports; seconds.
unit: venv
	$(PY) -m twisted.trial $(TRIAL_ARGS) test.unit

# Real-process tests only: MariaDB sandboxes, twistd nodes, HAProxy, memcached.
integration: deps
	$(PY) -m twisted.trial $(TRIAL_ARGS) test.integration

lint: venv
	$(VENV)/bin/ruff check .

bench: EXTRA_DEBS = $(BENCH_DEBS)
bench: deps
	$(PY) -m bench.all

clean:
	rm -rf $(VENV) _trial_temp* twisted/plugins/dropin.cache
