# Stratum: `make demo` runs the app with a demo store; `make test` runs the test suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
DEMO_CUSTOMERS ?= 3000
PYTEST_ARGS ?=

.PHONY: install demo test migrate serve worker beat clean messages browser screenshots

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

install: $(STAMP)

messages: install
	$(PY) manage.py compile_translations

migrate: install
	$(PY) manage.py migrate --noinput

demo: export STRATUM_DEMO=1
demo: install messages
	$(PY) manage.py migrate --noinput
	$(PY) manage.py demo_setup --customers $(DEMO_CUSTOMERS) --url http://$(HOST):$(PORT)/
	$(PY) manage.py runserver $(HOST):$(PORT)

# Browser tests drive Debian's Chromium (test tools' own browser downloads do not work here);
# test_i18n uses GNU gettext's xgettext; a Chinese font (WenQuanYi Micro Hei) renders the zh-hans
# pages in screenshots. Installed when missing and we may (root with apt-get).
browser:
	@if command -v chromium > /dev/null && command -v xgettext > /dev/null && fc-list :lang=zh 2> /dev/null | grep -q .; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get > /dev/null; then \
	  echo "Installing chromium, gettext and a Chinese font (Debian packages) for the browser and translation tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium gettext fonts-wqy-microhei > /dev/null; \
	else echo "chromium, gettext or a Chinese font missing and not root: the browser tests will skip or draw boxes"; fi

test: install messages browser
	$(PY) manage.py makemigrations --check --dry-run > /dev/null || (echo "Models and migrations differ: run makemigrations." && exit 1)
	$(PY) -m pytest $(PYTEST_ARGS)

screenshots: install messages browser
	STRATUM_SCREENSHOTS=1 STRATUM_E2E_CUSTOMERS=400 $(PY) -m pytest tests/e2e/test_screenshots.py

worker: install
	$(VENV)/bin/celery -A crm worker -l info -Q default,ingest,recompute,train,send

beat: install
	$(VENV)/bin/celery -A crm beat -l info

clean:
	rm -rf $(VENV) var/stratum.sqlite3 var/outbox
