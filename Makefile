# coe.openstack — developer and CI entry points.
#
#   make demo    set everything up, start the local cloud, run the main job with both drivers
#   make test    every test: lint, sanity, unit, integration (local cloud), Molecule
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

export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)
export PATH := $(BIN):$(PATH)

# Debian packages the tests need besides the local cloud's own (which its
# installer adds): a PostgreSQL server for the store tests, cloud-init for its
# offline user-data schema validator, rsync for the sanity tree.
APT_PACKAGES := postgresql cloud-init rsync gcc libc6-dev

.PHONY: help
help:
	@echo "make demo         set up, start the local cloud, create/scale/delete a cluster with each driver"
	@echo "make test         lint + sanity + unit + cloud-tests (integration + molecule on the local cloud)"
	@echo "make venv         the project venv (.venv)"
	@echo "make lint         ruff, yamllint, ansible-lint (production profile)"
	@echo "make sanity       ansible-test sanity (no ignore file)"
	@echo "make unit         pytest tests/unit with coverage"
	@echo "make integration  pytest tests/integration against the local cloud"
	@echo "make molecule     the Molecule scenarios of the driver roles (needs the local cloud up)"
	@echo "make cloud-tests  start the local cloud if needed, integration + molecule, stop it if started"
	@echo "make cloud-up     start the local OpenStack (installs it on first use)"
	@echo "make cloud-down   stop it"
	@echo "make build        ansible-galaxy collection build"
	@echo "make bench        benchmarks vs raw openstacksdk and openstack.cloud (cloud up; BENCH_ARGS=--quick)"

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip wheel
	$(BIN)/pip install --quiet -r requirements-dev.txt
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
	rsync -a --exclude-from=tests/tools/sanity-exclude.txt ./ $(SANITY_TREE)/
	@# ansible-test lists files with git: give the copy a repository of its own
	@cd $(SANITY_TREE) && git init -q && git add -A
	cd $(SANITY_TREE) && $(BIN)/ansible-test sanity --venv --python 3.11 --color no

.PHONY: unit
unit: venv collection-link system-deps
	@# pytest exits 5 when it collects no test: that is not a failure of the suite
	$(BIN)/pytest tests/unit --cov=plugins --cov-report=term --cov-report=xml:.build/coverage.xml || [ $$? -eq 5 ]

.PHONY: integration
integration: venv collection-link system-deps
	@# the pytest fixture brings the local cloud up if it is down (and stops it after, unless
	@# MINICLOUD_KEEP=1); pytest exits 5 when it collects no test
	$(BIN)/pytest tests/integration || [ $$? -eq 5 ]

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

.PHONY: test
test: lint sanity unit cloud-tests

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

.PHONY: build
build: venv
	@mkdir -p $(BUILD)/dist
	$(BIN)/ansible-galaxy collection build --force --output-path $(BUILD)/dist .

.PHONY: demo
demo:
	tests/demo/demo.sh

.PHONY: clean
clean:
	rm -rf $(BUILD) .pytest_cache .ruff_cache .coverage
