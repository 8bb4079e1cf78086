# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
DATA_DIR := $(abspath $(or $(DEVICEUPDATE_DATA_DIR),$(CURDIR)/var))
# Tests write under their own data directory, never into the one `make run` uses.
TEST_DATA_DIR ?= $(CURDIR)/var/test

.PHONY: run test lint format clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed-run

run: export DEVICEUPDATE_DATA_DIR = $(DATA_DIR)
run: $(VENV)/.installed-run
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput --verbosity 0
	$(PY) manage.py ensure_admin
	$(PY) manage.py make_demo_package
	$(PY) manage.py runinfo --base-url http://127.0.0.1:$(PORT)
	@echo "Starting web server, Celery worker, Celery beat and the phone record loader (Ctrl-C stops them all)."
	@mkdir -p $(DATA_DIR)/logs
	DEVICEUPDATE_DATA_DIR=$(DATA_DIR) PORT=$(PORT) VENV_BIN=$(CURDIR)/$(VENV)/bin \
	  exec $(VENV)/bin/supervisord --configuration deploy/supervisord.conf

test: $(VENV)/.installed-dev
	DEVICEUPDATE_DATA_DIR=$(TEST_DATA_DIR) $(PY) -m pytest

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	DEVICEUPDATE_DATA_DIR=$(TEST_DATA_DIR) $(VENV)/bin/mypy .
	DEVICEUPDATE_DATA_DIR=$(TEST_DATA_DIR) $(PY) manage.py makemigrations --check --dry-run
	DEVICEUPDATE_DATA_DIR=$(TEST_DATA_DIR) DEVICEUPDATE_ENV=production \
	  SECRET_KEY=$$($(PY) -c 'import secrets; print(secrets.token_urlsafe(64))') \
	  ALLOWED_HOSTS=pool01.example.org \
	  DATABASE_URL=sqlite:///$(TEST_DATA_DIR)/deploy-check.sqlite3 CELERY_BROKER_URL=filesystem:// \
	  $(PY) manage.py check --deploy --fail-level WARNING

format: $(VENV)/.installed-dev
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) var
