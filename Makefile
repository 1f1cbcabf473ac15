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

.PHONY: install demo test lint bench bench-accuracy bench-speed bench-ingest

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(VENV)/bin/limbwatch demo

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

test: lint
	$(VENV)/bin/pytest

bench: bench-accuracy bench-speed bench-ingest

bench-accuracy: $(VENV)/.installed
	$(PY) bench/bench_accuracy.py

bench-speed: $(VENV)/.installed
	$(PY) bench/bench_speed.py
	$(PY) bench/bench_csv_load.py

bench-ingest: $(VENV)/.installed
	$(PY) bench/bench_ingest.py
	$(PY) bench/bench_store.py
