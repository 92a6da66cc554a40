# hurtig: the interface other tooling relies on. Keep target names and meaning.
#   make setup                 control-node venv, Docker engine, qemu, registry-free test images and VM image, the dashboard
#   make dashboard             build the monitoring dashboard (npm ci: uPlot) into roles/monitoring/files
#   make test                  everything CI runs: lint, unit tests, every Molecule scenario
#   make lint                  yamllint, ansible-lint (production), syntax-check, ruff
#   make test-scenario S=name  one Molecule scenario (molecule test -s name)
#   make dist                  the collection hurtig.platform as a tarball -> dist/ (galaxy.yml)
#   make bench                 benchmarks of the full stack -> bench/results.json (docs/benchmarks.md)
#   make chaos [N=10000]       fault tests under load, fails on any lost job -> bench/faults.json
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

VENV      ?= .venv
PY         = $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PIP_DISABLE_PIP_VERSION_CHECK := 1

SCENARIOS = $(sort $(notdir $(patsubst %/molecule.yml,%,$(wildcard molecule/*/molecule.yml))))

DASHBOARD = roles/monitoring/dashboard

.PHONY: help setup venv docker images dashboard test lint unit test-scenario dist bench chaos clean

help:
	@sed -n 's/^#   //p' $(MAKEFILE_LIST)

setup: venv docker images dashboard ## idempotent: a second run changes nothing

venv: $(VENV)/.installed
$(VENV)/.installed: requirements.txt requirements.yml pyproject.toml
	@scripts/setup-venv.sh $(VENV)
	@touch $@

docker:
	@scripts/ensure-docker.sh

images: docker
	@images/build.sh build
	@images/vm.sh build >/dev/null

dashboard: roles/monitoring/files/dashboard/BUILD
roles/monitoring/files/dashboard/BUILD: $(DASHBOARD)/package.json $(DASHBOARD)/package-lock.json $(DASHBOARD)/build.mjs $(wildcard $(DASHBOARD)/src/*)
	@command -v npm >/dev/null || { echo "make dashboard: npm is missing (apt-get install npm)"; exit 1; }
	cd $(DASHBOARD) && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build

lint: venv
	@scripts/lint.sh

unit: venv
	python -m pytest -q tests

test-scenario: venv
	@test -n "$(S)" || { echo "usage: make test-scenario S=<scenario> (one of: $(SCENARIOS))"; exit 2; }
	molecule test -s $(S)

test: venv ## lint steps, unit test modules, every Molecule scenario; ends "N passed, N failed"
	@scripts/test.sh

# The dashboard is built output (not in git) that the monitoring role ships: built first.
dist: venv dashboard
	ansible-galaxy collection build --force --output-path dist

bench: venv images
	@scripts/bench.sh bench

chaos: venv images
	@scripts/bench.sh chaos

clean:
	rm -rf $(VENV) .cache dist $(DASHBOARD)/node_modules roles/monitoring/files/dashboard
