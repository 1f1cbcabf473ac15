# The two set-up commands of the README: `make demo` (the main job) and `make test`.
# Both create .venv and install limbwatch into it on first use.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

# Debian programs the tests use: pdftoppm/pdftotext (exports), headless Chromium (dashboard),
# InfluxDB 1.6.7 and VictoriaMetrics (the InfluxDB sample store; the tests start them),
# docker-compose (`docker-compose config` on the compose file; no Docker engine is needed).
# Installed with apt-get when missing (as root, or with sudo).
DEBIAN_TEST_PACKAGES := poppler-utils chromium-headless-shell influxdb victoria-metrics docker-compose
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install demo test test-deps lint bench bench-accuracy bench-speed bench-ingest bench-api bench-influx bench-soak

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(VENV)/bin/limbwatch demo

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

test-deps:
	@missing=$$(for p in $(DEBIAN_TEST_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages for the tests: $$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

test: lint test-deps
	$(VENV)/bin/pytest

bench: bench-accuracy bench-speed bench-ingest bench-api bench-influx

bench-accuracy: $(VENV)/.installed
	$(PY) bench/bench_accuracy.py

bench-speed: $(VENV)/.installed
	$(PY) bench/bench_speed.py
	$(PY) bench/bench_csv_load.py

bench-ingest: $(VENV)/.installed
	$(PY) bench/bench_ingest.py
	$(PY) bench/bench_store.py
	$(PY) bench/bench_remote.py

bench-influx: $(VENV)/.installed
	@command -v influxd >/dev/null || ($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq influxdb)
	$(PY) bench/bench_influx.py

# Not part of `make bench` (about 20 min): the issue-11 soak, the whole stack for a compressed week.
bench-soak: $(VENV)/.installed
	@command -v influxd >/dev/null || ($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq influxdb)
	$(PY) bench/soak.py

bench-api: $(VENV)/.installed
	@command -v wrk >/dev/null || ($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq wrk)
	$(PY) bench/bench_api.py
