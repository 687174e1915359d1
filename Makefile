# Two commands do all the set-up on a fresh machine: `make up` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Installs come from the locks (exact versions, every file's hash); `make
# lock` writes them again from pyproject.toml. The runtime lock (the image's)
# leaves out the `local` extra: the embedded servers.
LOCK     := requirements.lock
DEV_LOCK := requirements-dev.lock
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml $(DEV_LOCK) | cksum | cut -d' ' -f1)

.PHONY: install lock up test lint rules unit integration e2e bench chaos capture schemas clean

# wrk (Debian package) drives the API benchmark; installed when missing.
WRK := /usr/bin/wrk
$(WRK):
	command -v apt-get >/dev/null && (apt-get install -y -q wrk || \
	  (apt-get update -q && apt-get install -y -q wrk))

# Prometheus (Debian package: prometheus and promtool) checks the alert rules
# and runs beside `make up`; installed when missing.
PROMTOOL := /usr/bin/promtool
$(PROMTOOL):
	command -v apt-get >/dev/null && (apt-get install -y -q prometheus || \
	  (apt-get update -q && apt-get install -y -q prometheus))

# Caddy (Debian) runs the TLS proxy of docker-compose.yml for its test,
# Alertmanager takes the compose file's route, and the Postgres exporter feeds
# the dashboard's Postgres panels in tests/e2e/test_operations.py.
CADDY := /usr/bin/caddy
$(CADDY):
	command -v apt-get >/dev/null && (apt-get install -y -q caddy || \
	  (apt-get update -q && apt-get install -y -q caddy))
PG_EXPORTER := /usr/bin/prometheus-postgres-exporter
$(PG_EXPORTER):
	command -v apt-get >/dev/null && (apt-get install -y -q prometheus-postgres-exporter || \
	  (apt-get update -q && apt-get install -y -q prometheus-postgres-exporter))
AMTOOL := /usr/bin/amtool
$(AMTOOL):
	command -v apt-get >/dev/null && (apt-get install -y -q prometheus-alertmanager || \
	  (apt-get update -q && apt-get install -y -q prometheus-alertmanager))

# Headless Chromium and its driver (Debian) show the web page to the tests.
CHROMEDRIVER := /usr/bin/chromedriver
$(CHROMEDRIVER):
	command -v apt-get >/dev/null && (apt-get install -y -q chromium chromium-driver || \
	  (apt-get update -q && apt-get install -y -q chromium chromium-driver))

$(STAMP): pyproject.toml $(DEV_LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r $(DEV_LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	rm -f $(VENV)/.installed-*
	touch $@

# The same platform as the image (python:3.11-slim, x86_64); the runtime lock
# is constrained by the development one, so both pin the same versions.
UV_COMPILE := $(BIN)/uv pip compile pyproject.toml --quiet --generate-hashes \
	--python-version 3.11 --python-platform x86_64-manylinux_2_28
lock: install  ## write requirements*.lock again from pyproject.toml (newest allowed versions)
	$(UV_COMPILE) --extra dev --extra local --upgrade -o $(DEV_LOCK)
	$(UV_COMPILE) -c $(DEV_LOCK) -o $(LOCK)

install: $(STAMP)

up: install $(PROMTOOL)  ## the whole pipeline on the embedded servers, with demo data and Prometheus
	$(BIN)/itte up

test: install $(WRK) $(PROMTOOL) $(CHROMEDRIVER) $(CADDY) $(AMTOOL) $(PG_EXPORTER) lint rules unit integration e2e  ## everything CI runs

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/mypy tests/unit/fakes.py  # each fake implements its port
	$(BIN)/python -m scripts.check_schemas

rules: $(PROMTOOL)  ## the alert rules are valid and fire when they should
	$(PROMTOOL) check rules deploy/alerts.yml
	cd deploy && $(PROMTOOL) test rules alerts.test.yml

unit: install
	$(BIN)/pytest -q tests/unit

integration: install
	$(BIN)/pytest -q --durations=10 tests/integration

e2e: install
	$(BIN)/pytest -q --durations=15 tests/e2e

bench: install $(WRK)  ## W1-W3 side by side, figures in BENCHMARKS.md (about 30 min)
	$(BIN)/python -m bench.run

chaos: install  ## 10 rounds of faults under load; figures in RELIABILITY.md (about 2 minutes)
	$(BIN)/python -m tests.chaos --rounds 10 --out RELIABILITY.md

capture: install $(CHROMEDRIVER)  ## docs/page.png again: the demo's page with its map (about 3 minutes)
	$(BIN)/python scripts/capture_page.py

schemas: install  ## regenerate schemas/json from the pydantic models
	$(BIN)/itte schemas export

clean:
	$(BIN)/itte servers stop || true
	rm -rf .itte
