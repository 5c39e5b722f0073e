# Two commands matter: `make demo` (set up, build every example into out/) and `make test` (set up, run the
# whole suite). Both create .venv and install what they need; as root on Debian, `make test` also installs
# the real consumers the tests run (Thunderbird, hivex, OpenSSL).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SYSTEM_PACKAGES := thunderbird libwin-hivex-perl libhivex-bin python3-hivex openssl dovecot-core dovecot-imapd dovecot-pop3d dovecot-lmtpd postfix libnss3-tools zbar-tools librsvg2-bin chromium chromium-driver wrk strace
EXAMPLES := $(wildcard examples/*.yaml)

.PHONY: demo test lint unit system-deps golden bench clean i18n

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	@for spec in $(EXAMPLES); do \
		name=$$(basename $$spec .yaml); \
		echo "== $$spec -> out/$$name"; \
		$(BIN)/mailprofile build $$spec --out out/$$name || exit $$?; \
	done

# Installs the real consumers when run as root on Debian and they are missing; elsewhere it says what to
# install and the tests that need them skip (or fail, with MAILPROFILE_REQUIRE_REAL=1 as in CI).
# Dovecot and Postfix are only run by the tests (tests/mailserver.py): a policy-rc.d keeps the packaged
# services from starting on install and taking the ports the tests need; Postfix gets no system config.
system-deps:
	@missing=""; for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing:$$missing"; \
		echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections; \
		guard=; [ -e /usr/sbin/policy-rc.d ] || { printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; \
			chmod +x /usr/sbin/policy-rc.d; guard=1; }; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; rc=$$?; \
		[ -z "$$guard" ] || rm -f /usr/sbin/policy-rc.d; exit $$rc; \
	else \
		echo "note: not installed:$$missing (real-client tests will skip)"; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check generator tests bench tools
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q -n auto

test: system-deps lint unit

golden: $(STAMP)
	$(BIN)/python -m tests.golden --update

bench: $(STAMP)
	$(BIN)/python bench/run.py

# Guides and messages: extract the messages (Python + templates), merge them into every catalog, compile the
# .mo files (committed; tests/test_i18n.py fails when one is stale, missing or untranslated).
LOCALE := generator/locale
i18n: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k N_ --project mailprofile --no-location -w 120 -o $(LOCALE)/mailprofile.pot .
	$(BIN)/pybabel update -i $(LOCALE)/mailprofile.pot -d $(LOCALE) -D mailprofile -w 120 --no-fuzzy-matching
	$(BIN)/pybabel compile -d $(LOCALE) -D mailprofile --statistics

clean:
	rm -rf $(VENV) out dist build .pytest_cache .mypy_cache .ruff_cache .hypothesis
