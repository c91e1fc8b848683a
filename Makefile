# Dockyard: `make serve` runs the registry, `make test` runs the whole suite.
# Both create the virtual environment and install what is missing (system tools via
# apt-get when running as root on Debian).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev

# The tests' system tools, each as COMMAND:DEBIAN-PACKAGE. Only the packages whose command
# is missing get installed: a machine may already have a tool from elsewhere (Node.js's own
# packages bring npm, and Debian's npm conflicts with them).
TEST_TOOLS := buildah:buildah skopeo:skopeo podman:podman busybox:busybox-static \
	newuidmap:uidmap fuse-overlayfs:fuse-overlayfs chromium:chromium \
	debootstrap:debootstrap npm:npm
# axe-core (MIT, from npm): the accessibility checks of the console's browser tests.
AXE_VERSION := 4.10.3
AXE_STAMP := $(VENV)/npm/.axe-core-$(AXE_VERSION)
BENCH_TOOLS := docker-registry:docker-registry wrk:wrk hey:hey

.PHONY: serve test lint bench bench-scan bench-build system-test-deps system-bench-deps axe-core clean

# What serving needs, and nothing more: `make serve` installs only this.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $(STAMP)

# Development tools (pytest, Playwright, mypy, ruff, moto…) come with `make test`.
$(DEV_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(DEV_STAMP)

serve: $(STAMP)
	$(BIN)/dockyard serve

# $(call apt-missing,WHAT,COMMAND:PACKAGE...,EXTRA): apt-get installs the package of each
# missing command, and the packages EXTRA (a shell word list, possibly empty) names.
define apt-missing
	@missing="$(3)"; \
	for pair in $(2); do \
		command -v $${pair%%:*} >/dev/null 2>&1 || missing="$$missing $${pair#*:}"; \
	done; \
	if [ -n "$${missing# }" ]; then \
		echo "installing system tools for $(1): $${missing# }"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi
endef

# The tests' tools, and PostgreSQL's server binaries (initdb is not on PATH).
system-test-deps:
	$(call apt-missing,the tests,$(TEST_TOOLS),$$(ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || echo postgresql))

axe-core: $(AXE_STAMP)

$(AXE_STAMP): | system-test-deps
	mkdir -p $(VENV)/npm
	npm install --prefix $(VENV)/npm --no-audit --no-fund --no-save --ignore-scripts axe-core@$(AXE_VERSION)
	touch $(AXE_STAMP)

system-bench-deps:
	$(call apt-missing,the benchmark,$(BENCH_TOOLS),)

lint: $(DEV_STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

test: $(DEV_STAMP) system-test-deps axe-core lint
	$(BIN)/pytest

bench: $(DEV_STAMP) system-bench-deps
	$(BIN)/python bench/run.py

bench-scan: $(DEV_STAMP) system-test-deps
	$(BIN)/python bench/scan.py

bench-build: $(DEV_STAMP) system-test-deps
	$(BIN)/python bench/build.py

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache
