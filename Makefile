# One entry point for set-up, the local stack, tests, the demo and the benchmarks.
SHELL := /bin/bash
PYTHON_BOOTSTRAP ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export PYTHONPATH := $(CURDIR)
export SPARK_LOCAL_IP ?= 127.0.0.1
export PYSPARK_PYTHON := $(CURDIR)/$(PY)
export PYSPARK_DRIVER_PYTHON := $(CURDIR)/$(PY)
PYTEST_ARGS ?=

.PHONY: setup jars browser stack-up stack-down stack-status test test-unit test-integration test-chaos \
        lint demo bench clean

setup: $(VENV)/.installed jars ## venv, pinned Python packages and the Maven jars (idempotent)

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON_BOOTSTRAP) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

jars:
	bash scripts/fetch_jars.sh

browser: ## Chromium and its driver from Debian's packages, for the status page's browser test
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then exit 0; fi; \
	if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver; \
	else \
	  echo "make browser: install Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)" >&2; \
	  exit 1; \
	fi

stack-up: setup ## start Kafka (KRaft), a Spark master with two workers, the History Server (S3=1: an S3 server)
	$(PY) -m tools.stack up

stack-down: ## stop the demo's orchestrator (if any), then exactly what stack-up started
	@if [ -x $(PY) ]; then $(PY) -m tools.stack down; else echo "stack: nothing to stop"; fi

stack-status:
	$(PY) -m tools.stack status

lint: setup
	$(PY) -m ruff check .

test: setup browser ## ruff, then the unit tests beside the stack tests (chaos + integration; one stack per session)
	$(PY) -m ruff check .
	@# The unit tests need no stack: they run in a second process while the stack tests wait on
	@# live input, and their report follows the stack tests'. Either failing fails the target.
	@mkdir -p logs; $(PY) -m pytest -p no:cacheprovider -m "not integration and not chaos" $(PYTEST_ARGS) \
	  > logs/unit-tests.log 2>&1 & unit=$$!; \
	$(PY) -m pytest -m "integration or chaos" $(PYTEST_ARGS); stack=$$?; \
	wait $$unit; units=$$?; echo "--- unit tests (logs/unit-tests.log)"; cat logs/unit-tests.log; \
	echo "make test: stack tests exit $$stack, unit tests exit $$units (5: none selected)"; \
	[ $$stack -eq 0 -o $$stack -eq 5 ] && [ $$units -eq 0 -o $$units -eq 5 ]

test-unit: setup
	$(PY) -m pytest -m "not integration and not chaos" $(PYTEST_ARGS)

test-integration: setup browser
	$(PY) -m pytest -m integration $(PYTEST_ARGS)

test-chaos: setup
	$(PY) -m pytest -m chaos $(PYTEST_ARGS)

demo: setup ## the whole platform on the local stack, ending with a report of the outputs
	$(PY) -m tools.demo $(DEMO_ARGS)

bench: setup ## benchmarks; BENCHMARKS.md (newest per area, plots) and benchmarks/history.md (every run)
	$(PY) -m benchmarks.run $(BENCH_ARGS)

clean: stack-down
	rm -rf outputs checkpoints state logs .stack build
