# city-ops: two commands set everything up on a fresh Debian/Ubuntu machine.
#   make demo   install, start local PostGIS + Redis, load the demo city, run the agents, serve the console
#   make test   the same set-up (plus test and training extras), then the whole test suite
#   make fuzz   the same set-up, then a long fuzz of the API (schemathesis; FUZZ_BUDGET_S seconds)
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
RUN := .run
PORT ?= 8000
# `make test` fuzzes the API for 80 s in all (tests/test_fuzz.py); `make fuzz` for this long, with more
# generated examples per operation in each pass.
FUZZ_BUDGET_S ?= 1800
FUZZ_EXAMPLES ?= 25
# pytest-xdist processes for `make test`, each with its own test database, Redis keys and media folder. Two
# fill a 2-core machine: much of a test's time is spent waiting on PostgreSQL, a worker or a browser.
TEST_WORKERS ?= 2
EXTRAS_DEMO := dev
EXTRAS_TEST := dev,train
export DJANGO_SETTINGS_MODULE ?= city_ops.settings.local
export PYTHONUNBUFFERED := 1
# Training and inference stay offline: ultralytics must never fetch fonts or weights at run time.
export YOLO_OFFLINE := 1
export YOLO_CONFIG_DIR := $(CURDIR)/$(RUN)/yolo

.PHONY: help demo test fuzz install system venv services stop status migrate demo-data worker agents serve backup restore clean-run lint

help:
	@echo "make demo    - set up everything and serve the console on http://127.0.0.1:$(PORT)"
	@echo "make test    - set up everything and run the test suite"
	@echo "make fuzz    - fuzz the API for FUZZ_BUDGET_S seconds (default $(FUZZ_BUDGET_S)) as each role"
	@echo "make stop    - stop the worker, beat, PostgreSQL and Redis of this checkout"
	@echo "make backup  - dump the database and media into backups/ ; make restore FILE=backups/..."

system:
	@deploy/local/services.sh install

# The venv is rebuilt when pyproject.toml changes (a stamp per extras set).
$(VENV)/.stamp-%: pyproject.toml
	@command -v $(PY) >/dev/null || { echo "$(PY) is needed (Python 3.11 or 3.12)"; exit 1; }
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@echo "[install] pip install -e .[$*] (progress below)"
	$(BIN)/python -m pip install --progress-bar on -q --upgrade pip setuptools wheel
	$(BIN)/python -m pip install --progress-bar on -e ".[$*]"
	@rm -f $(VENV)/.stamp-*; touch $@

venv-demo: $(VENV)/.stamp-dev
venv-test: $(VENV)/.stamp-dev_train
$(VENV)/.stamp-dev_train: pyproject.toml
	@command -v $(PY) >/dev/null || { echo "$(PY) is needed (Python 3.11 or 3.12)"; exit 1; }
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@echo "[install] pip install -e .[dev,train] (torch is large: progress below)"
	$(BIN)/python -m pip install --progress-bar on -q --upgrade pip setuptools wheel
	$(BIN)/python -m pip install --progress-bar on -e ".[dev,train]"
	@rm -f $(VENV)/.stamp-*; touch $@ $(VENV)/.stamp-dev

services:
	@deploy/local/services.sh start

status:
	@deploy/local/services.sh status || true
	@deploy/local/workers.sh status
	@f=$(RUN)/web.pid; if [ -f $$f ] && kill -0 $$(cat $$f) 2>/dev/null; then echo "web: running (pid $$(cat $$f))"; else echo "web: stopped"; fi

migrate:
	$(BIN)/python manage.py migrate --no-input -v 1
	$(BIN)/python manage.py compilemessages -v 0 --ignore=.venv >/dev/null 2>&1 || true

# Four weeks of history made by the agents over simulated days (fixtures/history; a few minutes, a line a day).
HISTORY_DAYS ?= 28
demo-data:
	$(BIN)/python manage.py load_demo_city --if-empty --history-days $(HISTORY_DAYS)

worker:
	@deploy/local/workers.sh start

agents:
	$(BIN)/python manage.py run_agent --all --wait

serve:
	$(BIN)/python manage.py collectstatic --no-input -v 0
	@echo ""
	@echo "  city-ops console: http://127.0.0.1:$(PORT)/"
	@echo "  dispatcher login: dispatcher / $${CITY_OPS_DEMO_PASSWORD:-city-ops-demo}"
	@echo "  field crew login: crew1 / $${CITY_OPS_DEMO_PASSWORD:-city-ops-demo}"
	@echo "  admin login:      admin / $${CITY_OPS_DEMO_PASSWORD:-city-ops-demo}"
	@echo "  API docs:         http://127.0.0.1:$(PORT)/api/schema/swagger/"
	@echo ""
	$(BIN)/python manage.py runserver 127.0.0.1:$(PORT) --noreload

demo: system venv-demo services migrate demo-data worker agents serve

test: system venv-test services
	DJANGO_SETTINGS_MODULE=city_ops.settings.test $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup \
	  $(PYTEST_ARGS)

fuzz: system venv-test services
	DJANGO_SETTINGS_MODULE=city_ops.settings.test CITY_OPS_FUZZ_BUDGET_S=$(FUZZ_BUDGET_S) \
	  CITY_OPS_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest -m fuzz -s \
	  tests/test_fuzz.py $(PYTEST_ARGS)

stop:
	@deploy/local/workers.sh stop || true
	@deploy/local/services.sh stop

backup:
	@deploy/local/backup.sh backup

restore:
	@deploy/local/backup.sh restore "$(FILE)"

lint:
	$(BIN)/ruff check city_ops agents vision fixtures tests bench
