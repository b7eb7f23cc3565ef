# Every target works on a fresh clone: the virtualenv is created on first use and
# reinstalled only when setup.cfg or pyproject.toml change.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
MANAGE := $(BIN)/python sandbox/manage.py
PYTEST_ARGS ?=

POSTGRES_URL ?= postgres://postgres@127.0.0.1:5432/postgres
REDIS_URL ?= redis://127.0.0.1:6379/0

# pytest exits 5 when it collected no test; that is not a failure of the suite.
define run_pytest
	rc=0; $(1) $(BIN)/pytest $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; rc=0; fi; exit $$rc
endef

.PHONY: venv demo test test-postgres bench lint format messages compilemessages clean

venv: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[test,sandbox,postgres,redis]"
	touch $(STAMP)

demo: $(STAMP) compilemessages
	$(MANAGE) migrate --noinput
	$(MANAGE) load_demo
	$(MANAGE) runserver 127.0.0.1:8000

# The quick run: SQLite, eager Celery; PostgreSQL/Redis tests are skipped with a reason.
test: $(STAMP)
	@$(call run_pytest,env -u DATABASE_URL -u CELERY_BROKER_URL -u LOYALTY_TEST_POSTGRES)

# The same suite on PostgreSQL with a Redis broker (set DATABASE_URL / CELERY_BROKER_URL
# to use other servers).
test-postgres: $(STAMP)
	@$(call run_pytest,DATABASE_URL="$${DATABASE_URL:-$(POSTGRES_URL)}" \
		CELERY_BROKER_URL="$${CELERY_BROKER_URL:-$(REDIS_URL)}" LOYALTY_TEST_POSTGRES=1)

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Extract the package's strings into the Russian catalogue (needs GNU gettext), then compile.
messages: $(STAMP)
	@command -v xgettext >/dev/null || { echo "makemessages needs GNU gettext (apt-get install gettext)"; exit 1; }
	cd oscar_loyalty && ../$(BIN)/django-admin makemessages -l ru -e html,txt,py
	$(MAKE) compilemessages

# The .mo files are committed; this only rebuilds those older than their .po. Uses msgfmt when
# it is installed, otherwise Babel (installed with django-oscar), so gettext is not required.
PO_FILES := $(wildcard oscar_loyalty/locale/*/LC_MESSAGES/*.po)
compilemessages: $(PO_FILES:.po=.mo)

MSGFMT ?= $(shell command -v msgfmt)

%.mo: %.po | $(STAMP)
	$(if $(MSGFMT),$(MSGFMT) --check-format -o $@ $<,$(BIN)/pybabel compile -i $< -o $@)

clean:
	rm -rf $(VENV) sandbox/db.sqlite3 sandbox/whoosh_index .pytest_cache .ruff_cache
