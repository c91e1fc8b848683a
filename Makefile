# Dockyard: `make serve` runs the registry, `make test` runs the whole suite.
# Both create the virtual environment and install what is missing (system tools via
# apt-get when running as root on Debian).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev

TEST_TOOLS := buildah skopeo podman busybox chromium debootstrap npm
TEST_PACKAGES := buildah skopeo podman busybox-static uidmap fuse-overlayfs postgresql chromium debootstrap npm
# axe-core (MIT, from npm): the accessibility checks of the console's browser tests.
AXE_VERSION := 4.10.3
AXE_STAMP := $(VENV)/npm/.axe-core-$(AXE_VERSION)
BENCH_PACKAGES := docker-registry wrk hey

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

# Installs each Debian package whose tool is missing (PostgreSQL: its server binaries).
system-test-deps:
	@missing=""; \
	for tool in $(TEST_TOOLS); do command -v $$tool >/dev/null 2>&1 || missing=1; done; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing=1; \
	if [ -n "$$missing" ]; then \
		echo "installing system tools for the tests: $(TEST_PACKAGES)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(TEST_PACKAGES); \
	fi

axe-core: $(AXE_STAMP)

$(AXE_STAMP): | system-test-deps
	mkdir -p $(VENV)/npm
	npm install --prefix $(VENV)/npm --no-audit --no-fund --no-save --ignore-scripts axe-core@$(AXE_VERSION)
	touch $(AXE_STAMP)

system-bench-deps:
	@if ! command -v docker-registry >/dev/null 2>&1 || ! command -v wrk >/dev/null 2>&1 || ! command -v hey >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(BENCH_PACKAGES); \
	fi

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
