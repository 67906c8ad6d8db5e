# coe.openstack — developer and CI entry points.
#
#   make demo    set everything up, start the local cloud, run the main job with both drivers
#   make test    every test: lint, sanity, unit, publish-check, integration (local cloud), Molecule
#
# Everything installs itself: a project venv (.venv), Debian packages (as root),
# and the local OpenStack (tests/minicloud, state in .minicloud/).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := $(CURDIR)/.venv
BIN := $(VENV)/bin
BUILD := $(CURDIR)/.build
COLLECTIONS := $(BUILD)/collections
LINK := $(COLLECTIONS)/ansible_collections/coe/openstack
SANITY_TREE := $(BUILD)/sanity/ansible_collections/coe/openstack
MINICLOUD := $(CURDIR)/tests/minicloud/minicloud
VERSION := $(shell sed -n 's/^version: *//p' galaxy.yml)
TARBALL := $(BUILD)/dist/coe-openstack-$(VERSION).tar.gz
PUBLISH := $(BUILD)/publish-check

export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)
export PATH := $(BIN):$(PATH)

# Debian packages the tests need besides the local cloud's own (which its
# installer adds): a PostgreSQL server for the store tests, cloud-init for its
# offline user-data schema validator, rsync for the sanity tree.
APT_PACKAGES := postgresql cloud-init rsync gcc libc6-dev

.PHONY: help
help:
	@echo "make demo         set up, start the local cloud, create/scale/delete a cluster with each driver"
	@echo "make test         lint + sanity + unit + publish-check + cloud-tests (integration + molecule on the local cloud)"
	@echo "make venv         the project venv (.venv)"
	@echo "make lint         ruff, yamllint, ansible-lint (production profile)"
	@echo "make sanity       ansible-test sanity (no ignore file)"
	@echo "make unit         pytest tests/unit with coverage"
	@echo "make integration  pytest tests/integration against the local cloud"
	@echo "make molecule     the Molecule scenarios of the driver roles (needs the local cloud up)"
	@echo "make cloud-tests  start the local cloud if needed, integration + molecule, stop it if started"
	@echo "make cloud-up     start the local OpenStack (installs it on first use)"
	@echo "make cloud-down   stop it"
	@echo "make build        ansible-galaxy collection build (.build/dist/coe-openstack-VERSION.tar.gz)"
	@echo "make publish-check  the tarball through galaxy-importer, antsibull-docs, antsibull-changelog, ansible-builder"
	@echo "make bench        overhead vs raw openstacksdk, Heat alone and the Ansible floor (cloud up; BENCH_ARGS=--quick)"

# constraints.txt: the versions the project is tested with (requirements.txt has lower
# bounds only); CI runs `make test`, so it tests on these too.
$(VENV)/.installed: requirements.txt requirements-dev.txt constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip wheel
	$(BIN)/pip install --quiet -c constraints.txt -r requirements-dev.txt
	touch $@

.PHONY: venv
venv: $(VENV)/.installed

.PHONY: system-deps
system-deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	  [ "$$(dpkg-query -W -f='$${Status}' $$p 2>/dev/null)" = "install ok installed" ] || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "==> apt-get install$$missing"; \
	  mkdir -p /etc/cloud && touch /etc/cloud/cloud-init.disabled; \
	  apt-get update -qq; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
	@# cloud-init is here only for `cloud-init schema`: never let it act on this machine
	@mkdir -p /etc/cloud && touch /etc/cloud/cloud-init.disabled

.PHONY: collection-link
collection-link:
	@mkdir -p $(dir $(LINK))
	@[ -L $(LINK) ] || ln -sfn $(CURDIR) $(LINK)

.PHONY: lint
lint: venv collection-link
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/yamllint -s .
	$(BIN)/ansible-lint

.PHONY: sanity
sanity: venv
	@mkdir -p ~/.ansible/test/cache
	@for v in 24.2 24.3 25.0 25.1 25.2; do cp tests/tools/get_pip_shim.py ~/.ansible/test/cache/get_pip_$${v//./_}.py; done
	@rm -rf $(SANITY_TREE) && mkdir -p $(SANITY_TREE)
	rsync -a --exclude=/.git --exclude-from=tests/tools/sanity-exclude.txt ./ $(SANITY_TREE)/
	@# ansible-test lists files with git: give the copy a repository of its own
	@cd $(SANITY_TREE) && git init -q && git add -A
	cd $(SANITY_TREE) && $(BIN)/ansible-test sanity --venv --python 3.11 --color no

.PHONY: unit
unit: venv collection-link system-deps
	@# pytest exits 5 when it collects no test: that is not a failure of the suite
	$(BIN)/pytest tests/unit --cov=plugins --cov-report=term --cov-report=xml:.build/coverage.xml || [ $$? -eq 5 ]

# The integration tests run as two pytest sessions side by side on the one local cloud
# (tests/integration/sessions; every test names its clusters, users and stores uniquely): most
# of a test's time is the cloud's work and the waits for it. The files of INTEGRATION_A in one,
# every other file in the other, balanced by the durations of a run (--durations=0, printed at
# the end of each session; side by side a Heat lifecycle takes twice its time alone). In the
# fresh-clone run of 2026-12-02 20:00 both sessions took 16.5 min, the `alone` tests 1.5 min.
# On a failure the end of the output lists the sessions' FAILED lines again. The tests that
# touch something project-wide stay in one session: the demo project's load-balancer quota
# (test_api_load_balancer) with the other test making a load balancer (test_minicloud_smoke).
# Tests marked `alone` need the cloud's hosts to themselves (three anti-affine servers on the three
# good hosts: pytest.ini says why): they run after both sessions, by themselves.
INTEGRATION_A := test_cluster_lifecycle.py test_concurrent_runs.py test_heat_stack.py test_awx_runner.py
INTEGRATION_ALL := $(sort $(wildcard tests/integration/test_*.py))
INTEGRATION_SET_A := $(filter $(addprefix tests/integration/,$(INTEGRATION_A)),$(INTEGRATION_ALL))
INTEGRATION_SET_B := $(filter-out $(INTEGRATION_SET_A),$(INTEGRATION_ALL))
# pytest exits 5 when it collects no test: that is not a failure of the suite
PYTEST_INTEGRATION := $(BIN)/pytest -p no:cacheprovider --durations=0 --durations-min=20
INTEGRATION_SESSION_A := $(PYTEST_INTEGRATION) -m 'not alone' $(INTEGRATION_SET_A) || [ \$$? -eq 5 ]
INTEGRATION_SESSION_B := $(PYTEST_INTEGRATION) -m 'not alone' $(INTEGRATION_SET_B) || [ \$$? -eq 5 ]
INTEGRATION_ALONE := $(PYTEST_INTEGRATION) -m alone tests/integration || [ $$? -eq 5 ]

.PHONY: integration
integration: venv collection-link system-deps
	@# the local cloud is started here if it is down (not by two sessions' fixtures at once),
	@# and stopped after if this target started it
	@started=0; \
	if ! $(MINICLOUD) status >/dev/null 2>&1; then started=1; $(MINICLOUD) up; fi; \
	rc=0; MINICLOUD_KEEP=1 tests/integration/sessions "$(INTEGRATION_SESSION_A)" "$(INTEGRATION_SESSION_B)" || rc=$$?; \
	MINICLOUD_KEEP=1 $(INTEGRATION_ALONE) || rc=1; \
	if [ $$rc != 0 ]; then \
	  echo "==> the failures of the side-by-side sessions (their logs: .build/sessions/)"; \
	  grep -h '^\(FAILED\|ERROR\) ' .build/sessions/*.out 2>/dev/null | cut -c1-400 || true; \
	fi; \
	if [ $$started = 1 ]; then $(MINICLOUD) down; fi; \
	exit $$rc

.PHONY: molecule
molecule: venv collection-link
	@for scenario in roles/*/molecule/*/molecule.yml; do \
	  [ -e "$$scenario" ] || { echo "no Molecule scenario"; exit 0; }; \
	  role=$$(dirname $$(dirname $$(dirname $$scenario))); name=$$(basename $$(dirname $$scenario)); \
	  echo "==> molecule test: $$role ($$name)"; \
	  (cd $$role && $(BIN)/molecule test -s $$name) || exit 1; \
	done

# The tests that need the local cloud: start it once (or reuse a running one), run the
# integration tests and the Molecule scenarios, and stop it only if this target started it.
.PHONY: cloud-tests
cloud-tests: venv collection-link system-deps
	@started=0; \
	if ! $(MINICLOUD) status >/dev/null 2>&1; then started=1; fi; \
	start=$$(date +%s); $(MINICLOUD) up; echo "local cloud ready in $$(( $$(date +%s) - start )) s"; \
	rc=0; MINICLOUD_KEEP=1 $(MAKE) --no-print-directory integration molecule || rc=$$?; \
	if [ $$started = 1 ]; then $(MINICLOUD) down; fi; \
	exit $$rc

# make test: the checks (lint, sanity, unit, publish-check), then the tests on the local cloud.
# A cloud that is down is started in the background while the checks run (on a fresh machine
# its first `up` installs it: pip and the databases, ~4 min), and stopped at the end; one that
# runs already is used and left running. After system-deps, so that two apt-gets never meet.
.PHONY: test
test: venv system-deps
	@mkdir -p .build; started=0; pid=; \
	if ! $(MINICLOUD) status >/dev/null 2>&1; then \
	  started=1; echo "==> the local cloud starts in the background (log: .build/minicloud-up.log)"; \
	  $(MINICLOUD) up </dev/null >.build/minicloud-up.log 2>&1 & pid=$$!; \
	fi; \
	rc=0; $(MAKE) --no-print-directory lint sanity unit publish-check || rc=$$?; \
	if [ -n "$$pid" ]; then \
	  if wait $$pid; then tail -n 1 .build/minicloud-up.log; \
	  else echo "==> the local cloud's start failed:"; tail -n 30 .build/minicloud-up.log; rc=1; fi; \
	fi; \
	if [ $$rc = 0 ]; then $(MAKE) --no-print-directory cloud-tests || rc=$$?; fi; \
	if [ $$started = 1 ]; then $(MINICLOUD) down; fi; \
	exit $$rc

# Benchmarks (not tests): needs the local cloud up; BENCH_ARGS=--quick for a short smoke run.
# Writes the results table to the terminal and to docs/benchmarks.md.
.PHONY: bench
bench: venv collection-link
	$(BIN)/python benchmarks/run.py $(BENCH_ARGS)

.PHONY: cloud-up
cloud-up:
	$(MINICLOUD) up

.PHONY: cloud-down
cloud-down:
	$(MINICLOUD) down

# Only the tarball of galaxy.yml's version stays in .build/dist: execution-environment.yml
# takes whatever coe-openstack-*.tar.gz is there.
.PHONY: build
build: venv
	@mkdir -p $(BUILD)/dist
	@rm -f $(BUILD)/dist/coe-openstack-*.tar.gz
	$(BIN)/ansible-galaxy collection build --force --output-path $(BUILD)/dist .

# ---------------------------------------------------------------------------------------------
# make publish-check: what Galaxy's importer and Automation Hub's certification check, run on
# the tarball `make build` makes, offline and without a container runtime. Reports, the rendered
# release notes and the execution environment's build context land in .build/publish-check/.
# The tools are pinned in requirements-dev.txt.

# galaxy-importer's configuration, written to .build/publish-check/galaxy-importer.cfg (pointed at
# by GALAXY_IMPORTER_CONFIG). One line per check; what is off, and why:
define GALAXY_IMPORTER_CFG
[galaxy-importer]
# ansible-doc on every module and plugin: the documentation Galaxy shows.
run_ansible_doc = True
# ansible-lint --profile production on the extracted tarball, as Galaxy runs it. It runs here as
# a local process (it never needed a container); offline, so that it installs nothing.
run_ansible_lint = True
offline_ansible_lint = True
# flake8 (E, F, W; 160 columns) on every plugin file. Two of its codes stay: GALAXY_IMPORTER_ALLOWED.
run_flake8 = True
# a changelog in the tarball (changelogs/changelog.yaml).
check_changelog = True
# at least one tag from Automation Hub's list (galaxy.yml has `cloud`).
check_required_tags = True
# OFF: Automation Hub's certification wants version 1.0.0 or later and this collection is 0.x.
# Turn it on with the first 1.x release.
require_v1_or_greater = False
# OFF, all three ways the importer has to run `ansible-test sanity`: its local runner always runs
# `ansible-test sanity --docker` (a container runtime, and a test image pulled from a registry),
# ansible_test_local_image builds an image with podman or docker, infra_osd starts an OpenShift
# job. None works without a container runtime and the network. Left out: only the importer's
# own run; `make sanity` (part of make test) runs the same sanity tests with --venv and no
# ignore file, and the importer still checks for ignore files (tests/sanity/ignore-*.txt).
run_ansible_test = False
ansible_test_local_image = False
local_image_docker = False
infra_osd = False
log_level_main = INFO
ansible_local_tmp = $(PUBLISH)/ansible-tmp
endef
export GALAXY_IMPORTER_CFG

# The importer's findings that stay (an extended regex over its WARNING/ERROR/CRITICAL lines;
# any other such line fails publish-check):
# - flake8 E203 (whitespace before ':') and W503 (line break before binary operator) on code
#   that `ruff format` (make lint) formats: `x[a + 1 :]` and a break before the operator are
#   its style, PEP 8 allows both, and pycodestyle's own defaults ignore W503 (the importer's
#   `--select E,F,W` turns it back on). Changing the code would make `ruff format --check` fail.
GALAXY_IMPORTER_ALLOWED := ^WARNING: plugins/[^ ]+\.py:[0-9]+:[0-9]+: (E203|W503) [a-z]

# antsibull-docs lint-collection-docs: module, plugin and role docs rendered as a docs site would
# render them (--plugin-docs, rstcheck included), every reference checked against the collections
# it can find, and references to collections that are not installed refused.
ANTSIBULL_DOCS_LINT := --plugin-docs --validate-collection-refs all --disallow-unknown-collection-refs

# The sections of Red Hat's certification README template.
README_SECTIONS := Installation|Use Cases|Testing|Support|Release Notes and Roadmap|Related Information|License Information

.PHONY: publish-check
publish-check: build
	@rm -rf $(PUBLISH) && mkdir -p $(PUBLISH)/importer $(PUBLISH)/ansible-tmp
	@echo "==> requirements.txt: lower bounds only, no ansible or ansible-core"
	@! grep -nE '^[^#]*(<|==|~=|!=|===)|^ *ansible(-core)? *([<>=!~;[]|$$)' requirements.txt \
	  || { echo "requirements.txt: the lines above pin an upper bound or name ansible (constraints.txt is for that)"; exit 1; }
	@echo "==> README.md: the certification template's sections"
	@printf '%s\n' '$(README_SECTIONS)' | tr '|' '\n' | while read -r h; do \
	  grep -qx "## $$h" README.md || { echo "README.md has no '## $$h' section"; exit 1; }; \
	done
	@echo "==> antsibull-changelog lint; the release notes of $(VERSION) built in a scratch copy"
	$(BIN)/antsibull-changelog lint
	$(BIN)/antsibull-changelog lint-changelog-yaml changelogs/changelog.yaml
	@# `release` consumes the fragments (keep_fragments: false): only in a copy
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	rsync -a --exclude=/.git --exclude-from=tests/tools/sanity-exclude.txt ./ "$$tmp/openstack/"; \
	cd "$$tmp/openstack"; \
	$(BIN)/antsibull-changelog release --version $(VERSION) > "$(PUBLISH)/changelog-release.log"; \
	$(BIN)/antsibull-changelog lint-changelog-yaml changelogs/changelog.yaml; \
	$(BIN)/yamllint -s changelogs/changelog.yaml; \
	$(BIN)/rstcheck --report-level warning CHANGELOG.rst; \
	cp CHANGELOG.rst "$(PUBLISH)/CHANGELOG.rst"; \
	echo "release notes of $(VERSION): $(PUBLISH)/CHANGELOG.rst ($$(grep -c '^- ' CHANGELOG.rst) entries)"
	@echo "==> antsibull-docs lint-collection-docs, on the tarball's content"
	@# outside the repository: inside a git work tree antsibull-docs copies the collection with
	@# `git ls-files`, which lists nothing under the ignored .build/ (and so checks nothing)
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	mkdir -p "$$tmp/ansible_collections/coe/openstack"; \
	tar -xzf $(TARBALL) -C "$$tmp/ansible_collections/coe/openstack"; \
	ANSIBLE_COLLECTIONS_PATH="$$tmp" $(BIN)/antsibull-docs lint-collection-docs $(ANTSIBULL_DOCS_LINT) \
	  "$$tmp/ansible_collections/coe/openstack"; \
	echo "==> ansible-builder introspect: what an execution environment installing the tarball adds"; \
	$(BIN)/ansible-builder introspect --sanitize "$$tmp" 2>/dev/null | tee "$(PUBLISH)/introspect.txt" | grep "from collection"; \
	grep -q "^- 'openstacksdk>=.*from collection coe.openstack" "$(PUBLISH)/introspect.txt" \
	  || { echo "ansible-builder finds no Python dependency in the tarball (meta/execution-environment.yml)"; exit 1; }
	@echo "==> ansible-builder create (execution-environment.yml; no image is built here)"
	$(BIN)/ansible-builder create -f execution-environment.yml -c $(PUBLISH)/ee-context \
	  --output-filename Containerfile > $(PUBLISH)/ansible-builder.log
	@ctx=$(PUBLISH)/ee-context/_build; \
	[ "$$(ls $$ctx/collections)" = "$(notdir $(TARBALL))" ] \
	  || { echo "build context: expected only $(notdir $(TARBALL)) in $$ctx/collections, found: $$(ls $$ctx/collections)"; exit 1; }; \
	cmp $(TARBALL) $$ctx/collections/$(notdir $(TARBALL)); \
	cmp requirements.txt $$ctx/requirements.txt; \
	grep -q '^COPY _build/collections/' $(PUBLISH)/ee-context/Containerfile; \
	echo "build context $(PUBLISH)/ee-context: Containerfile, _build/requirements.txt, _build/collections/$(notdir $(TARBALL))"
	@echo "==> galaxy-importer $(notdir $(TARBALL)) (config: $(PUBLISH)/galaxy-importer.cfg)"
	@echo "$$GALAXY_IMPORTER_CFG" > $(PUBLISH)/galaxy-importer.cfg
	@log=$(PUBLISH)/galaxy-importer.log; \
	(cd $(PUBLISH)/importer && GALAXY_IMPORTER_CONFIG=$(PUBLISH)/galaxy-importer.cfg \
	  $(BIN)/python -m galaxy_importer.main $(TARBALL)) > $$log 2>&1 || { cat $$log; echo "galaxy-importer failed"; exit 1; }; \
	grep -qx 'Importer processing completed successfully' $$log || { cat $$log; echo "galaxy-importer did not complete"; exit 1; }; \
	grep -E '^(WARNING|ERROR|CRITICAL)' $$log > $(PUBLISH)/importer-findings.txt || true; \
	if grep -vE '$(GALAXY_IMPORTER_ALLOWED)' $(PUBLISH)/importer-findings.txt; then \
	  echo "galaxy-importer: the findings above are not allowed (GALAXY_IMPORTER_ALLOWED in the Makefile); log: $$log"; exit 1; \
	fi; \
	echo "galaxy-importer: no error; allowed warnings: $$(grep -oE ' (E203|W503) ' $(PUBLISH)/importer-findings.txt | sort | uniq -c | xargs || true) (flake8, ruff format's style); log: $$log"

.PHONY: demo
demo:
	tests/demo/demo.sh

.PHONY: clean
clean:
	rm -rf $(BUILD) .pytest_cache .ruff_cache .coverage
